#include "ui/chat_tab.h"

#include <QDesktopServices>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <QScrollBar>
#include <QSplitter>
#include <QTextBrowser>
#include <QToolButton>
#include <QVBoxLayout>

#include "engine/chat/reasoning.h"
#include "ui/chat_settings_panel.h"
#include "ui/engine_client.h"

namespace pagoda::ui {
namespace {

// Re-rendering the Markdown of a long transcript per token would be wasted
// work: the transcript is redrawn at most this often while text streams.
constexpr int kRenderIntervalMs = 50;
constexpr int kAutoTitleLength = 32;

QPushButton* button(const QString& text, const QString& icon, const QString& tip) {
    auto* b = new QPushButton(QIcon(icon), text);
    b->setToolTip(tip);
    b->setAccessibleName(QString(text).remove('&'));
    b->setAccessibleDescription(tip);
    return b;
}

// The transcript's links that fold a reply's reasoning: "pagoda-reasoning:<message index>".
const QString kReasoningScheme = QStringLiteral("pagoda-reasoning");

}  // namespace

ChatTab::ChatTab(EngineClient* engine, Conversation conversation, QWidget* parent)
    : QWidget(parent),
      m_engine(engine),
      m_conversation(std::move(conversation)),
      m_transcript(new QTextBrowser),
      m_input(new QPlainTextEdit),
      m_send(button(tr("&Send"), QStringLiteral(":/icons/send.png"), tr("Send the message (Enter; Shift+Enter for a new line)"))),
      m_stop(button(tr("S&top"), QStringLiteral(":/icons/stop.png"), tr("Stop generating (Esc)"))),
      m_regenerate(button(tr("&Regenerate"), QStringLiteral(":/icons/regenerate.png"),
                          tr("Generate the last reply again (reuses the cached prompt)"))),
      m_edit(button(tr("&Edit last"), QStringLiteral(":/icons/edit.png"),
                    tr("Move the last message back into the box to edit and resend it"))),
      m_settingsToggle(new QToolButton),
      m_status(new QLabel),
      m_settings(new ChatSettingsPanel) {
    // Links open here: the reasoning links fold and unfold, others go to the desktop.
    m_transcript->setOpenLinks(false);
    m_transcript->setAccessibleName(tr("Conversation"));
    m_transcript->setFocusPolicy(Qt::StrongFocus);
    m_input->setPlaceholderText(tr("Type a message… (Enter sends, Shift+Enter adds a line)"));
    m_input->setAccessibleName(tr("Message"));
    m_input->setTabChangesFocus(true);
    m_input->setMaximumHeight(110);
    m_input->installEventFilter(this);
    m_settingsToggle->setText(tr("Settings"));
    m_settingsToggle->setIcon(QIcon(QStringLiteral(":/icons/settings.png")));
    m_settingsToggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_settingsToggle->setCheckable(true);
    m_settingsToggle->setToolTip(tr("Show this tab's system prompt and sampling settings"));
    m_settingsToggle->setAccessibleName(tr("Chat settings"));
    m_status->setAccessibleName(tr("Generation status"));
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    // A finished reply's stats line is long: wrapped, it never makes the
    // tab wider than its buttons (unwrapped, it squeezed the docks).
    m_status->setWordWrap(true);

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_status, 1);
    buttons->addWidget(m_settingsToggle);
    buttons->addWidget(m_edit);
    buttons->addWidget(m_regenerate);
    buttons->addWidget(m_stop);
    buttons->addWidget(m_send);

    auto* chat = new QWidget;
    auto* column = new QVBoxLayout(chat);
    column->setContentsMargins(0, 0, 0, 0);
    column->addWidget(m_transcript, 1);
    column->addWidget(m_input);
    column->addLayout(buttons);

    auto* splitter = new QSplitter(Qt::Horizontal);
    splitter->addWidget(chat);
    splitter->addWidget(m_settings);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(splitter);
    m_settings->setSettings(m_conversation.settings);
    m_settings->hide();

    setTabOrder(m_input, m_send);
    setTabOrder(m_send, m_stop);
    setTabOrder(m_stop, m_regenerate);
    setTabOrder(m_regenerate, m_edit);
    setTabOrder(m_edit, m_settingsToggle);
    setTabOrder(m_settingsToggle, m_transcript);

    connect(m_send, &QPushButton::clicked, this, &ChatTab::sendFromInput);
    connect(m_stop, &QPushButton::clicked, this, &ChatTab::stop);
    connect(m_regenerate, &QPushButton::clicked, this, &ChatTab::regenerate);
    connect(m_edit, &QPushButton::clicked, this, &ChatTab::editLastUserMessage);
    connect(m_settingsToggle, &QToolButton::toggled, this, &ChatTab::setSettingsVisible);
    connect(m_settings, &ChatSettingsPanel::settingsChanged, this, [this](const ChatSettings& settings) {
        m_conversation.settings = settings;
        Q_EMIT changed();
    });
    connect(m_transcript, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        if (url.scheme() == kReasoningScheme) {
            toggleReasoning(url.path().toLongLong());
        } else {
            QDesktopServices::openUrl(url);
        }
    });
    m_settings->setThinkingSwitch(m_engine->reasoning().canSwitchOff);
    connect(m_engine, &EngineClient::modelLoaded, this,
            [this](const ModelInfo& info) { m_settings->setThinkingSwitch(info.reasoning.canSwitchOff); });
    connect(m_engine, &EngineClient::modelUnloaded, this, [this] { m_settings->setThinkingSwitch(false); });
    connect(m_engine, &EngineClient::accepted, this, &ChatTab::onAccepted);
    connect(m_engine, &EngineClient::rejected, this, &ChatTab::onRejected);
    connect(m_engine, &EngineClient::textReady, this, &ChatTab::onText);
    connect(m_engine, &EngineClient::finished, this, &ChatTab::onFinished);

    m_renderTimer.setSingleShot(true);
    m_renderTimer.setInterval(kRenderIntervalMs);
    connect(&m_renderTimer, &QTimer::timeout, this, &ChatTab::render);
    render();
    updateButtons();
}

void ChatTab::setTitle(const QString& title) {
    if (title == m_conversation.title) return;
    m_conversation.title = title;
    Q_EMIT titleChanged(title);
    Q_EMIT changed();
}

void ChatTab::setSettings(const ChatSettings& settings) {
    m_conversation.settings = settings;
    m_settings->setSettings(settings);
    Q_EMIT changed();
}

void ChatTab::setSettingsVisible(bool visible) {
    m_settings->setVisible(visible);
    m_settingsToggle->setChecked(visible);
}

void ChatTab::focusInput() { m_input->setFocus(); }

bool ChatTab::eventFilter(QObject* watched, QEvent* event) {
    if (watched == m_input && event->type() == QEvent::KeyPress) {
        const auto* key = static_cast<QKeyEvent*>(event);
        if ((key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter) &&
            !(key->modifiers() & Qt::ShiftModifier)) {
            sendFromInput();
            return true;
        }
        if (key->key() == Qt::Key_Escape && m_generating) {
            stop();
            return true;
        }
    }
    return QWidget::eventFilter(watched, event);
}

void ChatTab::sendFromInput() {
    const QString text = m_input->toPlainText().trimmed();
    if (text.isEmpty() || m_generating) return;
    m_input->clear();
    send(text);
}

void ChatTab::send(const QString& text) {
    if (m_generating) stop();
    if (m_conversation.messages.isEmpty() && m_conversation.title.startsWith(tr("Chat"))) {
        QString title = text.simplified();
        if (title.size() > kAutoTitleLength) title = title.left(kAutoTitleLength - 1) + QChar(0x2026);
        setTitle(title);
    }
    m_conversation.messages.push_back({Role::User, text, QDateTime::currentDateTime(), std::nullopt, {}});
    generate();
}

void ChatTab::generate() {
    GenerationRequest request;
    request.conversationId = m_conversation.id;
    request.messages = m_conversation.promptMessages();
    request.sampling = m_conversation.settings.sampling;
    // Seed 0 asks for a fresh draw every turn, so Regenerate gives a new reply.
    if (request.sampling.seed == 0) request.sampling.seed = QRandomGenerator::global()->generate64() | 1;
    request.maxNewTokens = m_conversation.settings.maxNewTokens;
    request.ignoreEos = m_conversation.settings.ignoreEos;
    request.thinking = m_conversation.settings.thinking;
    m_conversation.messages.push_back({Role::Assistant, {}, QDateTime::currentDateTime(), std::nullopt, {}});
    m_shownReasoning.remove(m_conversation.messages.size() - 1);
    m_ticket = m_engine->generate(std::move(request));
    m_generating = true;
    m_status->setText(tr("Waiting for the engine…"));
    Q_EMIT generatingChanged(true);
    Q_EMIT changed();
    render();
    updateButtons();
}

void ChatTab::stop() {
    if (!m_generating) return;
    m_engine->cancel(m_ticket);
    m_status->setText(tr("Stopped"));
    finishTurn();
}

void ChatTab::finishTurn() {
    m_generating = false;
    Q_EMIT generatingChanged(false);
    Q_EMIT changed();
    render();
    updateButtons();
}

void ChatTab::regenerate() {
    if (m_generating) stop();
    auto& messages = m_conversation.messages;
    if (!messages.isEmpty() && messages.back().role == Role::Assistant) messages.pop_back();
    // A user message without a reply (the engine refused the turn) is retried.
    if (messages.isEmpty() || messages.back().role != Role::User) return;
    generate();
}

void ChatTab::editLastUserMessage() {
    if (m_generating) stop();
    auto& messages = m_conversation.messages;
    qsizetype last = messages.size() - 1;
    while (last >= 0 && messages[last].role != Role::User) --last;
    if (last < 0) return;
    m_input->setPlainText(messages[last].text);
    messages.resize(last);
    m_input->setFocus();
    m_input->moveCursor(QTextCursor::End);
    Q_EMIT changed();
    render();
    updateButtons();
}

Message* ChatTab::lastAssistant() {
    if (m_conversation.messages.isEmpty() || m_conversation.messages.back().role != Role::Assistant) return nullptr;
    return &m_conversation.messages.back();
}

void ChatTab::onAccepted(quint64 ticket, int promptTokens) {
    if (ticket != m_ticket || !m_generating) return;
    m_status->setText(tr("Prompt of %1 tokens queued…").arg(promptTokens));
}

// The turn never started: its empty reply goes, the user message stays for
// Regenerate to retry.
void ChatTab::onRejected(quint64 ticket, const QString& message) {
    if (ticket != m_ticket) return;
    if (Message* reply = lastAssistant(); reply && reply->text.isEmpty()) m_conversation.messages.pop_back();
    m_status->setText(tr("Not sent: %1 (Regenerate retries)").arg(message));
    if (m_generating) {
        finishTurn();
    } else {
        Q_EMIT changed();
        render();
        updateButtons();
    }
}

void ChatTab::onText(quint64 ticket, const QString& text) {
    if (ticket != m_ticket || !m_generating) return;
    Message* reply = lastAssistant();
    if (!reply) return;
    const bool first = reply->text.isEmpty();
    if (first) {
        m_status->setText(tr("Generating…"));
        m_replyClock.start();
    }
    // The block ends where "</think>" first appears (splitReasoning): look
    // in the new text and the end of the old one, which may hold its start.
    const QLatin1StringView close(kThinkClose.data(), qsizetype(kThinkClose.size()));
    const qsizetype from = std::max<qsizetype>(0, reply->text.size() - close.size() + 1);
    reply->text += text;
    if (!first && !reply->thinkingSeconds && reply->text.indexOf(close, from) >= 0) {
        reply->thinkingSeconds = double(m_replyClock.elapsed()) / 1000.0;
    }
    scheduleRender();
}

void ChatTab::onFinished(quint64 ticket, const runtime::FinishEvent& event) {
    if (ticket != m_ticket) return;
    Message* reply = lastAssistant();
    if (reply) {
        reply->stats = messageStats(event);
        if (event.reason == runtime::FinishReason::Error || event.reason == runtime::FinishReason::ContextOverflow) {
            reply->error = QString::fromStdString(event.message);
        }
        m_status->setText(formatStats(*reply->stats));
    }
    if (m_generating) {
        finishTurn();
    } else {
        Q_EMIT changed();
        render();
    }
}

void ChatTab::scheduleRender() {
    if (!m_renderTimer.isActive()) m_renderTimer.start();
}

QString ChatTab::transcriptMarkdown() const {
    QString md;
    if (m_conversation.messages.isEmpty()) {
        return tr("*Say something to start. Each tab is its own conversation and its own sequence in the "
                  "engine's batch; open the settings for this tab's system prompt and sampling.*");
    }
    for (qsizetype i = 0; i < m_conversation.messages.size(); ++i) {
        const Message& m = m_conversation.messages[i];
        const bool streaming = m_generating && i == m_conversation.messages.size() - 1;
        md += QStringLiteral("**%1** <small>%2</small>\n\n")
                  .arg(m.role == Role::User ? tr("You") : tr("Assistant"), m.time.toString(QStringLiteral("HH:mm")));
        QString text = m.text;
        if (m.role == Role::Assistant) {
            const ReplyParts parts = splitReply(m.text, !streaming);
            if (parts.hasBlock) {
                md += reasoningMarkdown(i, m, parts.reasoning, parts.thinking && streaming, parts.thinking);
                text = parts.answer;
            }
        }
        if (!text.isEmpty()) md += text + (streaming ? QStringLiteral(" ▍") : QString()) + QStringLiteral("\n\n");
        if (m.text.isEmpty() && streaming) md += tr("*thinking…*\n\n");
        if (m.stats) md += QStringLiteral("<small>%1</small>\n\n").arg(formatStats(*m.stats).toHtmlEscaped());
        if (!m.error.isEmpty()) md += tr("**Error:** %1\n\n").arg(m.error.toHtmlEscaped());
        md += QStringLiteral("---\n\n");
    }
    return md;
}

// Reasoning under a link that shows or hides it, as a quote; open while the
// model is still thinking.
QString ChatTab::reasoningMarkdown(qsizetype index, const Message& message, const QString& reasoning, bool open,
                                   bool cutOff) const {
    QString md;
    const bool shown = open || m_shownReasoning.contains(index);
    if (open) {
        md += tr("*Thinking…*\n\n");
    } else {
        const int words = int(reasoning.split(QRegularExpression(QStringLiteral("\\s+")), Qt::SkipEmptyParts).size());
        const QString what = cutOff ? tr("reasoning, cut off") : tr("reasoning");
        const QString seconds =
            message.thinkingSeconds ? tr(", %1 s").arg(*message.thinkingSeconds, 0, 'f', 1) : QString();
        const QString link =
            shown ? tr("▾ Hide %1").arg(what) : tr("▸ Show %1 (%n words%2)", nullptr, words).arg(what, seconds);
        md += QStringLiteral("[%1](%2:%3)\n\n").arg(link, kReasoningScheme).arg(index);
    }
    if (shown && !reasoning.isEmpty()) {
        md += QStringLiteral("> ") + QString(reasoning).replace('\n', QStringLiteral("\n> ")) + QStringLiteral("\n\n");
    }
    return md;
}

void ChatTab::toggleReasoning(qsizetype index) {
    if (!m_shownReasoning.remove(index)) m_shownReasoning.insert(index);
    render();
}

void ChatTab::showEvent(QShowEvent* event) {
    QWidget::showEvent(event);
    if (m_stale) render();
}

// Hidden tabs (other tabs generating) skip the Markdown work until shown.
void ChatTab::render() {
    m_stale = !isVisible();
    if (m_stale) return;
    QScrollBar* bar = m_transcript->verticalScrollBar();
    const bool atBottom = bar->value() >= bar->maximum() - 4;
    const int position = bar->value();
    m_transcript->setMarkdown(transcriptMarkdown());
    bar->setValue(atBottom ? bar->maximum() : position);
}

void ChatTab::updateButtons() {
    const bool hasTurn = !m_conversation.messages.isEmpty();
    const bool hasUser = std::any_of(m_conversation.messages.begin(), m_conversation.messages.end(),
                                     [](const Message& m) { return m.role == Role::User; });
    m_send->setEnabled(!m_generating);
    m_stop->setEnabled(m_generating);
    m_regenerate->setEnabled(hasTurn);
    m_edit->setEnabled(hasUser);
}

}  // namespace pagoda::ui

#pragma once
// One chat tab: the transcript (Markdown, streamed as it is generated), the
// message box, Send / Stop / Regenerate / Edit, and the tab's settings.
// Each turn is one engine request whose prompt is the whole conversation
// rendered with the model's chat template, so with prefix caching a later
// turn reuses the KV of everything before it.

#include <QElapsedTimer>
#include <QSet>
#include <QTimer>
#include <QWidget>

#include "ui/conversation.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTextBrowser;
class QToolButton;

namespace pagoda::ui {

class ChatSettingsPanel;
class EngineClient;

class ChatTab : public QWidget {
    Q_OBJECT
public:
    ChatTab(EngineClient* engine, Conversation conversation, QWidget* parent = nullptr);

    const Conversation& conversation() const { return m_conversation; }
    QString id() const { return m_conversation.id; }
    QString title() const { return m_conversation.title; }
    void setTitle(const QString& title);
    bool isGenerating() const { return m_generating; }
    // The latest turn's ticket (EngineClient::generate); 0 before any.
    quint64 ticket() const { return m_ticket; }
    // The transcript as shown (Markdown), for tests and export.
    QString transcriptMarkdown() const;

    // Appends a user message and generates the reply.
    void send(const QString& text);
    // Ends the reply now: no more text is shown; the engine's statistics
    // arrive with its finish event.
    void stop();
    // Drops the last reply and generates it again from the same prompt (or
    // retries a message the engine refused).
    void regenerate();
    // Moves the last user message back into the message box, dropping it
    // and its reply, to be edited and sent again.
    void editLastUserMessage();
    // Shows or hides the reasoning (<think> block) of message `index`; the
    // transcript's "Show reasoning" link calls it. A reply still thinking
    // always shows it.
    void toggleReasoning(qsizetype index);
    void setSettings(const ChatSettings& settings);
    void setSettingsVisible(bool visible);
    void focusInput();

Q_SIGNALS:
    // The conversation changed (a message, its stats, the title, settings): save it.
    void changed();
    void titleChanged(const QString& title);
    void generatingChanged(bool generating);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    void sendFromInput();
    void generate();
    void finishTurn();
    void onAccepted(quint64 ticket, int promptTokens);
    void onRejected(quint64 ticket, const QString& message);
    void onText(quint64 ticket, const QString& text);
    void onFinished(quint64 ticket, const runtime::FinishEvent& event);
    void scheduleRender();
    void render();
    void updateButtons();
    Message* lastAssistant();
    QString reasoningMarkdown(qsizetype index, const Message& message, const QString& reasoning, bool open,
                              bool cutOff) const;

    EngineClient* m_engine;
    Conversation m_conversation;
    quint64 m_ticket = 0;  // of the latest turn; 0 before any
    bool m_generating = false;
    bool m_stale = false;     // changed while hidden: render when shown
    QSet<qsizetype> m_shownReasoning;  // replies whose reasoning the user opened
    QElapsedTimer m_replyClock;        // since the latest reply's first text
    QTimer m_renderTimer;

    QTextBrowser* m_transcript;
    QPlainTextEdit* m_input;
    QPushButton* m_send;
    QPushButton* m_stop;
    QPushButton* m_regenerate;
    QPushButton* m_edit;
    QToolButton* m_settingsToggle;
    QLabel* m_status;
    ChatSettingsPanel* m_settings;
};

}  // namespace pagoda::ui

#include "ui/chat_settings_panel.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSpinBox>

namespace pagoda::ui {
namespace {

QDoubleSpinBox* doubleSpin(double min, double max, double step, int decimals) {
    auto* spin = new QDoubleSpinBox;
    spin->setRange(min, max);
    spin->setSingleStep(step);
    spin->setDecimals(decimals);
    return spin;
}

QSpinBox* intSpin(int min, int max) {
    auto* spin = new QSpinBox;
    spin->setRange(min, max);
    return spin;
}

}  // namespace

ChatSettingsPanel::ChatSettingsPanel(QWidget* parent)
    : QWidget(parent),
      m_systemPrompt(new QPlainTextEdit),
      m_temperature(doubleSpin(0, 2, 0.05, 2)),
      m_topK(intSpin(0, 1000)),
      m_topP(doubleSpin(0, 1, 0.01, 2)),
      m_minP(doubleSpin(0, 1, 0.01, 2)),
      m_repeatPenalty(doubleSpin(1, 2, 0.01, 2)),
      m_maxTokens(intSpin(1, 8192)),
      m_seed(intSpin(0, std::numeric_limits<int>::max())),
      m_ignoreEos(new QCheckBox(tr("&Ignore end of text"))),
      m_thinking(new QCheckBox(tr("T&hink before answering"))) {
    auto* form = new QFormLayout(this);
    auto* title = new QLabel(tr("<b>Chat settings</b> (this tab)"));
    form->addRow(title);

    m_seed->setSpecialValueText(tr("random"));
    m_systemPrompt->setPlaceholderText(tr("Optional instructions for the assistant"));
    m_systemPrompt->setTabChangesFocus(true);
    m_systemPrompt->setMaximumHeight(120);
    m_systemPrompt->setAccessibleName(tr("System prompt"));
    form->addRow(tr("S&ystem prompt"), m_systemPrompt);

    const struct {
        QWidget* widget;
        QString label;
        QString tip;
    } rows[] = {
        {m_temperature, tr("&Temperature"), tr("Randomness of sampling; 0 always picks the most likely token")},
        {m_topK, tr("Top-&k"), tr("Sample among the k most likely tokens; 0 turns it off")},
        {m_topP, tr("Top-&p"), tr("Sample among the most likely tokens whose probabilities add up to p; 1 turns it off")},
        {m_minP, tr("&Min-p"), tr("Drop tokens less likely than min-p times the most likely one; 0 turns it off")},
        {m_repeatPenalty, tr("&Repeat penalty"), tr("Makes recently used tokens less likely; 1 turns it off")},
        {m_maxTokens, tr("Max &tokens"), tr("The most tokens one reply may have")},
        {m_seed, tr("S&eed"), tr("Seed of the sampler: the same seed, prompt and settings give the same reply; \"random\" draws a new seed every turn")},
    };
    for (const auto& row : rows) {
        row.widget->setToolTip(row.tip);
        row.widget->setAccessibleName(QString(row.label).remove('&'));
        row.widget->setAccessibleDescription(row.tip);
        form->addRow(row.label, row.widget);
    }

    m_ignoreEos->setToolTip(tr("Keep generating up to Max tokens even when the model ends its reply: a steady, "
                               "predictable load for profiling"));
    m_ignoreEos->setAccessibleName(tr("Ignore end of text"));
    form->addRow(m_ignoreEos);
    m_thinking->setAccessibleName(tr("Think before answering"));
    form->addRow(m_thinking);
    setThinkingSwitch(false);

    connect(m_ignoreEos, &QCheckBox::toggled, this, &ChatSettingsPanel::emitChanged);
    connect(m_thinking, &QCheckBox::toggled, this, &ChatSettingsPanel::emitChanged);
    connect(m_systemPrompt, &QPlainTextEdit::textChanged, this, &ChatSettingsPanel::emitChanged);
    for (QDoubleSpinBox* spin : {m_temperature, m_topP, m_minP, m_repeatPenalty}) {
        connect(spin, &QDoubleSpinBox::valueChanged, this, &ChatSettingsPanel::emitChanged);
    }
    for (QSpinBox* spin : {m_topK, m_maxTokens, m_seed}) {
        connect(spin, &QSpinBox::valueChanged, this, &ChatSettingsPanel::emitChanged);
    }
}

void ChatSettingsPanel::setSettings(const ChatSettings& s) {
    m_updating = true;
    if (m_systemPrompt->toPlainText() != s.systemPrompt) m_systemPrompt->setPlainText(s.systemPrompt);
    m_temperature->setValue(s.sampling.temperature);
    m_topK->setValue(s.sampling.topK);
    m_topP->setValue(s.sampling.topP);
    m_minP->setValue(s.sampling.minP);
    m_repeatPenalty->setValue(s.sampling.repeatPenalty);
    m_maxTokens->setValue(s.maxNewTokens);
    m_seed->setValue(int(std::min<uint64_t>(s.sampling.seed, uint64_t(m_seed->maximum()))));
    m_ignoreEos->setChecked(s.ignoreEos);
    m_thinking->setChecked(s.thinking);
    m_updating = false;
}

ChatSettings ChatSettingsPanel::settings() const {
    ChatSettings s;
    s.systemPrompt = m_systemPrompt->toPlainText();
    s.sampling.temperature = float(m_temperature->value());
    s.sampling.topK = m_topK->value();
    s.sampling.topP = float(m_topP->value());
    s.sampling.minP = float(m_minP->value());
    s.sampling.repeatPenalty = float(m_repeatPenalty->value());
    s.sampling.seed = uint64_t(m_seed->value());
    s.maxNewTokens = m_maxTokens->value();
    s.ignoreEos = m_ignoreEos->isChecked();
    s.thinking = m_thinking->isChecked();
    return s;
}

void ChatSettingsPanel::setThinkingSwitch(bool available) {
    m_thinking->setEnabled(available);
    const QString tip = available ? tr("The model reasons in a <think> block before it answers; off, its chat "
                                       "template closes an empty block and it answers at once")
                                  : tr("The model loaded has no thinking switch in its chat template (Qwen 3 has "
                                       "one; DeepSeek-R1 always thinks; most models never do)");
    m_thinking->setToolTip(tip);
    m_thinking->setAccessibleDescription(tip);
}

void ChatSettingsPanel::emitChanged() {
    if (!m_updating) Q_EMIT settingsChanged(settings());
}

}  // namespace pagoda::ui

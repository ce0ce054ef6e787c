#pragma once
// A chat tab's own settings: system prompt, sampling parameters and the
// most tokens per reply. Edits apply to the next turn.

#include <QWidget>

#include "ui/conversation.h"

class QCheckBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

namespace pagoda::ui {

class ChatSettingsPanel : public QWidget {
    Q_OBJECT
public:
    explicit ChatSettingsPanel(QWidget* parent = nullptr);

    void setSettings(const ChatSettings& settings);
    ChatSettings settings() const;
    // Whether the loaded model's chat template can switch thinking off
    // (ReasoningSupport::canSwitchOff): the Think box is enabled only then.
    void setThinkingSwitch(bool available);

Q_SIGNALS:
    void settingsChanged(const pagoda::ui::ChatSettings& settings);

private:
    void emitChanged();

    QPlainTextEdit* m_systemPrompt;
    QDoubleSpinBox* m_temperature;
    QSpinBox* m_topK;
    QDoubleSpinBox* m_topP;
    QDoubleSpinBox* m_minP;
    QDoubleSpinBox* m_repeatPenalty;
    QSpinBox* m_maxTokens;
    QSpinBox* m_seed;
    QCheckBox* m_ignoreEos;
    QCheckBox* m_thinking;
    bool m_updating = false;
};

}  // namespace pagoda::ui

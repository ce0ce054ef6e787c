#pragma once
// A chat conversation as the app keeps it: messages with the statistics of
// the turn that produced them, and the tab's own system prompt and sampling
// settings. Plain values; JSON for persistence and export, Markdown for
// export.

#include <QDateTime>
#include <QJsonObject>
#include <QString>
#include <QVector>

#include <optional>

#include "engine/sampling/sampler.h"
#include "ui/engine_types.h"

namespace pagoda::ui {

// What the engine reported for one assistant turn (RequestStats).
struct MessageStats {
    int promptTokens = 0;
    int reusedTokens = 0;  // prompt tokens served from the prefix cache
    int generatedTokens = 0;
    int preemptions = 0;
    double ttftSeconds = 0;
    double tokensPerSecond = 0;  // decode rate
    double totalSeconds = 0;
    QString finishReason;  // finishReasonName(): "stop", "eos", "length", "cancelled", ...

    bool operator==(const MessageStats&) const = default;
};

struct Message {
    Role role = Role::User;
    QString text;
    QDateTime time;
    std::optional<MessageStats> stats;  // assistant turns that finished
    QString error;                      // why the turn failed, when it did
    // A reasoning model's reply: seconds from its first text to the end of
    // its <think> block, when the chat saw the block close.
    std::optional<double> thinkingSeconds;

    bool operator==(const Message&) const = default;
};

struct ChatSettings {
    QString systemPrompt;
    SamplingParams sampling;
    int maxNewTokens = 256;
    bool ignoreEos = false;  // generate maxNewTokens even past end-of-text (steady load for profiling)
    bool thinking = true;    // GenerationRequest::thinking

    bool operator==(const ChatSettings& other) const;
};

struct Conversation {
    QString id;  // stable, a file name: [0-9a-f-]
    QString title;
    QDateTime created;
    ChatSettings settings;
    QVector<Message> messages;

    static Conversation create(const QString& title, const ChatSettings& settings);

    // The turn to send: the system prompt (when set) and every message with text.
    QVector<PromptMessage> promptMessages() const;

    QJsonObject toJson() const;
    // Error names the missing or malformed field.
    static std::optional<Conversation> fromJson(const QJsonObject& json, QString* error);
    QString toMarkdown() const;

    bool operator==(const Conversation&) const = default;
};

QString roleName(Role role);  // "system", "user", "assistant"

// A reply split into a reasoning model's <think> block and its answer
// (pagoda::splitReasoning; `complete` false while it streams).
struct ReplyParts {
    QString reasoning;
    QString answer;
    bool hasBlock = false;
    bool thinking = false;  // the block is still open
};
ReplyParts splitReply(const QString& text, bool complete);
MessageStats messageStats(const runtime::FinishEvent& event);
// "42 tokens · 12.3 tok/s · TTFT 0.21 s · prompt 120 (96 reused)"
QString formatStats(const MessageStats& stats);

QJsonObject samplingToJson(const SamplingParams& sampling);
SamplingParams samplingFromJson(const QJsonObject& json, const SamplingParams& defaults);

}  // namespace pagoda::ui

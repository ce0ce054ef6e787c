#include "ui/conversation.h"

#include "engine/chat/reasoning.h"

#include <QJsonArray>
#include <QLocale>
#include <QRegularExpression>
#include <QUuid>

namespace pagoda::ui {
namespace {

std::optional<Role> roleFromName(const QString& name) {
    if (name == QLatin1String("system")) return Role::System;
    if (name == QLatin1String("user")) return Role::User;
    if (name == QLatin1String("assistant")) return Role::Assistant;
    return std::nullopt;
}

QJsonObject statsToJson(const MessageStats& s) {
    return {{"promptTokens", s.promptTokens},     {"reusedTokens", s.reusedTokens},
            {"generatedTokens", s.generatedTokens}, {"preemptions", s.preemptions},
            {"ttftSeconds", s.ttftSeconds},       {"tokensPerSecond", s.tokensPerSecond},
            {"totalSeconds", s.totalSeconds},     {"finishReason", s.finishReason}};
}

MessageStats statsFromJson(const QJsonObject& json) {
    MessageStats s;
    s.promptTokens = json.value("promptTokens").toInt();
    s.reusedTokens = json.value("reusedTokens").toInt();
    s.generatedTokens = json.value("generatedTokens").toInt();
    s.preemptions = json.value("preemptions").toInt();
    s.ttftSeconds = json.value("ttftSeconds").toDouble();
    s.tokensPerSecond = json.value("tokensPerSecond").toDouble();
    s.totalSeconds = json.value("totalSeconds").toDouble();
    s.finishReason = json.value("finishReason").toString();
    return s;
}

QString markdownHeading(Role role) {
    switch (role) {
    case Role::System:
        return QStringLiteral("System");
    case Role::User:
        return QStringLiteral("You");
    case Role::Assistant:
        return QStringLiteral("Assistant");
    }
    return {};
}

}  // namespace

bool ChatSettings::operator==(const ChatSettings& other) const {
    const SamplingParams& a = sampling;
    const SamplingParams& b = other.sampling;
    return systemPrompt == other.systemPrompt && maxNewTokens == other.maxNewTokens && ignoreEos == other.ignoreEos &&
           thinking == other.thinking &&
           a.temperature == b.temperature && a.topK == b.topK && a.topP == b.topP && a.minP == b.minP &&
           a.repeatPenalty == b.repeatPenalty && a.repeatLastN == b.repeatLastN && a.seed == b.seed;
}

Conversation Conversation::create(const QString& title, const ChatSettings& settings) {
    Conversation c;
    c.id = QUuid::createUuid().toString(QUuid::WithoutBraces);
    c.title = title;
    c.created = QDateTime::currentDateTime();
    c.settings = settings;
    return c;
}

QVector<PromptMessage> Conversation::promptMessages() const {
    QVector<PromptMessage> prompt;
    if (!settings.systemPrompt.trimmed().isEmpty()) prompt.push_back({Role::System, settings.systemPrompt});
    for (const Message& m : messages) {
        if (!m.text.isEmpty()) prompt.push_back({m.role, m.text});
    }
    return prompt;
}

QString roleName(Role role) {
    switch (role) {
    case Role::System:
        return QStringLiteral("system");
    case Role::User:
        return QStringLiteral("user");
    case Role::Assistant:
        return QStringLiteral("assistant");
    }
    return {};
}

QJsonObject samplingToJson(const SamplingParams& s) {
    return {{"temperature", double(s.temperature)}, {"topK", s.topK},
            {"topP", double(s.topP)},               {"minP", double(s.minP)},
            {"repeatPenalty", double(s.repeatPenalty)}, {"repeatLastN", s.repeatLastN},
            {"seed", QString::number(s.seed)}};
}

SamplingParams samplingFromJson(const QJsonObject& json, const SamplingParams& defaults) {
    SamplingParams s = defaults;
    s.temperature = float(json.value("temperature").toDouble(s.temperature));
    s.topK = json.value("topK").toInt(s.topK);
    s.topP = float(json.value("topP").toDouble(s.topP));
    s.minP = float(json.value("minP").toDouble(s.minP));
    s.repeatPenalty = float(json.value("repeatPenalty").toDouble(s.repeatPenalty));
    s.repeatLastN = json.value("repeatLastN").toInt(s.repeatLastN);
    bool ok = false;
    const quint64 seed = json.value("seed").toString().toULongLong(&ok);
    if (ok) s.seed = seed;
    return s;
}

QJsonObject Conversation::toJson() const {
    QJsonArray list;
    for (const Message& m : messages) {
        QJsonObject item{{"role", roleName(m.role)}, {"text", m.text}, {"time", m.time.toString(Qt::ISODateWithMs)}};
        if (m.stats) item["stats"] = statsToJson(*m.stats);
        if (!m.error.isEmpty()) item["error"] = m.error;
        if (m.thinkingSeconds) item["thinkingSeconds"] = *m.thinkingSeconds;
        list.append(item);
    }
    return {{"format", "pagoda-conversation"},
            {"version", 1},
            {"id", id},
            {"title", title},
            {"created", created.toString(Qt::ISODateWithMs)},
            {"systemPrompt", settings.systemPrompt},
            {"sampling", samplingToJson(settings.sampling)},
            {"maxNewTokens", settings.maxNewTokens},
            {"ignoreEos", settings.ignoreEos},
            {"thinking", settings.thinking},
            {"messages", list}};
}

std::optional<Conversation> Conversation::fromJson(const QJsonObject& json, QString* error) {
    const auto failWith = [error](const QString& message) -> std::optional<Conversation> {
        if (error) *error = message;
        return std::nullopt;
    };
    if (json.value("format").toString() != QLatin1String("pagoda-conversation")) {
        return failWith(QStringLiteral("not a Pagoda conversation (\"format\" is \"%1\")")
                            .arg(json.value("format").toString()));
    }
    Conversation c;
    c.id = json.value("id").toString();
    static const QRegularExpression kId(QStringLiteral("^[0-9a-fA-F-]{1,64}$"));
    if (!kId.match(c.id).hasMatch()) return failWith(QStringLiteral("invalid \"id\": \"%1\"").arg(c.id));
    c.title = json.value("title").toString();
    c.created = QDateTime::fromString(json.value("created").toString(), Qt::ISODateWithMs);
    c.settings.systemPrompt = json.value("systemPrompt").toString();
    c.settings.sampling = samplingFromJson(json.value("sampling").toObject(), SamplingParams{});
    c.settings.maxNewTokens = std::max(1, json.value("maxNewTokens").toInt(256));
    c.settings.ignoreEos = json.value("ignoreEos").toBool();
    c.settings.thinking = json.value("thinking").toBool(true);
    const QJsonArray list = json.value("messages").toArray();
    for (qsizetype i = 0; i < list.size(); ++i) {
        const QJsonObject item = list[i].toObject();
        const auto role = roleFromName(item.value("role").toString());
        if (!role) {
            return failWith(QStringLiteral("message %1: unknown role \"%2\"").arg(i).arg(item.value("role").toString()));
        }
        Message m;
        m.role = *role;
        m.text = item.value("text").toString();
        m.time = QDateTime::fromString(item.value("time").toString(), Qt::ISODateWithMs);
        if (item.contains("stats")) m.stats = statsFromJson(item.value("stats").toObject());
        m.error = item.value("error").toString();
        if (item.contains("thinkingSeconds")) m.thinkingSeconds = item.value("thinkingSeconds").toDouble();
        c.messages.push_back(std::move(m));
    }
    return c;
}

QString Conversation::toMarkdown() const {
    QString out = QStringLiteral("# %1\n\n").arg(title);
    if (!settings.systemPrompt.trimmed().isEmpty()) {
        out += QStringLiteral("> **System:** %1\n\n").arg(settings.systemPrompt.trimmed().replace('\n', "\n> "));
    }
    for (const Message& m : messages) {
        out += QStringLiteral("## %1\n\n").arg(markdownHeading(m.role));
        const ReplyParts parts = splitReply(m.text, true);
        if (m.role == Role::Assistant && parts.hasBlock) {
            // A reasoning model's <think> block, folded as GitHub and most viewers fold <details>.
            const QString summary = m.thinkingSeconds
                                        ? QStringLiteral("Reasoning (%1 s)").arg(*m.thinkingSeconds, 0, 'f', 1)
                                        : QStringLiteral("Reasoning");
            out += QStringLiteral("<details><summary>%1</summary>\n\n%2\n\n</details>\n\n%3\n\n")
                       .arg(summary, parts.reasoning, parts.answer);
        } else {
            out += m.text + QStringLiteral("\n\n");
        }
        if (m.stats) out += QStringLiteral("*%1*\n\n").arg(formatStats(*m.stats));
        if (!m.error.isEmpty()) out += QStringLiteral("**Error:** %1\n\n").arg(m.error);
    }
    return out;
}

ReplyParts splitReply(const QString& text, bool complete) {
    const QByteArray utf8 = text.toUtf8();
    const ReasoningSplit split = splitReasoning({utf8.constData(), size_t(utf8.size())}, complete);
    const auto qt = [](std::string_view s) { return QString::fromUtf8(s.data(), qsizetype(s.size())); };
    return {qt(split.reasoning), qt(split.answer), split.hasBlock, split.thinking};
}

MessageStats messageStats(const runtime::FinishEvent& event) {
    const runtime::RequestStats& r = event.stats;
    MessageStats s;
    s.promptTokens = r.promptTokens;
    s.reusedTokens = r.reusedTokens;
    s.generatedTokens = r.generatedTokens;
    s.preemptions = r.preemptions;
    s.ttftSeconds = r.ttftSeconds;
    s.tokensPerSecond = r.decodeTokensPerSecond();
    s.totalSeconds = r.totalSeconds;
    s.finishReason = QString::fromLatin1(runtime::finishReasonName(event.reason));
    return s;
}

QString formatStats(const MessageStats& s) {
    const QLocale c = QLocale::c();
    QString text = QStringLiteral("%1 tokens · %2 tok/s · TTFT %3 s · prompt %4 (%5 reused)")
                       .arg(s.generatedTokens)
                       .arg(c.toString(s.tokensPerSecond, 'f', 1))
                       .arg(c.toString(s.ttftSeconds, 'f', 2))
                       .arg(s.promptTokens)
                       .arg(s.reusedTokens);
    if (s.preemptions > 0) text += QStringLiteral(" · preempted %1×").arg(s.preemptions);
    if (!s.finishReason.isEmpty()) text += QStringLiteral(" · %1").arg(s.finishReason);
    return text;
}

}  // namespace pagoda::ui

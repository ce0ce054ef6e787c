#include "engine/chat/chat_template.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <optional>

#include <fmt/format.h>

#include "engine/chat/reasoning.h"

namespace pagoda {
namespace {

constexpr std::string_view kAsciiWhitespace = " \t\n\r\f\v";

// Jinja's trim and Python's str.strip(), for ASCII whitespace.
std::string_view trim(std::string_view text) {
    const size_t first = text.find_first_not_of(kAsciiWhitespace);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(kAsciiWhitespace) - first + 1);
}

bool contains(std::string_view source, std::string_view marker) {
    return source.find(marker) != std::string_view::npos;
}

// DeepSeek's markers are written with full-width bars (U+FF5C) and, in
// end▁of▁sentence, U+2581 for the spaces.
constexpr std::string_view kDeepSeekUser = "<｜User｜>";
constexpr std::string_view kDeepSeekAssistant = "<｜Assistant｜>";
constexpr std::string_view kDeepSeekEnd = "<｜end▁of▁sentence｜>";

// What the generation prompt adds inside an assistant turn to open the block,
// and, thinking off, the empty block Qwen 3's template writes.
constexpr std::string_view kOpenBlockPrompt = "<think>\n";
constexpr std::string_view kEmptyBlockPrompt = "<think>\n\n</think>\n\n";

// A template's "\n" is either a real newline or a Jinja escape (see detect).
bool containsEitherNewline(std::string_view source, std::string_view withNewlines) {
    std::string escaped;
    for (const char c : withNewlines) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
    return contains(source, withNewlines) || contains(source, escaped);
}

// docs/CHAT_TEMPLATES.md § Reasoning.
ReasoningSupport reasoningOf(std::string_view source) {
    ReasoningSupport reasoning;
    reasoning.dropsFromHistory = contains(source, kThinkClose);
    // The generation prompt is written after the template's last test of
    // add_generation_prompt; it opens the block when a string literal there
    // ends with "<think>\n" (Qwen 3's empty block has more after it).
    const size_t prompt = source.rfind("add_generation_prompt");
    if (prompt != std::string_view::npos) {
        const std::string_view tail = source.substr(prompt);
        const std::string opener(kOpenBlockPrompt);
        reasoning.promptOpensBlock =
            containsEitherNewline(tail, opener + "'") || containsEitherNewline(tail, opener + "\"");
    }
    reasoning.canSwitchOff = contains(source, "enable_thinking") && containsEitherNewline(source, kEmptyBlockPrompt);
    return reasoning;
}

std::string_view roleName(ChatRole role) {
    switch (role) {
        case ChatRole::System:
            return "system";
        case ChatRole::User:
            return "user";
        case ChatRole::Assistant:
            return "assistant";
    }
    return "unknown";
}

bool startsWithSystem(std::span<const ChatMessage> messages) {
    return !messages.empty() && messages.front().role == ChatRole::System;
}

// Templates without a system role (and Llama 2's, which folds it into the
// first turn) take one leading system message, then raise unless the turns
// alternate user/assistant from a user turn.
Result<void> checkAlternation(ChatFamily family, std::span<const ChatMessage> messages) {
    const size_t first = startsWithSystem(messages) ? 1 : 0;
    for (size_t i = first; i < messages.size(); ++i) {
        const ChatRole expected = (i - first) % 2 == 0 ? ChatRole::User : ChatRole::Assistant;
        if (messages[i].role != expected) {
            return fail("{} chat template: message {} is a {} turn where a {} turn must be (after one optional "
                        "system message, turns alternate user/assistant from a user turn)",
                        chatFamilyName(family), i, roleName(messages[i].role), roleName(expected));
        }
    }
    return {};
}

std::optional<ChatFamily> detectFamily(std::string_view source) {
    // Phi-4 writes <|im_start|>role<|im_sep|>: a format of its own.
    if (contains(source, "<|im_start|>")) {
        return contains(source, "<|im_sep|>") ? ChatFamily::Phi4 : ChatFamily::ChatMl;
    }
    if (contains(source, "<|start_header_id|>")) {
        return ChatFamily::Llama3;
    }
    if (contains(source, "<start_of_turn>")) {
        return ChatFamily::Gemma;
    }
    if (contains(source, "[INST]")) {
        if (contains(source, "<<SYS>>")) return ChatFamily::Llama2;
        if (contains(source, "[SYSTEM_PROMPT]")) return ChatFamily::MistralV7;
        // Mistral's v3-tekken templates (Nemo) write "[INST]" + content, no
        // space; v3's (7B v0.3) "[INST] " + content + "[/INST]"; v0.1's and
        // v0.2's a space before [/INST] too.
        if (contains(source, "\"[INST]\" + ") || contains(source, "'[INST]' + ")) return ChatFamily::MistralV3Tekken;
        if (contains(source, "[INST] ") && !contains(source, " [/INST]")) return ChatFamily::MistralV3;
        return ChatFamily::Mistral;
    }
    if (contains(source, kDeepSeekAssistant)) {
        return ChatFamily::DeepSeek;
    }
    // Phi-4-mini names each role tag from the message: '<|' + message['role'] + '|>'.
    if ((contains(source, "'<|' + message['role'] + '|>'") || contains(source, "'<|' + message.role + '|>'")) &&
        contains(source, "<|end|>")) {
        return ChatFamily::Phi4Mini;
    }
    if (contains(source, "<|user|>")) {
        if (contains(source, "<|end|>")) {
            return ChatFamily::Phi3;
        }
        if (contains(source, "</s>") || contains(source, "eos_token")) {
            return ChatFamily::Zephyr;
        }
    }
    return std::nullopt;
}

// The literal system message a ChatML template writes when the conversation
// has none, as Qwen 2's does:
// {{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
// ("\n" written either as an escape or as a real newline). Text with quotes,
// braces or backslashes is template code, not a literal message.
std::string defaultSystemOf(std::string_view source) {
    constexpr std::string_view kStart = "<|im_start|>system";
    constexpr std::string_view kEnd = "<|im_end|>";
    for (size_t at = source.find(kStart); at != std::string_view::npos; at = source.find(kStart, at + 1)) {
        std::string_view rest = source.substr(at + kStart.size());
        if (rest.starts_with("\\n")) {
            rest.remove_prefix(2);
        } else if (rest.starts_with('\n')) {
            rest.remove_prefix(1);
        } else {
            continue;
        }
        const std::string_view message = rest.substr(0, rest.find(kEnd));
        if (message.size() < rest.size() && !message.empty() &&
            message.find_first_of("'\"{}\\") == std::string_view::npos) {
            return std::string(message);
        }
    }
    return {};
}

// The literal a template sets `variable` to, as Mistral Small 3's sets its
// default system message: {%- set default_system_message = "..." %}
// (Jinja's escapes \n, \t, \\ and quotes undone). Empty when the value is
// built from more than one literal (Mistral Small 3.1 adds the date).
std::string literalSetOf(std::string_view source, std::string_view variable) {
    const std::string set = fmt::format("set {} = ", variable);
    const size_t at = source.find(set);
    if (at == std::string_view::npos) return {};
    std::string_view rest = source.substr(at + set.size());
    if (rest.empty() || (rest[0] != '"' && rest[0] != '\'')) return {};
    const char quote = rest[0];
    std::string message;
    size_t i = 1;
    for (; i < rest.size() && rest[i] != quote; ++i) {
        if (rest[i] != '\\' || i + 1 == rest.size()) {
            message += rest[i];
            continue;
        }
        const char escaped = rest[++i];
        message += escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped;
    }
    if (i == rest.size()) return {};
    rest.remove_prefix(i + 1);
    rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
    return rest.starts_with("%}") || rest.starts_with("-%}") ? message : std::string();
}

// What Llama 3.1 and later write as "Cutting Knowledge Date: December
// 2023\n" at the head of their system turn: "December 2023"; empty for a
// template without it.
std::string knowledgeCutoffOf(std::string_view source) {
    constexpr std::string_view kCutoff = "Cutting Knowledge Date: ";
    const size_t at = source.find(kCutoff);
    if (at == std::string_view::npos) return {};
    const std::string_view rest = source.substr(at + kCutoff.size());
    return std::string(rest.substr(0, rest.find_first_of("\\\n\"")));
}

// Today's date as strftime's "%d %b %Y" gives it ("29 Nov 2026"), as Llama
// 3.2's templates ask through strftime_now.
std::string today() {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    std::array<char, 32> text{};
    return std::string(text.data(), std::strftime(text.data(), text.size(), "%d %b %Y", &local));
}

}  // namespace

std::string_view chatFamilyName(ChatFamily family) {
    switch (family) {
        case ChatFamily::ChatMl:
            return "chatml";
        case ChatFamily::Llama2:
            return "llama2";
        case ChatFamily::Llama3:
            return "llama3";
        case ChatFamily::Mistral:
            return "mistral";
        case ChatFamily::Zephyr:
            return "zephyr";
        case ChatFamily::Phi3:
            return "phi3";
        case ChatFamily::Gemma:
            return "gemma";
        case ChatFamily::DeepSeek:
            return "deepseek";
        case ChatFamily::Phi4:
            return "phi4";
        case ChatFamily::Phi4Mini:
            return "phi4-mini";
        case ChatFamily::MistralV3Tekken:
            return "mistral-v3-tekken";
        case ChatFamily::MistralV3:
            return "mistral-v3";
        case ChatFamily::MistralV7:
            return "mistral-v7";
    }
    return "unknown";
}

ChatTemplate::ChatTemplate(ChatFamily family, std::string bosText, std::string eosText)
    : m_family(family), m_bosText(std::move(bosText)), m_eosText(std::move(eosText)) {}

ChatTemplate ChatTemplate::detect(std::string_view source, std::string bosText, std::string eosText) {
    const std::optional<ChatFamily> family = detectFamily(source);
    ChatTemplate chatTemplate(family.value_or(ChatFamily::ChatMl), std::move(bosText), std::move(eosText));
    if (!family) {
        chatTemplate.m_fallback = true;
        chatTemplate.m_note = source.empty()
                                  ? "the model has no chat template (tokenizer.chat_template); using chatml"
                                  : "unrecognized chat template; using chatml";
    } else if (*family == ChatFamily::ChatMl) {
        chatTemplate.m_defaultSystem = defaultSystemOf(source);
    } else if (*family == ChatFamily::MistralV7) {
        chatTemplate.m_defaultSystem = literalSetOf(source, "default_system_message");
    } else if (*family == ChatFamily::Llama3) {
        chatTemplate.m_knowledgeCutoff = knowledgeCutoffOf(source);
        // Llama 3.2's templates write the date of the day (strftime_now),
        // 3.1's and 3.3's a fixed one.
        if (!contains(source, "strftime_now")) chatTemplate.m_date = literalSetOf(source, "date_string");
    }
    chatTemplate.m_reasoning = reasoningOf(source);
    return chatTemplate;
}

ChatTemplate ChatTemplate::fromVocab(const Vocab& vocab) {
    const auto textOf = [&](int32_t id) { return id >= 0 ? vocab.tokens[size_t(id)] : std::string(); };
    return detect(vocab.chatTemplate, textOf(vocab.bos), textOf(vocab.eos));
}

Result<std::string> ChatTemplate::render(std::span<const ChatMessage> history, bool addGenerationPrompt,
                                         bool thinking) const {
    std::vector<ChatMessage> answersOnly;
    std::span<const ChatMessage> messages = history;
    if (m_reasoning.dropsFromHistory) {
        // DeepSeek's templates keep the answer of every assistant turn; Qwen's,
        // of those before the last user turn, without their leading newlines.
        answersOnly.assign(history.begin(), history.end());
        const auto lastUser = std::find_if(answersOnly.rbegin(), answersOnly.rend(),
                                           [](const ChatMessage& m) { return m.role == ChatRole::User; });
        const auto end = m_family == ChatFamily::DeepSeek ? answersOnly.end() : lastUser.base();
        for (auto m = answersOnly.begin(); m != end; ++m) {
            if (m->role != ChatRole::Assistant) continue;
            std::string_view answer = afterReasoning(m->content);
            if (m_family != ChatFamily::DeepSeek) {
                answer.remove_prefix(std::min(answer.find_first_not_of('\n'), answer.size()));
            }
            m->content = std::string(answer);
        }
        messages = answersOnly;
    }
    PAGODA_ASSIGN_OR_RETURN(std::string prompt, renderFamily(messages, addGenerationPrompt));
    if (addGenerationPrompt) prompt += thinkingPrompt(thinking);
    return prompt;
}

std::string_view ChatTemplate::thinkingPrompt(bool thinking) const {
    if (!thinking && m_reasoning.canSwitchOff) return kEmptyBlockPrompt;
    return m_reasoning.promptOpensBlock ? kOpenBlockPrompt : std::string_view();
}

std::string_view ChatTemplate::replyOpening(bool thinking) const {
    const std::string_view prompt = thinkingPrompt(thinking);
    return prompt == kOpenBlockPrompt ? prompt : std::string_view();
}

Result<std::string> ChatTemplate::renderFamily(std::span<const ChatMessage> messages, bool addGenerationPrompt) const {
    switch (m_family) {
        case ChatFamily::ChatMl:
            return renderChatMl(messages, addGenerationPrompt, "\n", "\n");
        case ChatFamily::Llama2:
            PAGODA_RETURN_IF_ERROR(checkAlternation(m_family, messages));
            return renderLlama2(messages);
        case ChatFamily::Llama3:
            return renderLlama3(messages, addGenerationPrompt);
        case ChatFamily::Mistral:
            PAGODA_RETURN_IF_ERROR(checkAlternation(m_family, messages));
            return renderMistral(messages);
        case ChatFamily::Zephyr:
            return renderZephyr(messages, addGenerationPrompt);
        case ChatFamily::Phi3:
        case ChatFamily::Phi4Mini:
            return renderPhi3(messages, addGenerationPrompt, m_family == ChatFamily::Phi3);
        case ChatFamily::Gemma:
            PAGODA_RETURN_IF_ERROR(checkAlternation(m_family, messages));
            return renderGemma(messages, addGenerationPrompt);
        case ChatFamily::DeepSeek:
            return renderDeepSeek(messages, addGenerationPrompt);
        case ChatFamily::Phi4:
            return renderChatMl(messages, addGenerationPrompt, "<|im_sep|>", "");
        case ChatFamily::MistralV3Tekken:
        case ChatFamily::MistralV3:
            PAGODA_RETURN_IF_ERROR(checkAlternation(m_family, messages));
            return renderMistralV3(messages, m_family == ChatFamily::MistralV3);
        case ChatFamily::MistralV7:
            return renderMistralV7(messages);
    }
    return fail("chat template family {} is not handled", int(m_family));
}

std::string ChatTemplate::renderChatMl(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                                       std::string_view separator, std::string_view turnEnd) const {
    const auto turn = [&](std::string_view role, std::string_view content) {
        return fmt::format("<|im_start|>{}{}{}<|im_end|>{}", role, separator, content, turnEnd);
    };
    std::string prompt;
    if (!m_defaultSystem.empty() && !messages.empty() && !startsWithSystem(messages)) {
        prompt += turn("system", m_defaultSystem);
    }
    for (const ChatMessage& message : messages) prompt += turn(roleName(message.role), message.content);
    if (addGenerationPrompt) {
        prompt += fmt::format("<|im_start|>assistant{}", separator);
    }
    return prompt;
}

std::string ChatTemplate::renderLlama2(std::span<const ChatMessage> messages) const {
    const bool hasSystem = startsWithSystem(messages);
    const size_t first = hasSystem ? 1 : 0;
    std::string prompt;
    for (size_t i = first; i < messages.size(); ++i) {
        const std::string& content = messages[i].content;
        if (messages[i].role == ChatRole::User) {
            const std::string turn =
                i == first && hasSystem ? "<<SYS>>\n" + messages[0].content + "\n<</SYS>>\n\n" + content : content;
            // Every user turn starts with BOS; the first one is left to the tokenizer.
            prompt += i == first ? "" : m_bosText;
            prompt += "[INST] ";
            prompt += trim(turn);
            prompt += " [/INST]";
        } else {
            prompt += " ";
            prompt += trim(content);
            prompt += " " + m_eosText;
        }
    }
    return prompt;
}

std::string ChatTemplate::renderLlama3(std::span<const ChatMessage> messages, bool addGenerationPrompt) const {
    std::string prompt;
    if (!m_knowledgeCutoff.empty()) {
        // Llama 3.1 and later: a system turn always, the dates first.
        const bool hasSystem = startsWithSystem(messages);
        prompt += fmt::format("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: {}\nToday Date: "
                              "{}\n\n{}<|eot_id|>",
                              m_knowledgeCutoff, m_date.empty() ? today() : m_date,
                              hasSystem ? trim(messages[0].content) : std::string_view());
        if (hasSystem) messages = messages.subspan(1);
    }
    for (const ChatMessage& message : messages) {
        prompt += "<|start_header_id|>";
        prompt += roleName(message.role);
        prompt += "<|end_header_id|>\n\n";
        prompt += trim(message.content);
        prompt += "<|eot_id|>";
    }
    if (addGenerationPrompt) {
        prompt += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    return prompt;
}

std::string ChatTemplate::renderMistral(std::span<const ChatMessage> messages) const {
    const bool hasSystem = startsWithSystem(messages);
    const size_t first = hasSystem ? 1 : 0;
    std::string prompt;
    for (size_t i = first; i < messages.size(); ++i) {
        const std::string& content = messages[i].content;
        if (messages[i].role == ChatRole::User) {
            // v0.1 has no system role; later Mistral templates put it before the user text.
            prompt += "[INST] ";
            prompt += i == first && hasSystem ? messages[0].content + "\n\n" + content : content;
            prompt += " [/INST]";
        } else {
            prompt += content + m_eosText;
        }
    }
    return prompt;
}

std::string ChatTemplate::renderZephyr(std::span<const ChatMessage> messages, bool addGenerationPrompt) const {
    std::string prompt;
    for (const ChatMessage& message : messages) {
        prompt += "<|";
        prompt += roleName(message.role);
        prompt += "|>\n" + message.content + m_eosText + "\n";
    }
    // The template adds the generation prompt inside its loop, after the last message.
    if (addGenerationPrompt && !messages.empty()) {
        prompt += "<|assistant|>\n";
    }
    return prompt;
}

std::string ChatTemplate::renderPhi3(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                                     bool newlines) const {
    const std::string_view newline = newlines ? "\n" : "";
    std::string prompt;
    for (const ChatMessage& message : messages) {
        prompt += "<|";
        prompt += roleName(message.role);
        prompt += "|>";
        prompt += newline;
        prompt += message.content + "<|end|>";
        prompt += newline;
    }
    if (addGenerationPrompt) {
        prompt += "<|assistant|>";
        prompt += newline;
    } else {
        prompt += m_eosText;
    }
    return prompt;
}

std::string ChatTemplate::renderGemma(std::span<const ChatMessage> messages, bool addGenerationPrompt) const {
    const bool hasSystem = startsWithSystem(messages);
    const size_t first = hasSystem ? 1 : 0;
    std::string prompt;
    for (size_t i = first; i < messages.size(); ++i) {
        prompt += messages[i].role == ChatRole::User ? "<start_of_turn>user\n" : "<start_of_turn>model\n";
        // Gemma has no system role: its text opens the first user turn, untrimmed.
        if (i == first && hasSystem) {
            prompt += messages[0].content + "\n\n";
        }
        prompt += trim(messages[i].content);
        prompt += "<end_of_turn>\n";
    }
    if (addGenerationPrompt) {
        prompt += "<start_of_turn>model\n";
    }
    return prompt;
}

std::string ChatTemplate::renderDeepSeek(std::span<const ChatMessage> messages, bool addGenerationPrompt) const {
    // The system messages come first, bare, joined by blank lines.
    std::string prompt;
    for (const ChatMessage& message : messages) {
        if (message.role != ChatRole::System) continue;
        prompt += prompt.empty() ? message.content : "\n\n" + message.content;
    }
    for (const ChatMessage& message : messages) {
        if (message.role == ChatRole::User) {
            prompt += kDeepSeekUser;
            prompt += message.content;
        } else if (message.role == ChatRole::Assistant) {
            prompt += kDeepSeekAssistant;
            prompt += message.content;
            prompt += kDeepSeekEnd;
        }
    }
    if (addGenerationPrompt) {
        prompt += kDeepSeekAssistant;
    }
    return prompt;
}

std::string ChatTemplate::renderMistralV3(std::span<const ChatMessage> messages, bool spaced) const {
    const bool hasSystem = startsWithSystem(messages);
    std::string prompt;
    for (size_t i = hasSystem ? 1 : 0; i < messages.size(); ++i) {
        if (messages[i].role == ChatRole::User) {
            // The system text opens the last message, when that is a user turn.
            prompt += spaced ? "[INST] " : "[INST]";
            if (hasSystem && i + 1 == messages.size()) prompt += messages[0].content + "\n\n";
            prompt += messages[i].content + "[/INST]";
        } else if (spaced) {
            prompt += " ";
            prompt += trim(messages[i].content);
            prompt += m_eosText;
        } else {
            prompt += messages[i].content + m_eosText;
        }
    }
    return prompt;
}

std::string ChatTemplate::renderMistralV7(std::span<const ChatMessage> messages) const {
    std::string prompt;
    if (!m_defaultSystem.empty() && !startsWithSystem(messages)) {
        prompt += "[SYSTEM_PROMPT]" + m_defaultSystem + "[/SYSTEM_PROMPT]";
    }
    for (const ChatMessage& message : messages) {
        switch (message.role) {
            case ChatRole::System:
                prompt += "[SYSTEM_PROMPT]" + message.content + "[/SYSTEM_PROMPT]";
                break;
            case ChatRole::User:
                prompt += "[INST]" + message.content + "[/INST]";
                break;
            case ChatRole::Assistant:
                prompt += message.content + m_eosText;
                break;
        }
    }
    return prompt;
}

std::vector<std::string> ChatTemplate::stopTexts() const {
    std::string marker;
    switch (m_family) {
        case ChatFamily::ChatMl:
        case ChatFamily::Phi4:
            marker = "<|im_end|>";
            break;
        case ChatFamily::Llama3:
            marker = "<|eot_id|>";
            break;
        case ChatFamily::Phi3:
        case ChatFamily::Phi4Mini:
            marker = "<|end|>";
            break;
        case ChatFamily::Gemma:
            marker = "<end_of_turn>";
            break;
        case ChatFamily::DeepSeek:
            marker = kDeepSeekEnd;
            break;
        case ChatFamily::Llama2:
        case ChatFamily::Mistral:
        case ChatFamily::MistralV3Tekken:
        case ChatFamily::MistralV3:
        case ChatFamily::MistralV7:
        case ChatFamily::Zephyr:
            break;  // turns end with EOS
    }
    std::vector<std::string> texts;
    if (!marker.empty()) {
        texts.push_back(marker);
    }
    if (!m_eosText.empty() && m_eosText != marker) {
        texts.push_back(m_eosText);
    }
    return texts;
}

}  // namespace pagoda

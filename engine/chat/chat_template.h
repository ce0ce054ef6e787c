#pragma once
// Chat prompts: recognizes a model's chat template family from the Jinja
// source in tokenizer.chat_template (by distinctive markers; no Jinja
// interpreter) and renders a conversation the way that family's published
// template does. Formats and sources: docs/CHAT_TEMPLATES.md.
//
// Contract with the tokenizer: the rendered text leaves out the BOS that
// templates put first ("{{ bos_token }}"), as llama.cpp's
// llama_chat_apply_template does; encode it with
// encode(text, vocab.addBos, /*parseSpecial=*/true) so that the tokenizer
// adds BOS and the marker texts ("<|im_start|>", a BOS inside the history)
// become their special tokens.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"
#include "engine/tokenizer/vocab.h"

namespace pagoda {

enum class ChatRole { System, User, Assistant };

struct ChatMessage {
    ChatRole role;
    std::string content;
};

enum class ChatFamily {
    ChatMl,   // <|im_start|>role ... <|im_end|> (Qwen, many fine-tunes); the default
    Llama2,   // [INST] with <<SYS>>
    Llama3,   // <|start_header_id|>role<|end_header_id|>
    Mistral,  // [INST] without a system role (Mistral 7B Instruct v0.1)
    Zephyr,   // <|user|> ... </s>
    Phi3,     // <|user|> ... <|end|>
    Gemma,    // <start_of_turn>user / model, no system role
    DeepSeek, // <｜User｜> ... <｜Assistant｜> (DeepSeek-R1 and its distills)
    Phi4,     // <|im_start|>role<|im_sep|> ... <|im_end|>
    Phi4Mini, // <|user|> ... <|end|> without Phi-3's newlines
    MistralV3Tekken,  // [INST]...[/INST] without spaces, the system text in the last user turn (Mistral Nemo)
    MistralV3,  // [INST] ...[/INST] and " " before the trimmed reply, the system text so too (Mistral 7B v0.3)
    MistralV7,  // [SYSTEM_PROMPT]...[/SYSTEM_PROMPT][INST]...[/INST] (Mistral Small 3)
};

// "chatml", "llama2", "llama3", "mistral", "zephyr", "phi3", "gemma", "deepseek", "phi4", "phi4-mini",
// "mistral-v3-tekken", "mistral-v3", "mistral-v7".
std::string_view chatFamilyName(ChatFamily family);

// What a template does with a reasoning model's <think>…</think> block
// (docs/CHAT_TEMPLATES.md § Reasoning); all false for other models.
struct ReasoningSupport {
    // Earlier assistant turns keep only their text after "</think>" (the
    // template's content.split('</think>')[-1]).
    bool dropsFromHistory = false;
    // The generation prompt ends with "<think>\n" (DeepSeek-R1, QwQ): the
    // reply starts inside the block.
    bool promptOpensBlock = false;
    // Qwen 3's enable_thinking: with thinking off, the generation prompt
    // closes an empty block and the model answers at once.
    bool canSwitchOff = false;

    bool operator==(const ReasoningSupport&) const = default;
};

class ChatTemplate {
public:
    // A family's format; `bosText`/`eosText` are what the template writes for
    // bos_token/eos_token (the vocab's BOS and EOS token texts).
    ChatTemplate(ChatFamily family, std::string bosText, std::string eosText);

    // Picks the family from a tokenizer.chat_template source. An empty or
    // unrecognized source gives ChatML with isFallback() set and a note
    // saying so. A ChatML template that adds a literal default system
    // message (Qwen 2) keeps it.
    static ChatTemplate detect(std::string_view source, std::string bosText, std::string eosText);
    // detect() on the vocab's chat template, BOS and EOS texts.
    static ChatTemplate fromVocab(const Vocab& vocab);

    ChatFamily family() const { return m_family; }
    bool isFallback() const { return m_fallback; }
    // Why the default is in use; empty when the template was recognized.
    const std::string& note() const { return m_note; }
    // The system message added when a conversation starts without one ("" for none).
    const std::string& defaultSystem() const { return m_defaultSystem; }
    const ReasoningSupport& reasoning() const { return m_reasoning; }

    // The prompt for `messages`, then the start of an assistant turn when
    // addGenerationPrompt (families whose templates have none ignore it).
    // Error when the family's template would reject the conversation:
    // Llama 2, Mistral and Gemma need user/assistant turns alternating from a
    // user turn, after one optional leading system message.
    // `thinking` false asks a template that can switch thinking off to do so
    // (reasoning().canSwitchOff); others ignore it.
    Result<std::string> render(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                               bool thinking = true) const;
    // What the generation prompt ends with for `thinking`, after the
    // family's start of an assistant turn: "<think>\n" when the template
    // opens the block, the empty block "<think>\n\n</think>\n\n" when
    // thinking is switched off, else "". The reply starts after it.
    std::string_view thinkingPrompt(bool thinking) const;
    // The start of the reply the generation prompt already wrote: "<think>\n"
    // when it leaves the block open, else "". Chats show it before the
    // generated text, so that the reply reads as the model sees it.
    std::string_view replyOpening(bool thinking) const;

    // Token texts that end an assistant turn: the family's end-of-turn
    // marker, then the EOS text when it differs. Stop generating on these.
    std::vector<std::string> stopTexts() const;

private:
    Result<std::string> renderFamily(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;
    // <|im_start|>role, `separator`, the content, <|im_end|> and `turnEnd`
    // for each message: ChatML ("\n", "\n"), Phi-4 ("<|im_sep|>", "").
    std::string renderChatMl(std::span<const ChatMessage> messages, bool addGenerationPrompt,
                             std::string_view separator, std::string_view turnEnd) const;
    std::string renderLlama2(std::span<const ChatMessage> messages) const;
    std::string renderLlama3(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;
    std::string renderMistral(std::span<const ChatMessage> messages) const;
    // spaced: v3's "[INST] " and " " + the trimmed reply; else v3-tekken's turns.
    std::string renderMistralV3(std::span<const ChatMessage> messages, bool spaced) const;
    std::string renderMistralV7(std::span<const ChatMessage> messages) const;
    std::string renderZephyr(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;
    // Phi-3's turns, with a newline after each role tag and after each
    // turn, or (Phi-4-mini) with neither.
    std::string renderPhi3(std::span<const ChatMessage> messages, bool addGenerationPrompt, bool newlines) const;
    std::string renderGemma(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;
    std::string renderDeepSeek(std::span<const ChatMessage> messages, bool addGenerationPrompt) const;

    ChatFamily m_family;
    std::string m_bosText;
    std::string m_eosText;
    bool m_fallback = false;
    std::string m_note;
    std::string m_defaultSystem;
    // Llama 3.1 and later: the knowledge cutoff their system turn opens
    // with, and the date after it (empty: today's).
    std::string m_knowledgeCutoff;
    std::string m_date;
    ReasoningSupport m_reasoning;
};

}  // namespace pagoda

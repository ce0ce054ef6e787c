#pragma once
// Replies of reasoning models (DeepSeek-R1 and its distills, Qwen 3, QwQ):
// they think in a <think>…</think> block, then answer. What the chat
// templates do with the block is in docs/CHAT_TEMPLATES.md § Reasoning.

#include <string_view>

namespace pagoda {

inline constexpr std::string_view kThinkOpen = "<think>";
inline constexpr std::string_view kThinkClose = "</think>";

// A reply, or the part of it generated so far, split for display.
struct ReasoningSplit {
    std::string_view reasoning;  // inside the block, without its tags or the newlines around it
    std::string_view answer;     // after the block, without the newlines that start it; all of a reply without one
    bool hasBlock = false;       // the reply thinks (or may: it starts with part of "<think>")
    bool thinking = false;       // the block is still open: no answer yet
};

// The block is the text up to the first "</think>", less an opening
// "<think>" after leading whitespace; a reply that starts with "<think>"
// and has no "</think>" yet is all reasoning, still open. While the reply
// is still being generated (`complete` false), one that so far is a proper
// prefix of "<think>" ("<thi") is taken as an open, empty block, so that
// streamed text never shows half a tag as the answer.
ReasoningSplit splitReasoning(std::string_view reply, bool complete);

// What the published templates keep of an earlier assistant turn:
// content.split('</think>')[-1], the text after the last "</think>" (all
// of it when there is none).
std::string_view afterReasoning(std::string_view content);

}  // namespace pagoda

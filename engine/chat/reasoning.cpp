#include "engine/chat/reasoning.h"

#include <algorithm>

namespace pagoda {
namespace {

std::string_view trimNewlines(std::string_view text) {
    const size_t first = text.find_first_not_of('\n');
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of('\n') - first + 1);
}

}  // namespace

ReasoningSplit splitReasoning(std::string_view reply, bool complete) {
    ReasoningSplit split;
    const size_t start = reply.find_first_not_of(" \t\n\r");
    const std::string_view lead = start == std::string_view::npos ? std::string_view() : reply.substr(start);
    const size_t close = reply.find(kThinkClose);
    if (close != std::string_view::npos) {
        const size_t from = lead.starts_with(kThinkOpen) ? start + kThinkOpen.size() : 0;
        split.reasoning = trimNewlines(reply.substr(from, close - from));
        split.answer = reply.substr(close + kThinkClose.size());
        split.answer.remove_prefix(std::min(split.answer.find_first_not_of('\n'), split.answer.size()));
        split.hasBlock = true;
        return split;
    }
    if (lead.starts_with(kThinkOpen)) {
        split.reasoning = trimNewlines(lead.substr(kThinkOpen.size()));
        split.hasBlock = split.thinking = true;
        return split;
    }
    if (!complete && !lead.empty() && kThinkOpen.starts_with(lead)) {
        split.hasBlock = split.thinking = true;
        return split;
    }
    split.answer = reply;
    return split;
}

std::string_view afterReasoning(std::string_view content) {
    const size_t close = content.rfind(kThinkClose);
    return close == std::string_view::npos ? content : content.substr(close + kThinkClose.size());
}

}  // namespace pagoda

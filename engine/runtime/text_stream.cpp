#include "engine/runtime/text_stream.h"

#include <algorithm>
#include <string_view>

namespace pagoda::runtime {

TextStream::TextStream(const Tokenizer* tokenizer, std::vector<std::string> stopStrings, bool afterBos)
    : m_stops(std::move(stopStrings)) {
    std::erase_if(m_stops, [](const std::string& s) { return s.empty(); });
    if (tokenizer == nullptr) return;
    m_decoder.emplace(*tokenizer);
    // BOS has no text; it only tells the decoder that a text starts.
    if (afterBos) m_decoder->push(tokenizer->bos());
}

size_t TextStream::partialStopLength() const {
    size_t longest = 0;
    const std::string_view held = m_held;
    for (const std::string& stop : m_stops) {
        for (size_t n = std::min(stop.size() - 1, held.size()); n > longest; --n) {
            if (held.substr(held.size() - n) == std::string_view(stop).substr(0, n)) {
                longest = n;
                break;
            }
        }
    }
    return longest;
}

TextStream::Delta TextStream::push(int32_t token) {
    if (!m_decoder || m_stopped) return {};
    m_held += m_decoder->push(token);
    size_t first = std::string::npos;
    for (const std::string& stop : m_stops) first = std::min(first, m_held.find(stop));
    Delta delta;
    if (first != std::string::npos) {
        delta.text = m_held.substr(0, first);
        delta.stopped = true;
        m_stopped = true;
        m_held.clear();
        return delta;
    }
    const size_t keep = partialStopLength();
    delta.text = m_held.substr(0, m_held.size() - keep);
    m_held.erase(0, m_held.size() - keep);
    return delta;
}

std::string TextStream::finish() {
    if (!m_decoder || m_stopped) return {};
    std::string rest = std::move(m_held) + m_decoder->flush();
    m_held.clear();
    return rest;
}

}  // namespace pagoda::runtime

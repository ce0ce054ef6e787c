#pragma once
// The merge loop shared by the SentencePiece and byte-level BPE encoders:
// text split into UTF-8 characters as a linked list of symbols, adjacent
// pairs merged best-first until no pair qualifies. O(n log n) with a heap;
// stale heap entries are recognised by their pair length.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

namespace pagoda::tokenizer_detail {

// A run of text [offset, offset + length) in a doubly linked list; merged
// symbols keep length 0 and are skipped.
struct MergeSymbol {
    int32_t prev;
    int32_t next;  // -1 after the last symbol
    uint32_t offset;
    uint32_t length;
};

// Bytes in the UTF-8 character a lead byte starts, by its high nibble. Stray
// continuation bytes count as one-byte characters, as in llama.cpp.
inline size_t utf8CharLength(char lead) {
    constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLengths[uint8_t(lead) >> 4];
}

// One symbol per UTF-8 character of text (a truncated last character is one symbol).
inline std::vector<MergeSymbol> splitCharacters(std::string_view text) {
    std::vector<MergeSymbol> symbols;
    symbols.reserve(text.size());
    for (size_t offset = 0; offset < text.size();) {
        const size_t length = std::min(utf8CharLength(text[offset]), text.size() - offset);
        const auto index = int32_t(symbols.size());
        offset += length;
        symbols.push_back({index - 1, offset == text.size() ? -1 : index + 1, uint32_t(offset - length),
                           uint32_t(length)});
    }
    return symbols;
}

// Merges adjacent symbols while some pair qualifies: priority(a, b) gives
// the pair's priority (lower merges first; ties go to the leftmost pair) or
// nullopt when the pair may not merge.
template <class Priority>
void mergeSymbols(std::vector<MergeSymbol>& symbols, Priority priority) {
    using P = typename decltype(priority(symbols[0], symbols[0]))::value_type;
    struct Bigram {
        P priority;
        uint32_t length;  // of the pair when queued; changes when either side merges
        int32_t left;
    };
    struct Later {
        bool operator()(const Bigram& a, const Bigram& b) const {
            return b.priority < a.priority || (!(a.priority < b.priority) && a.left > b.left);
        }
    };
    std::priority_queue<Bigram, std::vector<Bigram>, Later> queue;
    const auto tryAdd = [&](int32_t left) {
        if (left < 0 || symbols[size_t(left)].next < 0) return;
        const MergeSymbol& a = symbols[size_t(left)];
        const MergeSymbol& b = symbols[size_t(a.next)];
        if (const std::optional<P> p = priority(a, b)) queue.push({*p, a.length + b.length, left});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) tryAdd(int32_t(i));

    while (!queue.empty()) {
        const Bigram bigram = queue.top();
        queue.pop();
        MergeSymbol& left = symbols[size_t(bigram.left)];
        if (left.length == 0 || left.next < 0) continue;
        // Symbols only grow, so an unchanged pair length means an unchanged pair.
        MergeSymbol& right = symbols[size_t(left.next)];
        if (left.length + right.length != bigram.length) continue;
        left.length += right.length;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[size_t(right.next)].prev = bigram.left;
        tryAdd(left.prev);
        tryAdd(bigram.left);
    }
}

}  // namespace pagoda::tokenizer_detail

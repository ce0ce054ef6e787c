#include "engine/tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <charconv>
#include <queue>

#include <fmt/format.h>

namespace pagoda {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// Bytes in the UTF-8 character a lead byte starts, by its high nibble. Stray
// continuation bytes count as one-byte characters, as in llama.cpp.
size_t utf8Length(char lead) {
    constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLengths[uint8_t(lead) >> 4];
}

std::string escapeWhitespace(std::string_view text, bool addSpacePrefix) {
    std::string escaped;
    escaped.reserve(text.size() + kSpace.size());
    if (addSpacePrefix) {
        escaped += kSpace;
    }
    for (const char c : text) {
        if (c == ' ') {
            escaped += kSpace;
        } else {
            escaped += c;
        }
    }
    return escaped;
}

std::string unescapeWhitespace(std::string_view text) {
    std::string unescaped;
    unescaped.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
        if (text.substr(pos, kSpace.size()) == kSpace) {
            unescaped += ' ';
            pos += kSpace.size();
        } else {
            unescaped += text[pos++];
        }
    }
    return unescaped;
}

// A run of the escaped text, linked to its neighbours; length 0 once merged away.
struct Symbol {
    int64_t prev;
    int64_t next;
    size_t offset;
    size_t length;
};

// The symbol `left` and its right neighbour, whose concatenation is a token
// with `score`. 16 bytes: the heap's memory traffic dominates encoding.
struct Bigram {
    float score;
    uint32_t length;  // of the concatenation (a token, so short); changes when a side merges
    int64_t left;
};

// Highest score first; the leftmost pair on ties.
struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

SpmTokenizer::SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {
    for (size_t byte = 0; byte < m_byteTokens.size(); ++byte) {
        const int32_t id = find(fmt::format("<0x{:02X}>", byte));
        m_byteTokens[byte] = id >= 0 ? id : m_vocab.unk;
    }
}

void SpmTokenizer::encodeText(std::string_view text, std::vector<int32_t>& ids) const {
    const std::string escaped = escapeWhitespace(text, m_vocab.addSpacePrefix);
    const std::string_view view = escaped;

    std::vector<Symbol> symbols;
    symbols.reserve(escaped.size());
    for (size_t offset = 0; offset < escaped.size();) {
        const size_t length = std::min(utf8Length(escaped[offset]), escaped.size() - offset);
        const auto index = int64_t(symbols.size());
        offset += length;
        symbols.push_back({index - 1, offset == escaped.size() ? -1 : index + 1, offset - length, length});
    }

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    const auto tryAddBigram = [&](int64_t left) {
        if (left < 0 || symbols[size_t(left)].next < 0) {
            return;
        }
        const Symbol& a = symbols[size_t(left)];
        const size_t length = a.length + symbols[size_t(a.next)].length;
        const int32_t id = find(view.substr(a.offset, length));
        if (id >= 0) {
            queue.push({score(id), uint32_t(length), left});
        }
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        tryAddBigram(int64_t(i));
    }

    while (!queue.empty()) {
        const Bigram bigram = queue.top();
        queue.pop();
        Symbol& left = symbols[size_t(bigram.left)];
        if (left.length == 0 || left.next < 0) {
            continue;
        }
        // Lengths only grow, so an unchanged sum means an unchanged pair.
        Symbol& right = symbols[size_t(left.next)];
        if (left.length + right.length != bigram.length) {
            continue;
        }
        left.length += right.length;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0) {
            symbols[size_t(right.next)].prev = bigram.left;
        }
        tryAddBigram(left.prev);
        tryAddBigram(bigram.left);
    }

    // Merged symbols are tokens by construction; single characters may not
    // be, and fall back to one byte token per UTF-8 byte.
    for (int64_t i = 0; i >= 0; i = symbols[size_t(i)].next) {
        const Symbol& symbol = symbols[size_t(i)];
        const std::string_view symbolText = view.substr(symbol.offset, symbol.length);
        const int32_t id = find(symbolText);
        if (id >= 0) {
            ids.push_back(id);
            continue;
        }
        for (const char byte : symbolText) {
            const int32_t byteId = m_byteTokens[uint8_t(byte)];
            if (byteId >= 0) {
                ids.push_back(byteId);
            }
        }
    }
}

std::string SpmTokenizer::piece(int32_t id, bool afterBos) const {
    if (id < 0 || id >= m_vocab.size()) {
        return {};
    }
    const std::string& text = m_vocab.tokens[size_t(id)];
    std::string result;
    switch (type(id)) {
        case TokenType::Control:
        case TokenType::Unknown:
        case TokenType::Unused:
            return {};
        case TokenType::UserDefined:
            result = text;
            break;
        case TokenType::Byte: {
            uint8_t byte = 0;
            const bool isByteToken = text.size() == 6 && text.starts_with("<0x") && text.ends_with('>') &&
                                     std::from_chars(text.data() + 3, text.data() + 5, byte, 16).ptr ==
                                         text.data() + 5;
            result = isByteToken ? std::string(1, char(byte)) : text;
            break;
        }
        case TokenType::Undefined:
        case TokenType::Normal:
            result = unescapeWhitespace(text);
            break;
    }
    if (afterBos && m_vocab.addSpacePrefix && result.starts_with(' ')) {
        result.erase(0, 1);
    }
    return result;
}

}  // namespace pagoda

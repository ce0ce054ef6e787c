#include "engine/tokenizer/spm_tokenizer.h"
#include "engine/tokenizer/symbol_merge.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace pagoda {
namespace {

using tokenizer_detail::MergeSymbol;
using tokenizer_detail::mergeSymbols;
using tokenizer_detail::splitCharacters;
using tokenizer_detail::utf8CharLength;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

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

    std::vector<MergeSymbol> symbols = splitCharacters(view);
    // The pair whose concatenation is the highest-scoring token merges first.
    mergeSymbols(symbols, [&](const MergeSymbol& a, const MergeSymbol& b) -> std::optional<float> {
        const int32_t id = find(view.substr(a.offset, a.length + b.length));
        if (id < 0) return std::nullopt;
        return -score(id);
    });

    // Merged symbols are tokens by construction; single characters may not
    // be, and fall back to one byte token per UTF-8 byte.
    for (int32_t i = 0; i >= 0; i = symbols[size_t(i)].next) {
        const MergeSymbol& symbol = symbols[size_t(i)];
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

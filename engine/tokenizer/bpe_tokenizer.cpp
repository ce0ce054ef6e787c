#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/symbol_merge.h"

#include <array>

namespace pagoda {
namespace {

using tokenizer_detail::MergeSymbol;
using tokenizer_detail::mergeSymbols;
using tokenizer_detail::splitCharacters;
using tokenizer_detail::utf8CharLength;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
// the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) for U+0100..U+0143
// in byte order, so every byte is a visible character.
constexpr uint32_t kByteLevelEnd = 0x100 + 68;

struct ByteLevel {
    std::array<uint32_t, 256> codePoint{};     // byte -> code point
    std::array<int16_t, kByteLevelEnd> byte{};  // code point -> byte, -1 for none
};

constexpr bool isPrintable(uint32_t byte) {
    return (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

constexpr ByteLevel makeByteLevel() {
    ByteLevel table;
    table.byte.fill(-1);
    uint32_t next = 0x100;
    for (uint32_t byte = 0; byte < 256; ++byte) {
        const uint32_t codePoint = isPrintable(byte) ? byte : next++;
        table.codePoint[byte] = codePoint;
        table.byte[codePoint] = int16_t(byte);
    }
    return table;
}

constexpr ByteLevel kByteLevel = makeByteLevel();

// Every byte-level character is below U+0800: one or two UTF-8 bytes.
void appendByteLevel(std::string& out, uint8_t byte) {
    const uint32_t codePoint = kByteLevel.codePoint[byte];
    if (codePoint < 0x80) {
        out += char(codePoint);
    } else {
        out += char(0xC0 | (codePoint >> 6));
        out += char(0x80 | (codePoint & 0x3F));
    }
}

// The byte a one- or two-byte character of a token's text stands for; -1
// when it is not a byte-level character.
int byteOf(std::string_view character) {
    uint32_t codePoint = kByteLevelEnd;
    if (character.size() == 1) {
        codePoint = uint8_t(character[0]);
    } else if (character.size() == 2 && (uint8_t(character[1]) & 0xC0) == 0x80) {
        codePoint = ((uint8_t(character[0]) & 0x1Fu) << 6) | (uint8_t(character[1]) & 0x3Fu);
    }
    return codePoint < kByteLevelEnd ? kByteLevel.byte[codePoint] : -1;
}

// A run of the word, linked to its neighbours; length 0 once merged away.
// llama.cpp splits a merge at the first space after its first byte.
bool isMerge(std::string_view merge) {
    const size_t space = merge.find(' ', 1);
    return space != std::string_view::npos && space + 1 < merge.size();
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> BpeTokenizer::create(Vocab vocab) {
    if (vocab.merges.empty()) {
        return fail("tokenizer.ggml.merges: missing (a '{}' vocab needs its BPE merges)", vocab.model);
    }
    for (size_t index = 0; index < vocab.merges.size(); ++index) {
        if (!isMerge(vocab.merges[index])) {
            return fail("tokenizer.ggml.merges: entry {} '{}' is not two symbols separated by a space", index,
                        vocab.merges[index]);
        }
    }
    PAGODA_ASSIGN_OR_RETURN(PreTokenizer preTokenizer, PreTokenizer::create(vocab.pre));
    return std::make_unique<BpeTokenizer>(std::move(vocab), std::move(preTokenizer));
}

BpeTokenizer::BpeTokenizer(Vocab vocab, PreTokenizer preTokenizer)
    : Tokenizer(std::move(vocab)), m_preTokenizer(std::move(preTokenizer)) {
    m_ranks.reserve(m_vocab.merges.size());
    for (size_t index = 0; index < m_vocab.merges.size(); ++index) {
        const std::string_view merge = m_vocab.merges[index];
        // The first occurrence of a duplicate keeps its rank, as in llama.cpp.
        if (isMerge(merge)) {
            m_ranks.try_emplace(merge, int32_t(index));
        }
    }
}

int32_t BpeTokenizer::rank(std::string_view left, std::string_view right, std::string& key) const {
    key.assign(left);
    key += ' ';
    key += right;
    const auto it = m_ranks.find(key);
    return it == m_ranks.end() ? -1 : it->second;
}

void BpeTokenizer::encodeText(std::string_view text, std::vector<int32_t>& ids) const {
    std::string word;
    for (const std::string_view raw : m_preTokenizer.split(text)) {
        word.clear();
        for (const char byte : raw) {
            appendByteLevel(word, uint8_t(byte));
        }
        encodeWord(word, ids);
    }
}

void BpeTokenizer::encodeWord(std::string_view word, std::vector<int32_t>& ids) const {
    if (m_preTokenizer.ignoreMerges()) {
        if (const int32_t id = find(word); id >= 0) {
            ids.push_back(id);
            return;
        }
    }

    std::vector<MergeSymbol> symbols = splitCharacters(word);
    std::string key;
    // The pair with the lowest merge rank merges first.
    mergeSymbols(symbols, [&](const MergeSymbol& a, const MergeSymbol& b) -> std::optional<int32_t> {
        const int32_t found = rank(word.substr(a.offset, a.length), word.substr(b.offset, b.length), key);
        if (found < 0) return std::nullopt;
        return found;
    });

    // A merge result that is not a token (a broken vocab) falls back to its
    // characters; characters without a token are dropped, as in llama.cpp.
    for (int32_t i = 0; i >= 0; i = symbols[size_t(i)].next) {
        const MergeSymbol& symbol = symbols[size_t(i)];
        const std::string_view text = word.substr(symbol.offset, symbol.length);
        if (const int32_t id = find(text); id >= 0) {
            ids.push_back(id);
            continue;
        }
        for (size_t offset = 0; offset < text.size();) {
            const size_t length = std::min(utf8CharLength(text[offset]), text.size() - offset);
            if (const int32_t id = find(text.substr(offset, length)); id >= 0) {
                ids.push_back(id);
            }
            offset += length;
        }
    }
}

std::string BpeTokenizer::piece(int32_t id, bool /*afterBos*/) const {
    if (id < 0 || id >= m_vocab.size()) {
        return {};
    }
    const std::string& text = m_vocab.tokens[size_t(id)];
    switch (type(id)) {
        case TokenType::UserDefined:
            return text;
        case TokenType::Undefined:
        case TokenType::Normal:
            break;
        case TokenType::Control:
        case TokenType::Unknown:
        case TokenType::Unused:
        case TokenType::Byte:
            return {};
    }
    // Characters outside the byte-level alphabet are kept as they are.
    std::string bytes;
    bytes.reserve(text.size());
    for (size_t offset = 0; offset < text.size();) {
        const size_t length = std::min(utf8CharLength(text[offset]), text.size() - offset);
        const std::string_view character = std::string_view(text).substr(offset, length);
        const int byte = byteOf(character);
        if (byte >= 0) {
            bytes += char(byte);
        } else {
            bytes += character;
        }
        offset += length;
    }
    return bytes;
}

}  // namespace pagoda

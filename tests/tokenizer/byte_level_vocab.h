#pragma once
// A hand-made byte-level BPE vocabulary for tests that need no files: the
// 256 byte-level characters (id = byte), then `pieces` (Normal), then
// `specials` with their types.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/vocab.h"

namespace pagoda::test {

// GPT-2's bytes_to_unicode, written out independently of the tokenizer:
// printable Latin-1 bytes are themselves, the rest U+0100 onwards in order.
inline std::string byteLevelCharacter(uint8_t byte) {
    uint32_t codePoint = byte;
    const auto printable = [](uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
    if (!printable(byte)) {
        codePoint = 0x100;
        for (uint32_t b = 0; b < byte; ++b) {
            codePoint += printable(b) ? 0 : 1;
        }
    }
    if (codePoint < 0x80) {
        return std::string(1, char(codePoint));
    }
    return {char(0xC0 | (codePoint >> 6)), char(0x80 | (codePoint & 0x3F))};
}

inline Vocab makeByteLevelVocab(const std::vector<std::string>& merges, const std::vector<std::string>& pieces,
                                const std::vector<std::pair<std::string, TokenType>>& specials = {},
                                std::string pre = "gpt-2") {
    Vocab vocab;
    vocab.model = "gpt2";
    vocab.pre = std::move(pre);
    vocab.addBos = false;
    vocab.addSpacePrefix = false;
    for (int byte = 0; byte < 256; ++byte) {
        vocab.tokens.push_back(byteLevelCharacter(uint8_t(byte)));
        vocab.types.push_back(TokenType::Normal);
    }
    for (const std::string& piece : pieces) {
        vocab.tokens.push_back(piece);
        vocab.types.push_back(TokenType::Normal);
    }
    for (const auto& [text, type] : specials) {
        vocab.tokens.push_back(text);
        vocab.types.push_back(type);
    }
    vocab.merges = merges;
    return vocab;
}

}  // namespace pagoda::test

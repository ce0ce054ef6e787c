#pragma once
// A hand-made SentencePiece vocabulary for tests that need no files:
// <unk>, <s>, </s>, the 256 byte tokens, then `pieces` (Normal, with scores).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/tokenizer/vocab.h"

namespace pagoda::test {

constexpr int32_t kSmallUnk = 0;
constexpr int32_t kSmallBos = 1;
constexpr int32_t kSmallEos = 2;
constexpr int32_t kFirstByteToken = 3;
constexpr int32_t kFirstPiece = kFirstByteToken + 256;

inline int32_t byteToken(uint8_t byte) { return kFirstByteToken + byte; }

inline Vocab makeSmallVocab(const std::vector<std::pair<std::string, float>>& pieces, bool withByteTokens = true) {
    Vocab vocab;
    vocab.model = "llama";
    const auto add = [&](std::string text, float score, TokenType type) {
        vocab.tokens.push_back(std::move(text));
        vocab.scores.push_back(score);
        vocab.types.push_back(type);
    };
    add("<unk>", 0.0f, TokenType::Unknown);
    add("<s>", 0.0f, TokenType::Control);
    add("</s>", 0.0f, TokenType::Control);
    for (int byte = 0; byte < 256; ++byte) {
        // Without byte tokens the slots stay, as unused tokens, so that ids do not shift.
        add(withByteTokens ? fmt::format("<0x{:02X}>", byte) : fmt::format("<unused{}>", byte), 0.0f,
            withByteTokens ? TokenType::Byte : TokenType::Unused);
    }
    for (const auto& [text, score] : pieces) {
        add(text, score, TokenType::Normal);
    }
    vocab.bos = kSmallBos;
    vocab.eos = kSmallEos;
    vocab.unk = kSmallUnk;
    vocab.addSpacePrefix = false;
    return vocab;
}

}  // namespace pagoda::test

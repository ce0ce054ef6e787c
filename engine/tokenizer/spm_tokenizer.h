#pragma once
// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), private to
// engine/tokenizer: createTokenizer is the way in. Reproduces llama.cpp's
// llm_tokenizer_spm: score-ordered bigram merges, byte fallback.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace pagoda {

class SpmTokenizer final : public Tokenizer {
public:
    explicit SpmTokenizer(Vocab vocab);
    // m_ids views the strings of m_vocab.tokens.
    SpmTokenizer(const SpmTokenizer&) = delete;
    SpmTokenizer& operator=(const SpmTokenizer&) = delete;

    std::vector<int32_t> encode(std::string_view text, bool addBos) const override;
    std::string piece(int32_t id, bool afterBos) const override;

private:
    int32_t find(std::string_view text) const;  // -1 when `text` is not a token
    float score(int32_t id) const { return m_vocab.scores.empty() ? 0.0f : m_vocab.scores[size_t(id)]; }
    TokenType type(int32_t id) const {
        return m_vocab.types.empty() ? TokenType::Normal : m_vocab.types[size_t(id)];
    }

    std::unordered_map<std::string_view, int32_t> m_ids;  // token text -> id; the last id wins on duplicates
    std::array<int32_t, 256> m_byteTokens;                 // "<0xXX>" per byte; unk (or -1) when missing
};

}  // namespace pagoda

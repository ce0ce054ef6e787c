#pragma once
// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), private to
// engine/tokenizer: createTokenizer is the way in. Reproduces llama.cpp's
// llm_tokenizer_spm: score-ordered bigram merges, byte fallback.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace pagoda {

class SpmTokenizer final : public Tokenizer {
public:
    explicit SpmTokenizer(Vocab vocab);

    std::string piece(int32_t id, bool afterBos) const override;

private:
    // Every run of text gets the space prefix (when the vocab adds one), so
    // text after a special token starts a new word, as in llama.cpp.
    void encodeText(std::string_view text, std::vector<int32_t>& ids) const override;
    float score(int32_t id) const { return m_vocab.scores.empty() ? 0.0f : m_vocab.scores[size_t(id)]; }

    std::array<int32_t, 256> m_byteTokens;  // "<0xXX>" per byte; unk (or -1) when missing
};

}  // namespace pagoda

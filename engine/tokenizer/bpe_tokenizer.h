#pragma once
// Byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2": GPT-2, Llama 3,
// Qwen 2, StarCoder, DeepSeek, Falcon, ...), private to engine/tokenizer:
// createTokenizer is the way in. Reproduces llama.cpp's llm_tokenizer_bpe:
// the pre-tokenizer splits the text into words, each word's bytes become
// GPT-2's byte-level characters, and the merges (tokenizer.ggml.merges,
// rank = index) run inside each word, lowest rank first.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/result.h"
#include "engine/tokenizer/pretokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace pagoda {

class BpeTokenizer final : public Tokenizer {
public:
    // Error when the merges are missing or one is not "left right".
    static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);
    // Merges that are not "left right" are skipped; create() rejects them.
    BpeTokenizer(Vocab vocab, PreTokenizer preTokenizer);

    std::string piece(int32_t id, bool afterBos) const override;

private:
    void encodeText(std::string_view text, std::vector<int32_t>& ids) const override;
    // `word` is already in byte-level characters.
    void encodeWord(std::string_view word, std::vector<int32_t>& ids) const;
    // Rank of the merge "left right"; -1 when there is none. `key` is scratch space.
    int32_t rank(std::string_view left, std::string_view right, std::string& key) const;

    PreTokenizer m_preTokenizer;
    std::unordered_map<std::string_view, int32_t> m_ranks;  // merge "left right" (views m_vocab.merges) -> rank
};

}  // namespace pagoda

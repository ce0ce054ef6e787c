#pragma once
// Text <-> token ids. The SentencePiece-style tokenizer
// (tokenizer.ggml.model = "llama") with byte fallback lives in
// spm_tokenizer.cpp; createTokenizer picks by the vocab's model.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"
#include "engine/tokenizer/vocab.h"

namespace pagoda {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Token ids of `text`; BOS first when addBos (and the vocab has one).
    virtual std::vector<int32_t> encode(std::string_view text, bool addBos) const = 0;

    // The bytes token `id` stands for ("▁" as a space, <0x0A> as byte 0x0A);
    // control tokens (BOS/EOS) give "". `afterBos` strips the leading space
    // a SentencePiece decoder removes from the first piece of a text (only
    // when the vocab adds a space prefix).
    virtual std::string piece(int32_t id, bool afterBos) const = 0;

    const Vocab& vocab() const { return m_vocab; }
    int32_t bos() const { return m_vocab.bos; }
    int32_t eos() const { return m_vocab.eos; }
    // True for tokens that end generation: EOS, and control tokens named like
    // an end-of-turn marker ("<|eot_id|>", "<|im_end|>", "<|end|>", ...;
    // the list is in docs/TOKENIZER.md).
    bool isEndOfGeneration(int32_t id) const;

    // Decodes a whole sequence (for tests and tools): the first token and
    // any token after BOS count as the start of a text. Raw bytes, not
    // checked for UTF-8.
    std::string decode(std::span<const int32_t> ids) const;

protected:
    explicit Tokenizer(Vocab vocab) : m_vocab(std::move(vocab)) {}
    Vocab m_vocab;
};

// Error for an unsupported tokenizer model ("tokenizer model 'xyz' is not supported yet").
Result<std::unique_ptr<Tokenizer>> createTokenizer(Vocab vocab);

// Streaming detokenizer: feed ids one at a time, get back only complete
// UTF-8 characters; bytes of a character split across tokens are held until
// the character is complete. Invalid sequences come out as U+FFFD. Only a
// token right after BOS counts as the start of a text (see piece()).
class TokenStreamDecoder {
public:
    explicit TokenStreamDecoder(const Tokenizer& tokenizer) : m_tokenizer(&tokenizer) {}

    std::string push(int32_t id);
    // Whatever is still held (an incomplete character, as U+FFFD).
    std::string flush();

private:
    const Tokenizer* m_tokenizer;
    std::string m_pending;
    int32_t m_previous = -1;
};

}  // namespace pagoda

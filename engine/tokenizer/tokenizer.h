#pragma once
// Text <-> token ids. The SentencePiece-style tokenizer
// (tokenizer.ggml.model = "llama") with byte fallback lives in
// spm_tokenizer.cpp, the byte-level BPE one ("gpt2") in bpe_tokenizer.cpp;
// createTokenizer picks by the vocab's model.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/result.h"
#include "engine/tokenizer/vocab.h"

namespace pagoda {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    // m_ids views the strings of m_vocab.tokens.
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    // Token ids of `text`; BOS first when addBos (and the vocab has one).
    // The text of a user-defined token always encodes as that token (as in
    // llama.cpp and Hugging Face's added tokens). With parseSpecial the texts
    // of control and unknown tokens do too ("<|im_start|>" in a rendered chat
    // prompt); without it they are plain text. Longer token texts are matched
    // first; the text between them is encoded on its own.
    std::vector<int32_t> encode(std::string_view text, bool addBos, bool parseSpecial = false) const;

    // The bytes token `id` stands for ("▁" as a space, <0x0A> as byte 0x0A,
    // byte-level BPE characters as their bytes); user-defined tokens give
    // their text, control tokens (BOS/EOS) "". `afterBos` strips the leading
    // space a SentencePiece decoder removes from the first piece of a text
    // (only when the vocab adds a space prefix).
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
    explicit Tokenizer(Vocab vocab);

    // Appends the ids of `text`, a non-empty run of text between special tokens.
    virtual void encodeText(std::string_view text, std::vector<int32_t>& ids) const = 0;

    int32_t find(std::string_view text) const;  // -1 when `text` is not a token
    TokenType type(int32_t id) const {
        return m_vocab.types.empty() ? TokenType::Normal : m_vocab.types[size_t(id)];
    }

    Vocab m_vocab;

private:
    std::unordered_map<std::string_view, int32_t> m_ids;  // token text -> id; the last id wins on duplicates
    std::vector<int32_t> m_specialTokens;                  // control, user-defined, unknown; longest text first
    std::vector<bool> m_rstrip;  // [n_vocab]: drops the whitespace after it (Vocab::specialTokensRstrip); else empty
};

// Error for an unsupported tokenizer model ("tokenizer model 'xyz' is not
// supported yet") or a broken BPE vocab (missing or malformed merges).
Result<std::unique_ptr<Tokenizer>> createTokenizer(Vocab vocab);

// The tokenizer of a GGUF file alone (loadVocab, createTokenizer): a
// vocab-only file (no tensors) will do.
Result<std::unique_ptr<Tokenizer>> loadTokenizer(const std::filesystem::path& path);

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

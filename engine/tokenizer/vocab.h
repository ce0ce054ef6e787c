#pragma once
// A tokenizer vocabulary as GGUF metadata describes it
// (tokenizer.ggml.* keys, and tokenizer.chat_template).

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/result.h"

namespace pagoda {
namespace gguf {
class GgufFile;
}

// tokenizer.ggml.token_type values
enum class TokenType : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

struct Vocab {
    std::string model;                // tokenizer.ggml.model: "llama", "gpt2", ...
    std::string pre;                  // tokenizer.ggml.pre, when present
    std::vector<std::string> tokens;  // [n_vocab]
    std::vector<float> scores;        // [n_vocab] (empty when absent)
    std::vector<TokenType> types;     // [n_vocab] (Normal when absent)
    std::vector<std::string> merges;  // BPE merges "a b" (empty for SPM)
    int32_t bos = -1;
    int32_t eos = -1;
    int32_t unk = -1;
    int32_t pad = -1;
    bool addBos = true;               // tokenizer.ggml.add_bos_token
    bool addEos = false;
    bool addSpacePrefix = true;       // tokenizer.ggml.add_space_prefix
    std::string chatTemplate;         // tokenizer.chat_template (Jinja), when present
    // The special tokens but <unk>, <s> and <|endoftext|> drop the
    // whitespace after them in the text they are parsed from (llama.cpp's
    // RSTRIP, HF's rstrip of added tokens). No GGUF key says so: llama.cpp
    // sets it when general.name names Phi-3, and so does loadVocab.
    bool specialTokensRstrip = false;

    int32_t size() const { return int32_t(tokens.size()); }
};

// Reads and validates the tokenizer.ggml.* keys (ids in range, array
// lengths equal).
Result<Vocab> loadVocab(const gguf::GgufFile& file);

}  // namespace pagoda

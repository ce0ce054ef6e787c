#pragma once
// The pre-tokenizer of a byte-level BPE vocab (tokenizer.ggml.pre): splits
// text into words before BPE merges run inside each word. A named set of
// regexes, each applied in turn to every word the previous one left, as
// llama.cpp and Hugging Face's Split pre-tokenizer do. PCRE2 (UTF + UCP)
// supplies the Unicode categories.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"

namespace pagoda {

class PreTokenizer {
public:
    // The set for a tokenizer.ggml.pre value ("gpt-2", "llama-bpe", "qwen2",
    // "starcoder", ...; the list is in docs/TOKENIZER.md). An empty or unknown
    // name gives "default" and logs a warning on the "engine" logger. Error
    // only if PCRE2 rejects a pattern.
    static Result<PreTokenizer> create(std::string_view name);

    PreTokenizer(PreTokenizer&&) noexcept;
    PreTokenizer& operator=(PreTokenizer&&) noexcept;
    ~PreTokenizer();

    // The words of `text`, in order; they concatenate to `text`. A regex
    // match is a word and so is the text between two matches. Bytes that are
    // not valid UTF-8 never match and end up in the text between matches.
    std::vector<std::string_view> split(std::string_view text) const;

    // The set in use ("default" after a fallback).
    const std::string& name() const { return m_name; }
    // A word that is a vocab token as a whole skips the merges (Llama 3's
    // ignore_merges).
    bool ignoreMerges() const { return m_ignoreMerges; }

private:
    struct Regex;  // a compiled PCRE2 pattern

    PreTokenizer() = default;

    std::string m_name;
    bool m_ignoreMerges = false;
    std::vector<std::unique_ptr<const Regex>> m_regexes;  // applied in order
};

// Whether a vocab with this pre-tokenizer gets BOS when the GGUF has no
// tokenizer.ggml.add_bos_token (true for the Llama 3 names, as in llama.cpp).
bool preTokenizerAddsBos(std::string_view name);

}  // namespace pagoda

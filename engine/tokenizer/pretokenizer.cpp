#include "engine/tokenizer/pretokenizer.h"

#include <algorithm>
#include <array>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/core/log.h"

namespace pagoda {
namespace {

// The patterns are the ones the models' tokenizer.json files publish, as
// llama.cpp's llama-vocab.cpp quotes them. Where llama.cpp had to rewrite a
// pattern for std::regex ((?i:...) spelt out as [sS] classes) the original is
// used: PCRE2 supports it.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Mistral's Tekken (Mistral Nemo): a word is an optional non-letter, then
// capitals followed by lower case, or capitals alone ("HelloWorld" is two
// words); single digits; punctuation runs also take a trailing '/'.
constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// OpenAI's o200k (GPT-4o; Phi-4-mini, Llama 4): Tekken's words with a
// case-insensitive contraction as their suffix, digits in groups of 1-3.
constexpr std::string_view kO200k =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// DeepSeek LLM's letter class: the runs of cased letters (Lu, Ll, Lt) as
// tokenizer.json lists them, written as code points because several of them
// (U+1FBE, U+2126, U+212A, ...) are singletons that Unicode normalization
// would silently rewrite in a literal.
constexpr std::string_view kDeepseekLetters =
    R"(\x{41}-\x{5A}\x{61}-\x{7A}\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C})"
    R"(\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5})"
    R"(\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77})"
    R"(\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57})"
    R"(\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})"
    R"(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC})"
    R"(\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B})"
    R"(\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A})"
    R"(\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2})"
    R"(\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943})";
// CJK ideographs, U+0800..U+4E00 and Hangul, as DeepSeek lists them.
constexpr std::string_view kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

enum class RegexSet { Default, Gpt2, Llama3, Qwen2, Tekken, O200k, Starcoder, DeepseekLlm, DeepseekCoder, Falcon };

std::vector<std::string> patternsOf(RegexSet set) {
    switch (set) {
        case RegexSet::Default:
            return {R"([\p{P}\$\+<=>\^~\|]+)", std::string(kGpt2), R"(\p{N}+)", "[0-9][0-9][0-9]"};
        case RegexSet::Gpt2:
            return {std::string(kGpt2)};
        case RegexSet::Llama3:
            return {std::string(kLlama3)};
        case RegexSet::Qwen2:
            return {std::string(kQwen2)};
        case RegexSet::Tekken:
            return {std::string(kTekken)};
        case RegexSet::O200k:
            return {std::string(kO200k)};
        case RegexSet::Starcoder:
            return {R"(\p{N})", std::string(kGpt2)};
        case RegexSet::DeepseekLlm:
            return {R"([\r\n])",
                    R"(\s?[)" + std::string(kDeepseekLetters) + "]+",
                    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
                    R"(\s+$)",
                    std::string(kDeepseekCjk),
                    R"(\p{N}+)"};
        case RegexSet::DeepseekCoder:
            return {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", std::string(kDeepseekCjk), R"(\p{N})"};
        case RegexSet::Falcon:
            return {R"([\p{P}\$\+<=>\^~\|`]+)", std::string(kGpt2), "[0-9][0-9][0-9]"};
    }
    return {};
}

struct NamedSet {
    std::string_view name;
    RegexSet set;
    bool ignoreMerges = false;
    bool addsBos = false;
};

// tokenizer.ggml.pre values and what llama.cpp does for each.
constexpr auto kNames = std::to_array<NamedSet>({
    {"default", RegexSet::Default},
    {"gpt-2", RegexSet::Gpt2},
    {"phi-2", RegexSet::Gpt2},
    {"mpt", RegexSet::Gpt2},
    {"olmo", RegexSet::Gpt2},
    {"jais", RegexSet::Gpt2},
    {"llama3", RegexSet::Llama3, true, true},
    {"llama-v3", RegexSet::Llama3, true, true},
    {"llama-bpe", RegexSet::Llama3, true, true},
    {"falcon3", RegexSet::Llama3, true, true},
    {"dbrx", RegexSet::Llama3},
    {"smaug-bpe", RegexSet::Llama3},
    {"qwen2", RegexSet::Qwen2},
    {"deepseek-r1-qwen", RegexSet::Qwen2},
    {"stablelm2", RegexSet::Qwen2},
    {"megrez", RegexSet::Qwen2},
    {"tekken", RegexSet::Tekken, true, true},
    {"gpt-4o", RegexSet::O200k},
    {"llama4", RegexSet::O200k},
    {"starcoder", RegexSet::Starcoder},
    {"refact", RegexSet::Starcoder},
    {"command-r", RegexSet::Starcoder},
    {"smollm", RegexSet::Starcoder},
    {"codeshell", RegexSet::Starcoder},
    {"exaone", RegexSet::Starcoder},
    {"minerva-7b", RegexSet::Starcoder},
    {"deepseek-llm", RegexSet::DeepseekLlm},
    {"deepseek-coder", RegexSet::DeepseekCoder},
    {"falcon", RegexSet::Falcon},
});

const NamedSet* findSet(std::string_view name) {
    const auto it = std::ranges::find(kNames, name, &NamedSet::name);
    return it == kNames.end() ? nullptr : &*it;
}

struct MatchDataDeleter {
    void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

// Length of the UTF-8 character at `offset` (1 for a byte that starts none).
size_t characterLength(std::string_view text, size_t offset) {
    const auto lead = uint8_t(text[offset]);
    const size_t length = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    return std::min(length, text.size() - offset);
}

}  // namespace

struct PreTokenizer::Regex {
    struct CodeDeleter {
        void operator()(pcre2_code* code) const { pcre2_code_free(code); }
    };
    std::unique_ptr<pcre2_code, CodeDeleter> code;
};

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

Result<PreTokenizer> PreTokenizer::create(std::string_view name) {
    const NamedSet* named = findSet(name);
    if (named == nullptr) {
        if (name.empty()) {
            logger("engine")->warn("vocab has no tokenizer.ggml.pre; using the 'default' pre-tokenizer, "
                                   "which may split text differently from the model's own tokenizer");
        } else {
            logger("engine")->warn("unknown pre-tokenizer '{}'; using 'default', "
                                   "which may split text differently from the model's own tokenizer",
                                   name);
        }
        named = findSet("default");
    }

    PreTokenizer preTokenizer;
    preTokenizer.m_name = std::string(named->name);
    preTokenizer.m_ignoreMerges = named->ignoreMerges;
    for (const std::string& pattern : patternsOf(named->set)) {
        int errorCode = 0;
        PCRE2_SIZE errorOffset = 0;
        // MATCH_INVALID_UTF: text may hold any bytes; invalid sequences just never match.
        pcre2_code* code =
            pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &errorCode,
                          &errorOffset, nullptr);
        if (code == nullptr) {
            std::array<PCRE2_UCHAR, 256> message{};
            pcre2_get_error_message(errorCode, message.data(), message.size());
            return fail("pre-tokenizer '{}': pattern '{}' does not compile at offset {}: {}", named->name, pattern,
                        errorOffset, reinterpret_cast<const char*>(message.data()));
        }
        auto regex = std::make_unique<Regex>();
        regex->code.reset(code);
        // JIT is only a speed-up: when it is unavailable the interpreter runs.
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        preTokenizer.m_regexes.push_back(std::move(regex));
    }
    return preTokenizer;
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
    std::vector<std::string_view> words;
    if (text.empty()) {
        return words;
    }
    words.push_back(text);
    const MatchData matchData(pcre2_match_data_create(1, nullptr));
    std::vector<std::string_view> next;
    for (const auto& regex : m_regexes) {
        next.clear();
        for (const std::string_view word : words) {
            const auto subject = reinterpret_cast<PCRE2_SPTR>(word.data());
            size_t emitted = 0;  // end of the last word put out
            size_t start = 0;    // where the next search begins
            while (start < word.size()) {
                const int rc =
                    pcre2_match(regex->code.get(), subject, word.size(), start, 0, matchData.get(), nullptr);
                if (rc < 0) {
                    if (rc != PCRE2_ERROR_NOMATCH) {
                        logger("engine")->warn("pre-tokenizer '{}': PCRE2 error {} on a {}-byte word; "
                                               "keeping the rest of it whole",
                                               m_name, rc, word.size());
                    }
                    break;
                }
                const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(matchData.get());
                const size_t matchStart = ovector[0];
                const size_t matchEnd = ovector[1];
                if (matchEnd == matchStart) {
                    start = matchStart + characterLength(word, matchStart);
                    continue;
                }
                if (matchStart > emitted) {
                    next.push_back(word.substr(emitted, matchStart - emitted));
                }
                next.push_back(word.substr(matchStart, matchEnd - matchStart));
                emitted = start = matchEnd;
            }
            if (emitted < word.size()) {
                next.push_back(word.substr(emitted));
            }
        }
        words.swap(next);
    }
    return words;
}

bool preTokenizerAddsBos(std::string_view name) {
    const NamedSet* named = findSet(name);
    return named != nullptr && named->addsBos;
}

}  // namespace pagoda

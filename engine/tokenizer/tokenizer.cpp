#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>

#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/spm_tokenizer.h"

namespace pagoda {
namespace {

// Control tokens that chat templates use to end a turn.
constexpr std::array<std::string_view, 8> kEndOfTurnMarkers = {
    "</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
};

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8Status { Complete, Incomplete, Invalid };

struct Utf8Scan {
    Utf8Status status;
    size_t length;  // Complete: the character; Incomplete: bytes so far; Invalid: bytes to replace
};

// Classifies the UTF-8 character at the start of `bytes` (non-empty). Invalid
// input is consumed one maximal subpart at a time (Unicode's U+FFFD
// substitution practice): overlongs, surrogates and code points past U+10FFFF
// are invalid.
Utf8Scan scanUtf8(std::string_view bytes) {
    const auto lead = uint8_t(bytes[0]);
    size_t length = 0;
    uint8_t low = 0x80;
    uint8_t high = 0xBF;
    if (lead < 0x80) {
        return {Utf8Status::Complete, 1};
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        low = lead == 0xE0 ? 0xA0 : 0x80;
        high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        low = lead == 0xF0 ? 0x90 : 0x80;
        high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        return {Utf8Status::Invalid, 1};
    }
    for (size_t i = 1; i < length; ++i) {
        if (i >= bytes.size()) {
            return {Utf8Status::Incomplete, i};
        }
        const auto byte = uint8_t(bytes[i]);
        if (byte < low || byte > high) {
            return {Utf8Status::Invalid, i};
        }
        low = 0x80;
        high = 0xBF;
    }
    return {Utf8Status::Complete, length};
}

// A piece of the text to encode: a special token, or text between them.
struct Fragment {
    std::string_view text;
    int32_t token;  // -1 for text
};

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : m_vocab(std::move(vocab)) {
    m_ids.reserve(m_vocab.tokens.size());
    for (size_t id = 0; id < m_vocab.tokens.size(); ++id) {
        m_ids.insert_or_assign(std::string_view(m_vocab.tokens[id]), int32_t(id));
        const TokenType tokenType = type(int32_t(id));
        const bool special = tokenType == TokenType::Control || tokenType == TokenType::UserDefined ||
                             tokenType == TokenType::Unknown;
        if (special && !m_vocab.tokens[id].empty()) {
            m_specialTokens.push_back(int32_t(id));
        }
    }
    if (m_vocab.specialTokensRstrip) {
        m_rstrip.assign(m_vocab.tokens.size(), false);
        for (const int32_t id : m_specialTokens) {
            const std::string& text = m_vocab.tokens[size_t(id)];
            m_rstrip[size_t(id)] = text != "<unk>" && text != "<s>" && text != "<|endoftext|>";
        }
    }
    std::ranges::stable_sort(m_specialTokens, std::ranges::greater(),
                             [this](int32_t id) { return m_vocab.tokens[size_t(id)].size(); });
}

int32_t Tokenizer::find(std::string_view text) const {
    const auto it = m_ids.find(text);
    return it == m_ids.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool addBos, bool parseSpecial) const {
    std::vector<int32_t> ids;
    if (addBos && bos() >= 0) {
        ids.push_back(bos());
    }
    if (text.empty()) {
        return ids;
    }

    // As llama.cpp's tokenizer_st_partition: each special token in turn
    // (longest first) splits every text fragment at its occurrences; one
    // marked rstrip drops the whitespace (isspace) after it.
    std::vector<Fragment> fragments = {{text, -1}};
    std::vector<Fragment> next;
    for (const int32_t special : m_specialTokens) {
        if (!parseSpecial && type(special) != TokenType::UserDefined) {
            continue;
        }
        const std::string_view specialText = m_vocab.tokens[size_t(special)];
        const bool rstrip = !m_rstrip.empty() && m_rstrip[size_t(special)];
        next.clear();
        for (const Fragment& fragment : fragments) {
            if (fragment.token >= 0) {
                next.push_back(fragment);
                continue;
            }
            std::string_view rest = fragment.text;
            for (size_t at = rest.find(specialText); at != std::string_view::npos; at = rest.find(specialText)) {
                if (at > 0) {
                    next.push_back({rest.substr(0, at), -1});
                }
                next.push_back({specialText, special});
                rest.remove_prefix(at + specialText.size());
                if (rstrip) {
                    rest.remove_prefix(std::min(rest.find_first_not_of(" \t\n\v\f\r"), rest.size()));
                }
            }
            if (!rest.empty()) {
                next.push_back({rest, -1});
            }
        }
        fragments.swap(next);
    }

    for (const Fragment& fragment : fragments) {
        if (fragment.token >= 0) {
            ids.push_back(fragment.token);
        } else {
            encodeText(fragment.text, ids);
        }
    }
    return ids;
}

bool Tokenizer::isEndOfGeneration(int32_t id) const {
    if (id < 0 || id >= m_vocab.size()) {
        return false;
    }
    if (id == m_vocab.eos) {
        return true;
    }
    if (m_vocab.types.empty() || m_vocab.types[size_t(id)] != TokenType::Control) {
        return false;
    }
    return std::ranges::find(kEndOfTurnMarkers, m_vocab.tokens[size_t(id)]) != kEndOfTurnMarkers.end();
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
        const bool startsText = i == 0 || (bos() >= 0 && ids[i - 1] == bos());
        text += piece(ids[i], startsText);
    }
    return text;
}

Result<std::unique_ptr<Tokenizer>> createTokenizer(Vocab vocab) {
    if (vocab.model == "llama") {
        return std::make_unique<SpmTokenizer>(std::move(vocab));
    }
    if (vocab.model == "gpt2") {
        return BpeTokenizer::create(std::move(vocab));
    }
    return fail("tokenizer model '{}' is not supported yet", vocab.model);
}

Result<std::unique_ptr<Tokenizer>> loadTokenizer(const std::filesystem::path& path) {
    PAGODA_ASSIGN_OR_RETURN(gguf::GgufFile file, gguf::GgufFile::open(path));
    PAGODA_ASSIGN_OR_RETURN(Vocab vocab, loadVocab(file));
    return createTokenizer(std::move(vocab));
}

std::string TokenStreamDecoder::push(int32_t id) {
    const int32_t bos = m_tokenizer->bos();
    m_pending += m_tokenizer->piece(id, bos >= 0 && m_previous == bos);
    m_previous = id;

    std::string complete;
    const std::string_view pending = m_pending;
    size_t pos = 0;
    while (pos < pending.size()) {
        const Utf8Scan scan = scanUtf8(pending.substr(pos));
        if (scan.status == Utf8Status::Incomplete) {
            break;
        }
        if (scan.status == Utf8Status::Complete) {
            complete += pending.substr(pos, scan.length);
        } else {
            complete += kReplacement;
        }
        pos += scan.length;
    }
    m_pending.erase(0, pos);
    return complete;
}

std::string TokenStreamDecoder::flush() {
    // Only ever a valid but incomplete character is held.
    std::string held = m_pending.empty() ? std::string() : std::string(kReplacement);
    m_pending.clear();
    return held;
}

}  // namespace pagoda

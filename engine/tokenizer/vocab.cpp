#include "engine/tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/pretokenizer.h"

namespace pagoda {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";
constexpr std::string_view kBosKey = "tokenizer.ggml.bos_token_id";
constexpr std::string_view kEosKey = "tokenizer.ggml.eos_token_id";
constexpr std::string_view kUnkKey = "tokenizer.ggml.unknown_token_id";
constexpr std::string_view kPadKey = "tokenizer.ggml.padding_token_id";
constexpr std::string_view kAddBosKey = "tokenizer.ggml.add_bos_token";
constexpr std::string_view kAddEosKey = "tokenizer.ggml.add_eos_token";
constexpr std::string_view kAddSpacePrefixKey = "tokenizer.ggml.add_space_prefix";
constexpr std::string_view kChatTemplateKey = "tokenizer.chat_template";
constexpr std::string_view kNameKey = "general.name";

Result<std::optional<std::string>> findString(const gguf::GgufFile& file, std::string_view key) {
    const gguf::Value* value = file.find(key);
    if (value == nullptr) {
        return std::nullopt;
    }
    const std::string* text = value->asString();
    if (text == nullptr) {
        return fail("{}: expected a string, got {}", key, gguf::valueTypeName(value->type()));
    }
    return *text;
}

Result<std::optional<bool>> findBool(const gguf::GgufFile& file, std::string_view key) {
    const gguf::Value* value = file.find(key);
    if (value == nullptr) {
        return std::nullopt;
    }
    const std::optional<bool> flag = value->asBool();
    if (!flag) {
        return fail("{}: expected a bool, got {}", key, gguf::valueTypeName(value->type()));
    }
    return *flag;
}

// Null when the key is absent. `count` (when given) is the length the array must have.
Result<const gguf::Array*> findArray(const gguf::GgufFile& file, std::string_view key,
                                     std::optional<size_t> count) {
    const gguf::Value* value = file.find(key);
    if (value == nullptr) {
        return nullptr;
    }
    const gguf::Array* array = value->asArray();
    if (array == nullptr) {
        return fail("{}: expected an array, got {}", key, gguf::valueTypeName(value->type()));
    }
    if (count && array->items.size() != *count) {
        return fail("{}: {} entries, expected {} (one per token)", key, array->items.size(), *count);
    }
    return array;
}

Result<std::vector<std::string>> readStrings(const gguf::Array& array, std::string_view key) {
    if (array.elementType != gguf::ValueType::String) {
        return fail("{}: expected an array of string, got an array of {}", key,
                    gguf::valueTypeName(array.elementType));
    }
    std::vector<std::string> strings;
    strings.reserve(array.items.size());
    for (const gguf::Value& item : array.items) {
        const std::string* text = item.asString();
        if (text == nullptr) {
            return fail("{}: item {} is a {}, expected a string", key, strings.size(),
                        gguf::valueTypeName(item.type()));
        }
        strings.push_back(*text);
    }
    return strings;
}

// -1 when the key is absent or holds the "no token" sentinel (-1, or
// 0xFFFFFFFF as converters write it into a u32).
Result<int32_t> findTokenId(const gguf::GgufFile& file, std::string_view key, int32_t vocabSize) {
    const gguf::Value* value = file.find(key);
    if (value == nullptr) {
        return -1;
    }
    const std::optional<int64_t> id = value->asInt();
    if (!id) {
        return fail("{}: expected an integer, got {}", key, gguf::valueTypeName(value->type()));
    }
    if (*id == -1 || *id == int64_t(UINT32_MAX)) {
        return -1;
    }
    if (*id < 0 || *id >= vocabSize) {
        return fail("{}: token id {} out of range (vocab size {})", key, *id, vocabSize);
    }
    return int32_t(*id);
}

Result<std::vector<float>> readScores(const gguf::Array& array) {
    std::vector<float> scores;
    scores.reserve(array.items.size());
    for (size_t i = 0; i < array.items.size(); ++i) {
        const std::optional<double> score = array.items[i].asFloat();
        if (!score) {
            return fail("{}: expected an array of f32, got an array of {}", kScoresKey,
                        gguf::valueTypeName(array.elementType));
        }
        scores.push_back(float(*score));
    }
    return scores;
}

Result<std::vector<TokenType>> readTypes(const gguf::Array& array) {
    constexpr int64_t kLastType = int64_t(TokenType::Byte);
    std::vector<TokenType> types;
    types.reserve(array.items.size());
    for (size_t i = 0; i < array.items.size(); ++i) {
        const std::optional<int64_t> type = array.items[i].asInt();
        if (!type) {
            return fail("{}: expected an array of i32, got an array of {}", kTypesKey,
                        gguf::valueTypeName(array.elementType));
        }
        if (*type < 0 || *type > kLastType) {
            return fail("{}: token {} has type {}, expected 0..{}", kTypesKey, i, *type, kLastType);
        }
        types.push_back(TokenType(*type));
    }
    return types;
}

// Whether general.name, lower-cased, names Phi-3, as llama.cpp asks before
// it sets its RSTRIP attributes (llama_vocab::impl::load).
bool namesPhi3(std::string name) {
    std::ranges::transform(name, name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;
}

}  // namespace

Result<Vocab> loadVocab(const gguf::GgufFile& file) {
    Vocab vocab;

    PAGODA_ASSIGN_OR_RETURN(const std::optional<std::string> model, findString(file, kModelKey));
    if (!model) {
        return fail("{}: missing (the file has no tokenizer)", kModelKey);
    }
    vocab.model = *model;
    PAGODA_ASSIGN_OR_RETURN(const std::optional<std::string> pre, findString(file, kPreKey));
    vocab.pre = pre.value_or("");

    PAGODA_ASSIGN_OR_RETURN(const gguf::Array* tokens, findArray(file, kTokensKey, std::nullopt));
    if (tokens == nullptr) {
        return fail("{}: missing", kTokensKey);
    }
    const size_t tokenCount = tokens->items.size();
    if (tokenCount == 0) {
        return fail("{}: empty array (a vocabulary needs at least one token)", kTokensKey);
    }
    if (tokenCount > size_t(std::numeric_limits<int32_t>::max())) {
        return fail("{}: {} tokens, more than the limit {}", kTokensKey, tokenCount,
                    std::numeric_limits<int32_t>::max());
    }
    PAGODA_ASSIGN_OR_RETURN(vocab.tokens, readStrings(*tokens, kTokensKey));

    PAGODA_ASSIGN_OR_RETURN(const gguf::Array* scores, findArray(file, kScoresKey, tokenCount));
    if (scores != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(vocab.scores, readScores(*scores));
    }
    PAGODA_ASSIGN_OR_RETURN(const gguf::Array* types, findArray(file, kTypesKey, tokenCount));
    if (types != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(vocab.types, readTypes(*types));
    } else {
        vocab.types.assign(tokenCount, TokenType::Normal);
    }
    PAGODA_ASSIGN_OR_RETURN(const gguf::Array* merges, findArray(file, kMergesKey, std::nullopt));
    if (merges != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(vocab.merges, readStrings(*merges, kMergesKey));
    }

    const auto vocabSize = int32_t(tokenCount);
    PAGODA_ASSIGN_OR_RETURN(vocab.bos, findTokenId(file, kBosKey, vocabSize));
    PAGODA_ASSIGN_OR_RETURN(vocab.eos, findTokenId(file, kEosKey, vocabSize));
    PAGODA_ASSIGN_OR_RETURN(vocab.unk, findTokenId(file, kUnkKey, vocabSize));
    PAGODA_ASSIGN_OR_RETURN(vocab.pad, findTokenId(file, kPadKey, vocabSize));

    PAGODA_ASSIGN_OR_RETURN(const std::optional<bool> addBos, findBool(file, kAddBosKey));
    // As llama.cpp: SentencePiece vocabs add BOS unless told otherwise, BPE
    // ones only for the pre-tokenizers that need it (Llama 3).
    vocab.addBos = addBos.value_or(vocab.model == "llama" || preTokenizerAddsBos(vocab.pre));
    PAGODA_ASSIGN_OR_RETURN(const std::optional<bool> addEos, findBool(file, kAddEosKey));
    vocab.addEos = addEos.value_or(vocab.addEos);
    PAGODA_ASSIGN_OR_RETURN(const std::optional<bool> addSpacePrefix, findBool(file, kAddSpacePrefixKey));
    vocab.addSpacePrefix = addSpacePrefix.value_or(vocab.model == "llama");
    PAGODA_ASSIGN_OR_RETURN(const std::optional<std::string> chatTemplate, findString(file, kChatTemplateKey));
    vocab.chatTemplate = chatTemplate.value_or("");
    PAGODA_ASSIGN_OR_RETURN(const std::optional<std::string> name, findString(file, kNameKey));
    vocab.specialTokensRstrip = namesPhi3(name.value_or(""));
    return vocab;
}

}  // namespace pagoda

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/vocab.h"

namespace pagoda {
namespace {

using gguf::GgufWriter;
using gguf::makeArray;

// A valid three-token vocab; tests break one key at a time.
GgufWriter minimalWriter() {
    GgufWriter writer;
    writer.set("tokenizer.ggml.model", "llama");
    writer.set("tokenizer.ggml.tokens", makeArray(std::vector<std::string>{"<unk>", "<s>", "</s>"}));
    writer.set("tokenizer.ggml.scores", makeArray(std::vector<float>{0.0f, -1.0f, -2.0f}));
    writer.set("tokenizer.ggml.token_type", makeArray(std::vector<int32_t>{2, 3, 3}));
    writer.set("tokenizer.ggml.bos_token_id", uint32_t(1));
    writer.set("tokenizer.ggml.eos_token_id", uint32_t(2));
    return writer;
}

Result<Vocab> load(const GgufWriter& writer) {
    const auto bytes = writer.writeToMemory();
    if (!bytes) {
        return std::unexpected(bytes.error());
    }
    const auto file = gguf::GgufFile::parse(*bytes);
    if (!file) {
        return std::unexpected(file.error());
    }
    return loadVocab(*file);
}

std::string errorOf(const GgufWriter& writer) {
    const auto vocab = load(writer);
    EXPECT_FALSE(vocab.has_value());
    return vocab ? std::string() : vocab.error().message;
}

TEST(LoadVocab, ReadsKeysAndDefaults) {
    const auto vocab = load(minimalWriter());
    ASSERT_TRUE(vocab.has_value()) << vocab.error().message;
    EXPECT_EQ(vocab->model, "llama");
    EXPECT_EQ(vocab->pre, "");
    EXPECT_EQ(vocab->tokens, (std::vector<std::string>{"<unk>", "<s>", "</s>"}));
    EXPECT_EQ(vocab->scores, (std::vector<float>{0.0f, -1.0f, -2.0f}));
    EXPECT_EQ(vocab->types, (std::vector<TokenType>{TokenType::Unknown, TokenType::Control, TokenType::Control}));
    EXPECT_EQ(vocab->bos, 1);
    EXPECT_EQ(vocab->eos, 2);
    EXPECT_EQ(vocab->unk, -1);
    EXPECT_EQ(vocab->pad, -1);
    EXPECT_TRUE(vocab->addBos);
    EXPECT_FALSE(vocab->addEos);
    EXPECT_TRUE(vocab->addSpacePrefix);
}

TEST(LoadVocab, ReadsOptionalKeys) {
    GgufWriter writer = minimalWriter();
    writer.set("tokenizer.ggml.pre", "default");
    writer.set("tokenizer.ggml.unknown_token_id", uint32_t(0));
    writer.set("tokenizer.ggml.padding_token_id", uint32_t(2));
    writer.set("tokenizer.ggml.add_bos_token", false);
    writer.set("tokenizer.ggml.add_eos_token", true);
    writer.set("tokenizer.ggml.add_space_prefix", false);
    writer.set("tokenizer.ggml.merges", makeArray(std::vector<std::string>{"a b"}));
    const auto vocab = load(writer);
    ASSERT_TRUE(vocab.has_value()) << vocab.error().message;
    EXPECT_EQ(vocab->pre, "default");
    EXPECT_EQ(vocab->unk, 0);
    EXPECT_EQ(vocab->pad, 2);
    EXPECT_FALSE(vocab->addBos);
    EXPECT_TRUE(vocab->addEos);
    EXPECT_FALSE(vocab->addSpacePrefix);
    EXPECT_EQ(vocab->merges, std::vector<std::string>{"a b"});
}

TEST(LoadVocab, TypesDefaultToNormalAndScoresToEmpty) {
    GgufWriter writer;
    writer.set("tokenizer.ggml.model", "gpt2");
    writer.set("tokenizer.ggml.tokens", makeArray(std::vector<std::string>{"a", "b"}));
    const auto vocab = load(writer);
    ASSERT_TRUE(vocab.has_value()) << vocab.error().message;
    EXPECT_EQ(vocab->types, (std::vector<TokenType>{TokenType::Normal, TokenType::Normal}));
    EXPECT_TRUE(vocab->scores.empty());
    EXPECT_FALSE(vocab->addSpacePrefix);
}

TEST(LoadVocab, BpeAddsBosOnlyForLlama3PreTokenizers) {
    for (const auto& [pre, addBos] : {std::pair{"gpt-2", false}, std::pair{"qwen2", false},
                                      std::pair{"llama-bpe", true}, std::pair{"", false}}) {
        GgufWriter writer;
        writer.set("tokenizer.ggml.model", "gpt2");
        writer.set("tokenizer.ggml.pre", pre);
        writer.set("tokenizer.ggml.tokens", makeArray(std::vector<std::string>{"a", "b"}));
        const auto vocab = load(writer);
        ASSERT_TRUE(vocab.has_value()) << vocab.error().message;
        EXPECT_EQ(vocab->addBos, addBos) << pre;
    }
}

TEST(LoadVocab, ReadsTheChatTemplate) {
    GgufWriter writer = minimalWriter();
    EXPECT_EQ(load(writer)->chatTemplate, "");
    writer.set("tokenizer.chat_template", "{{ bos_token }}{% for m in messages %}{% endfor %}");
    EXPECT_EQ(load(writer)->chatTemplate, "{{ bos_token }}{% for m in messages %}{% endfor %}");
    writer.set("tokenizer.chat_template", int32_t(3));
    EXPECT_EQ(errorOf(writer), "tokenizer.chat_template: expected a string, got i32");
}

TEST(LoadVocab, RejectsMismatchedLengths) {
    GgufWriter scores = minimalWriter();
    scores.set("tokenizer.ggml.scores", makeArray(std::vector<float>{0.0f, -1.0f}));
    EXPECT_EQ(errorOf(scores), "tokenizer.ggml.scores: 2 entries, expected 3 (one per token)");

    GgufWriter types = minimalWriter();
    types.set("tokenizer.ggml.token_type", makeArray(std::vector<int32_t>{1, 1, 1, 1}));
    EXPECT_EQ(errorOf(types), "tokenizer.ggml.token_type: 4 entries, expected 3 (one per token)");
}

TEST(LoadVocab, RejectsIdsOutOfRange) {
    GgufWriter bos = minimalWriter();
    bos.set("tokenizer.ggml.bos_token_id", uint32_t(3));
    EXPECT_EQ(errorOf(bos), "tokenizer.ggml.bos_token_id: token id 3 out of range (vocab size 3)");

    GgufWriter eos = minimalWriter();
    eos.set("tokenizer.ggml.eos_token_id", int32_t(-2));
    EXPECT_EQ(errorOf(eos), "tokenizer.ggml.eos_token_id: token id -2 out of range (vocab size 3)");
}

TEST(LoadVocab, NoTokenSentinelMeansAbsent) {
    // Converters write "no padding token" as -1 or as 0xFFFFFFFF in a u32
    // (stories260K.gguf does).
    GgufWriter writer = minimalWriter();
    writer.set("tokenizer.ggml.padding_token_id", uint32_t(0xFFFFFFFFu));
    writer.set("tokenizer.ggml.unknown_token_id", int32_t(-1));
    const auto vocab = load(writer);
    ASSERT_TRUE(vocab.has_value()) << vocab.error().message;
    EXPECT_EQ(vocab->pad, -1);
    EXPECT_EQ(vocab->unk, -1);
}

TEST(LoadVocab, RejectsBadTokens) {
    GgufWriter missing;
    missing.set("tokenizer.ggml.model", "llama");
    EXPECT_EQ(errorOf(missing), "tokenizer.ggml.tokens: missing");

    GgufWriter empty = minimalWriter();
    empty.set("tokenizer.ggml.tokens", makeArray(std::vector<std::string>{}));
    EXPECT_EQ(errorOf(empty), "tokenizer.ggml.tokens: empty array (a vocabulary needs at least one token)");

    GgufWriter numbers = minimalWriter();
    numbers.set("tokenizer.ggml.tokens", makeArray(std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(errorOf(numbers), "tokenizer.ggml.tokens: expected an array of string, got an array of i32");

    GgufWriter scalar = minimalWriter();
    scalar.set("tokenizer.ggml.tokens", "abc");
    EXPECT_EQ(errorOf(scalar), "tokenizer.ggml.tokens: expected an array, got string");
}

TEST(LoadVocab, RejectsBadTypesAndModel) {
    GgufWriter type = minimalWriter();
    type.set("tokenizer.ggml.token_type", makeArray(std::vector<int32_t>{1, 9, 1}));
    EXPECT_EQ(errorOf(type), "tokenizer.ggml.token_type: token 1 has type 9, expected 0..6");

    GgufWriter noModel;
    noModel.set("tokenizer.ggml.tokens", makeArray(std::vector<std::string>{"a"}));
    EXPECT_EQ(errorOf(noModel), "tokenizer.ggml.model: missing (the file has no tokenizer)");

    GgufWriter flag = minimalWriter();
    flag.set("tokenizer.ggml.add_bos_token", "yes");
    EXPECT_EQ(errorOf(flag), "tokenizer.ggml.add_bos_token: expected a bool, got string");
}

}  // namespace
}  // namespace pagoda

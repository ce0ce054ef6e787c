// Real weights: Karpathy's stories260K (TinyStories, 260K parameters)
// decoded greedily from BOS must reproduce llama2.c's own reference output,
// both from the published GGUF and through our llama2.c import.

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/backend/cpu_ops.h"
#include "engine/generation/generator.h"
#include "engine/model/llama2c_import.h"
#include "engine/model/model.h"

namespace pagoda {
namespace {

const std::filesystem::path kModels = std::filesystem::path(PAGODA_SHARED_DIR) / "models";

// llama2.c's test_all.py (expected_stdout): `run stories260K.bin -z tok512.bin
// -t 0.0 -n 200`: each of the 200 steps feeds one token (BOS first) and
// prints the greedy next token, so 200 tokens are generated.
constexpr const char* kExpectedStory =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
    "saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to "
    "the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't "
    "find it.\"\nLily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to "
    "do.\"\nLily didn't want to help her mom, so she";

std::string greedyStory(const std::filesystem::path& path, std::vector<int32_t>* tokensOut = nullptr) {
    auto model = Model::load(path);
    EXPECT_TRUE(model) << model.error().message;
    if (!model) return {};
    const Tokenizer* tokenizer = (*model)->tokenizer();
    EXPECT_NE(tokenizer, nullptr);
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    Generator generator(**model, ops);
    const std::vector<int32_t> prompt = {tokenizer->bos()};
    SamplingParams greedy;
    greedy.temperature = 0;
    greedy.repeatPenalty = 1.0f;
    TokenStreamDecoder decoder(*tokenizer);
    decoder.push(tokenizer->bos());
    std::string text;
    auto stats = generator.generate({prompt, 200, greedy, false}, [&](int32_t id) {
        if (tokensOut) tokensOut->push_back(id);
        text += decoder.push(id);
    });
    EXPECT_TRUE(stats) << stats.error().message;
    return text + decoder.flush();
}

TEST(Golden, Stories260kGgufReproducesLlama2cReference) {
    const auto path = kModels / "stories260K.gguf";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "real-weights test skipped: " << path << " not found";
    EXPECT_EQ(greedyStory(path), kExpectedStory);
}

TEST(Golden, Stories260kImportedFromLlama2cMatchesGguf) {
    const auto checkpoint = kModels / "stories260K.bin";
    const auto tokenizer = kModels / "tok512.bin";
    if (!std::filesystem::exists(checkpoint) || !std::filesystem::exists(tokenizer)) {
        GTEST_SKIP() << "real-weights test skipped: " << checkpoint << " or " << tokenizer << " not found";
    }
    const auto out = std::filesystem::path(testing::TempDir()) / "stories260K-imported.gguf";
    auto imported = importLlama2c(checkpoint, tokenizer, out);
    ASSERT_TRUE(imported) << imported.error().message;
    std::vector<int32_t> fromImport, fromGguf;
    EXPECT_EQ(greedyStory(out, &fromImport), kExpectedStory);
    if (std::filesystem::exists(kModels / "stories260K.gguf")) {
        greedyStory(kModels / "stories260K.gguf", &fromGguf);
        EXPECT_EQ(fromImport, fromGguf);
    }
}

}  // namespace
}  // namespace pagoda

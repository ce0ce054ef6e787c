// Single-sequence generation and the simple KV cache: limits (the context,
// the memory the cache may take) are clear errors, sampling is
// reproducible, blocks come back when released.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/backend/cpu_ops.h"
#include "engine/generation/generator.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"

namespace pagoda {
namespace {

using testing::HasSubstr;

class GeneratorTest : public testing::Test {
protected:
    void SetUp() override {
        SyntheticSpec spec = *syntheticPreset("tiny");
        spec.contextLength = 64;
        auto bytes = syntheticModelWriter(spec)->writeToMemory();
        ASSERT_TRUE(bytes);
        m_bytes = std::move(*bytes);
        auto file = gguf::GgufFile::parse(m_bytes);
        ASSERT_TRUE(file);
        auto model = Model::fromFile(std::move(*file));
        ASSERT_TRUE(model) << model.error().message;
        m_model = std::move(*model);
    }

    std::vector<int32_t> run(const std::vector<int32_t>& prompt, const SamplingParams& sampling, int maxTokens) {
        Generator generator(*m_model, m_ops);
        std::vector<int32_t> out;
        auto stats = generator.generate({prompt, maxTokens, sampling, false}, [&](int32_t id) { out.push_back(id); });
        EXPECT_TRUE(stats) << stats.error().message;
        return out;
    }

    std::vector<uint8_t> m_bytes;
    std::unique_ptr<Model> m_model;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
};

TEST_F(GeneratorTest, PromptLongerThanContextIsAnError) {
    Generator generator(*m_model, m_ops);
    std::vector<int32_t> prompt(65, 5);
    auto stats = generator.generate({prompt, 4, {}, false}, [](int32_t) {});
    ASSERT_FALSE(stats);
    EXPECT_THAT(stats.error().message, HasSubstr("prompt of 65 tokens does not fit the context of 64"));
}

TEST_F(GeneratorTest, EmptyPromptAndBadTokenIdsAreErrors) {
    Generator generator(*m_model, m_ops);
    std::vector<int32_t> empty;
    EXPECT_FALSE(generator.generate({empty, 4, {}, false}, [](int32_t) {}));
    std::vector<int32_t> bad = {1, 512};
    auto stats = generator.generate({bad, 4, {}, false}, [](int32_t) {});
    ASSERT_FALSE(stats);
    EXPECT_THAT(stats.error().message, HasSubstr("token id 512 outside [0, 512)"));
    EXPECT_FALSE(generator.promptLogits(bad));
}

TEST_F(GeneratorTest, StopsAtMaxTokensAndAtTheContext) {
    SamplingParams greedy;
    greedy.temperature = 0;
    EXPECT_EQ(run({1, 40, 41}, greedy, 10).size(), 10u);
    Generator generator(*m_model, m_ops);
    std::vector<int32_t> prompt(60, 7);
    int produced = 0;
    auto stats = generator.generate({prompt, 100, greedy, false}, [&](int32_t) { ++produced; });
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->finish, FinishReason::ContextFull);
    EXPECT_EQ(produced, 5);  // positions 60..63 fed back, plus the token sampled from position 63
}

// A context set below the model's limits prompts and generation as the
// model's does; one above it is the model's.
TEST_F(GeneratorTest, AContextSetLimitsEachRequest) {
    SamplingParams greedy;
    greedy.temperature = 0;
    GeneratorOptions options;
    options.contextLength = 24;
    Generator generator(*m_model, m_ops, options);
    EXPECT_EQ(generator.context(), 24);
    std::vector<int32_t> tooLong(25, 7);
    auto refused = generator.generate({tooLong, 4, greedy, false}, [](int32_t) {});
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.error().message, HasSubstr("prompt of 25 tokens does not fit the context of 24"));
    EXPECT_THAT(generator.promptLogits(tooLong).error().message, HasSubstr("does not fit the context of 24"));
    std::vector<int32_t> prompt(20, 7);
    std::vector<int32_t> out;
    auto stats = generator.generate({prompt, 100, greedy, false}, [&](int32_t id) { out.push_back(id); });
    ASSERT_TRUE(stats) << stats.error().message;
    EXPECT_EQ(stats->finish, FinishReason::ContextFull);
    ASSERT_EQ(out.size(), 5u);  // positions 20..23 fed back, plus the token sampled from position 23
    const std::vector<int32_t> whole = run(prompt, greedy, 5);
    EXPECT_EQ(out, whole);  // the same tokens as under the model's context

    options.contextLength = 100;
    EXPECT_EQ(Generator(*m_model, m_ops, options).context(), 64);
}

// Memory for two blocks beside the activations: the cache holds 32 of the
// model's 64 tokens, a longer prompt is an error that says why, and
// generation stops when the cache is full.
TEST_F(GeneratorTest, TheCacheHoldsWhatMemoryAllows) {
    // tiny, f16: 2 (K, V) x 2 layers x 2 KV heads x 16 tokens x 16 dims x 2 bytes per block
    constexpr uint64_t kBlockBytes = 2 * 2 * 2 * 16 * 16 * 2;
    const uint64_t activations = Transformer::activationBytes(m_model->config(), 256);
    m_ops.setKvMemoryLimit(activations + 2 * kBlockBytes + 100);
    SamplingParams greedy;
    greedy.temperature = 0;
    Generator generator(*m_model, m_ops);
    std::vector<int32_t> tooLong(33, 7);
    auto refused = generator.generate({tooLong, 4, greedy, false}, [](int32_t) {});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message,
              "prompt of 33 tokens does not fit the KV cache of 32 tokens (what memory allows; the model's context is 64)");
    std::vector<int32_t> prompt(20, 7);
    int produced = 0;
    auto stats = generator.generate({prompt, 100, greedy, false}, [&](int32_t) { ++produced; });
    ASSERT_TRUE(stats) << stats.error().message;
    EXPECT_EQ(stats->finish, FinishReason::ContextFull);
    EXPECT_EQ(produced, 13);  // positions 20..31 fed back, plus the token sampled from position 31

    m_ops.setKvMemoryLimit(activations + kBlockBytes - 1);
    Generator starved(*m_model, m_ops);
    auto none = starved.generate({prompt, 4, greedy, false}, [](int32_t) {});
    ASSERT_FALSE(none);
    EXPECT_THAT(none.error().message, HasSubstr("no memory for the KV cache: "));
    EXPECT_THAT(none.error().message, HasSubstr("a block of 16 tokens needs 4.00 KiB"));
}

// Gemma 3's pattern (6 layers, layer 5 global, windows of 16): its local
// layers' pools hold a window, so the memory that holds 256 tokens of
// every layer holds the whole context of 512, and the greedy tokens are
// those of a cache of every position.
TEST(GeneratorLocalPools, HoldTheContextWhereEveryLayerHoldsHalfOfIt) {
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.architecture = "gemma3";
    spec.nLayers = 6;
    spec.slidingWindow = 16;
    spec.contextLength = 512;
    auto bytes = syntheticModelWriter(spec)->writeToMemory();
    ASSERT_TRUE(bytes);
    auto model = Model::fromFile(*gguf::GgufFile::parse(*bytes));
    ASSERT_TRUE(model) << model.error().message;
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    SamplingParams greedy;
    greedy.temperature = 0;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 300; ++i) prompt.push_back(int32_t(3 + i * 37 % 500));
    const auto generate = [&](bool localPools) -> Result<std::vector<int32_t>> {
        Generator generator(**model, ops, GeneratorOptions{16, 16, DType::F16, false, 0, localPools});
        std::vector<int32_t> out;
        PAGODA_RETURN_IF_ERROR(generator.generate({prompt, 40, greedy, false}, [&](int32_t t) { out.push_back(t); }));
        return out;
    };
    const auto expected = generate(false);
    ASSERT_TRUE(expected) << expected.error().message;
    ASSERT_EQ(expected->size(), 40u);
    // f16: a block of every layer 6 x 2 (K, V) x 2 KV heads x 16 x 16 x 2
    // bytes = 12 KiB; the local pools 5 layers x 4 blocks of 2 KiB.
    ops.setKvMemoryLimit(Transformer::activationBytes((*model)->config(), 16) + 16 * 12288 + 100);
    const auto refused = generate(false);
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.error().message, HasSubstr("does not fit the KV cache of 256 tokens"));
    const auto pooled = generate(true);
    ASSERT_TRUE(pooled) << pooled.error().message;
    EXPECT_EQ(*pooled, *expected);
}

// Phi-3's LongRoPE takes its short factors in a context set up to the
// original one (64 here), its long ones beyond, as llama.cpp does
// (tests/peer checks both against it).
TEST(GeneratorLongRope, TheContextSetPicksTheFactors) {
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.architecture = "phi3";
    spec.ropeScaling = "longrope";
    spec.contextLength = 256;
    auto bytes = syntheticModelWriter(spec)->writeToMemory();
    ASSERT_TRUE(bytes);
    auto model = Model::fromFile(*gguf::GgufFile::parse(*bytes));
    ASSERT_TRUE(model) << model.error().message;
    ASSERT_EQ((*model)->config().ropeOriginalContext, 64);
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    const std::vector<int32_t> prompt = {5, 77, 300, 12, 9, 450, 33, 101, 250, 7, 64, 128};
    const auto logits = [&](int context) {
        GeneratorOptions options;
        options.contextLength = context;
        auto out = Generator(**model, ops, options).promptLogits(prompt);
        EXPECT_TRUE(out) << out.error().message;
        return out.value_or(std::vector<float>{});
    };
    const std::vector<float> short32 = logits(32);
    const std::vector<float> short64 = logits(64);
    const std::vector<float> long65 = logits(65);
    const std::vector<float> longAll = logits(0);
    ASSERT_EQ(short32.size(), prompt.size() * size_t(spec.vocabSize));
    EXPECT_EQ(short32, short64);
    EXPECT_EQ(long65, longAll);
    EXPECT_NE(short64, long65);
}

TEST_F(GeneratorTest, GreedyAndSeededSamplingAreReproducible) {
    SamplingParams greedy;
    greedy.temperature = 0;
    EXPECT_EQ(run({1, 300, 301}, greedy, 16), run({1, 300, 301}, greedy, 16));
    SamplingParams sampled;
    sampled.temperature = 1.0f;
    sampled.seed = 7;
    const auto a = run({1, 300, 301}, sampled, 24);
    EXPECT_EQ(a, run({1, 300, 301}, sampled, 24));
    sampled.seed = 8;
    EXPECT_NE(a, run({1, 300, 301}, sampled, 24));
}

TEST_F(GeneratorTest, GreedyFirstTokenIsTheArgmaxOfPromptLogits) {
    Generator generator(*m_model, m_ops);
    const std::vector<int32_t> prompt = {1, 100, 200, 300};
    auto logits = generator.promptLogits(prompt);
    ASSERT_TRUE(logits);
    const int vocab = m_model->config().vocabSize;
    ASSERT_EQ(logits->size(), prompt.size() * vocab);
    const float* last = logits->data() + (prompt.size() - 1) * vocab;
    const int32_t argmax = int32_t(std::max_element(last, last + vocab) - last);
    SamplingParams greedy;
    greedy.temperature = 0;
    greedy.repeatPenalty = 1.0f;
    EXPECT_EQ(run(prompt, greedy, 1).at(0), argmax);
}

TEST_F(GeneratorTest, LaterPromptReusesTheCachedPrefix) {
    Generator generator(*m_model, m_ops);
    std::vector<int32_t> prompt(40);
    for (int i = 0; i < 40; ++i) prompt[i] = 3 + i;
    SamplingParams greedy;
    greedy.temperature = 0;
    std::vector<int32_t> first, second;
    auto a = generator.generate({prompt, 6, greedy, false}, [&](int32_t id) { first.push_back(id); });
    ASSERT_TRUE(a);
    EXPECT_EQ(a->reusedTokens, 0);
    auto b = generator.generate({prompt, 6, greedy, false}, [&](int32_t id) { second.push_back(id); });
    ASSERT_TRUE(b);
    EXPECT_EQ(b->reusedTokens, 32);  // two full blocks of 16; the last token is always recomputed
    EXPECT_EQ(first, second);
}

TEST(KvCache, AddChunkOnAFullCacheIsNoSpaceAndChangesNothing) {
    KvLayout layout{2, 2, 16, 16, 4, DType::F16};
    BlockManagerConfig manager;
    manager.maxContext = 128;
    manager.prefixCaching = false;
    manager.watermark = 0;
    auto cache = KvCache::create(layout, manager);
    ASSERT_TRUE(cache) << cache.error().message;
    std::vector<int32_t> tokens(40, 7);
    ForwardBatch batch;
    const SeqId a = (*cache)->blocks().admit(tokens)->seq;
    ASSERT_EQ(*(*cache)->addChunk(batch, a, tokens, false), Alloc::Ok);  // 3 of 4 blocks
    EXPECT_EQ(batch.slots.size(), 40u);
    const SeqId b = (*cache)->blocks().admit(std::span(tokens).first(20))->seq;
    auto full = (*cache)->addChunk(batch, b, std::span(tokens).first(20), false);  // needs 2
    ASSERT_TRUE(full);
    EXPECT_EQ(*full, Alloc::NoSpace);
    EXPECT_EQ(batch.tokens.size(), 40u);
    EXPECT_EQ(batch.slots.size(), 40u);
    EXPECT_EQ(batch.chunks.size(), 1u);
    ASSERT_TRUE((*cache)->blocks().release(a));
    EXPECT_EQ(*(*cache)->addChunk(batch, b, std::span(tokens).first(20), false), Alloc::Ok);
}

TEST(KvCache, InvalidLayoutsAreRejected) {
    BlockManagerConfig manager;
    manager.maxContext = 64;
    EXPECT_FALSE(KvCache::create(KvLayout{2, 2, 16, 16, 0, DType::F16}, manager));
    EXPECT_FALSE(KvCache::create(KvLayout{2, 2, 16, 0, 4, DType::F16}, manager));
    EXPECT_FALSE(KvCache::create(KvLayout{2, 2, 16, 16, 4, DType::Q8_0}, manager));
}

}  // namespace
}  // namespace pagoda

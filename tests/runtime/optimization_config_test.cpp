// Optimization configs: presets, the "preset:key=value" syntax both ways,
// errors that name the offending value, and which changes need a new cache.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/cache/kv_budget.h"
#include "kernels/format_bytes.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

using ::testing::HasSubstr;

TEST(OptimizationConfig, PresetsAreEachOptimizationOffAndOn) {
    const OptimizationConfig base = OptimizationConfig::baseline();
    EXPECT_EQ(base.batching, BatchingMode::Sequential);
    EXPECT_EQ(base.kvAllocation, KvAllocation::Contiguous);
    EXPECT_EQ(base.attention, cpu::AttentionAlgorithm::Naive);
    EXPECT_FALSE(base.groupedKv);
    EXPECT_FALSE(base.prefixCaching);
    EXPECT_FALSE(base.decodeGraphs);
    EXPECT_EQ(base.int8Matmul, Int8Matmul::Off);
    EXPECT_FALSE(base.dependentLaunch);
    EXPECT_FALSE(base.localKvPools);
    const OptimizationConfig opt = OptimizationConfig::optimized();
    EXPECT_EQ(opt.batching, BatchingMode::Continuous);
    EXPECT_EQ(opt.kvAllocation, KvAllocation::Paged);
    EXPECT_EQ(opt.attention, cpu::AttentionAlgorithm::Flash);
    EXPECT_TRUE(opt.groupedKv);
    EXPECT_TRUE(opt.prefixCaching);
    EXPECT_TRUE(opt.decodeGraphs);
    EXPECT_EQ(opt.int8Matmul, Int8Matmul::Cpu);  // not measured on a device yet: the CPU only
    EXPECT_FALSE(opt.dependentLaunch);  // not measured on a device yet: opt-in
    EXPECT_TRUE(opt.localKvPools);
}

TEST(OptimizationConfig, ParsesPresetWithOverridesAndFormatsBack) {
    auto c = parseOptimizationConfig(
        "baseline:batching=continuous:kv=paged:prefix=on:decode-graphs=on:block-size=32:kv-budget-mib=64");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->decodeGraphs);
    EXPECT_EQ(c->batching, BatchingMode::Continuous);
    EXPECT_EQ(c->kvAllocation, KvAllocation::Paged);
    EXPECT_TRUE(c->prefixCaching);
    EXPECT_EQ(c->attention, cpu::AttentionAlgorithm::Naive);  // from the preset
    EXPECT_EQ(c->blockSize, 32);
    EXPECT_EQ(c->kvBudgetBytes, 64u << 20);
    auto again = parseOptimizationConfig(formatOptimizationConfig(*c));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(*again, *c);
    EXPECT_EQ(*parseOptimizationConfig("optimized"), OptimizationConfig::optimized());
    EXPECT_FALSE(parseOptimizationConfig("optimized:decode-graphs=off")->decodeGraphs);
    EXPECT_EQ(parseOptimizationConfig("optimized:int8-matmul=on")->int8Matmul, Int8Matmul::On);
    EXPECT_EQ(parseOptimizationConfig("baseline:int8-matmul=cpu")->int8Matmul, Int8Matmul::Cpu);
    EXPECT_FALSE(parseOptimizationConfig("optimized:int8-matmul=yes"));
    // Its name until 2026-11-29, which saved settings hold.
    EXPECT_EQ(parseOptimizationConfig("optimized:int8-decode=on")->int8Matmul, Int8Matmul::On);
    EXPECT_EQ(parseOptimizationConfig("optimized:int8-decode=off")->int8Matmul, Int8Matmul::Off);
    const auto dependent = parseOptimizationConfig("optimized:dependent-launch=on");
    ASSERT_TRUE(dependent) << dependent.error().message;
    EXPECT_TRUE(dependent->dependentLaunch);
    EXPECT_THAT(formatOptimizationConfig(*dependent), HasSubstr(":dependent-launch=on:"));
    EXPECT_EQ(*parseOptimizationConfig(formatOptimizationConfig(*dependent)), *dependent);
    EXPECT_THAT(formatOptimizationConfig(OptimizationConfig::baseline()), HasSubstr(":decode-graphs=off:"));
    for (const auto& [text, type] : {std::pair{"f16", DType::F16}, {"f32", DType::F32}, {"q8_0", DType::Q8_0}}) {
        const auto kv = parseOptimizationConfig(std::string("optimized:kv-type=") + text);
        ASSERT_TRUE(kv) << kv.error().message;
        EXPECT_EQ(kv->kvType, type);
        EXPECT_THAT(formatOptimizationConfig(*kv), HasSubstr(std::string(":kv-type=") + text + ":"));
    }
    EXPECT_FALSE(parseOptimizationConfig("optimized:kv-type=q4_0"));
    const auto full = parseOptimizationConfig("optimized:local-kv=off");
    ASSERT_TRUE(full) << full.error().message;
    EXPECT_FALSE(full->localKvPools);
    EXPECT_THAT(formatOptimizationConfig(*full), HasSubstr(":local-kv=off"));
    EXPECT_EQ(*parseOptimizationConfig(formatOptimizationConfig(*full)), *full);
}

// Gemma 3 1B's shape (26 layers, every 6th global, windows of 512, one KV
// head of 256, 32768 positions): the automatic budget's 4 contexts in the
// 4 global layers, and for each of the 22 local ones 16 x (32 + 2) + 16 =
// 560 blocks of 16 (max batch 16 with a window's blocks and two more each,
// 256 tokens a step).
TEST(OptimizationConfig, LocalKvPoolsHoldWindowsInGemmasLocalLayers) {
    ModelConfig gemma;
    gemma.nLayers = 26;
    gemma.nKvHeads = 1;
    gemma.headDim = 256;
    gemma.contextLength = 32768;
    gemma.globalEvery = 6;
    gemma.localWindow = 512;
    OptimizationConfig on = OptimizationConfig::optimized();
    OptimizationConfig off = on;
    off.localKvPools = false;
    ASSERT_TRUE(localKvPoolsFor(on, gemma));
    const uint64_t block = 2ull * 16 * 256 * 2;  // K and V of one layer, f16
    const uint64_t contexts = 4 * 32768 / 16;
    const uint64_t huge = uint64_t(1) << 50;
    EXPECT_EQ(kvBudgetFor(off, gemma, huge).bytes, contexts * 26 * block);
    EXPECT_EQ(kvBudgetFor(on, gemma, huge).bytes, contexts * 4 * block + 560 * 22 * block);
    const KvLayout layout = *kvLayoutFor(on, gemma, kvBudgetFor(on, gemma, huge).bytes);
    EXPECT_EQ(layout.numBlocks, int(contexts));
    EXPECT_EQ(layout.numLocalBlocks, 560);
    // Not for a model without local layers, a sliding window at or below
    // the local one, or contiguous KV; max batch then sizes the pools.
    EXPECT_FALSE(localKvPoolsFor(on, ModelConfig{}));
    OptimizationConfig narrow = on;
    narrow.slidingWindow = 512;
    EXPECT_FALSE(localKvPoolsFor(narrow, gemma));
    narrow.slidingWindow = 1024;
    EXPECT_TRUE(localKvPoolsFor(narrow, gemma));
    OptimizationConfig contiguous = on;
    contiguous.kvAllocation = KvAllocation::Contiguous;
    EXPECT_FALSE(localKvPoolsFor(contiguous, gemma));
    OptimizationConfig wider = on;
    wider.maxBatch = 4;
    EXPECT_TRUE(needsCacheRebuild(on, wider, gemma));
    EXPECT_FALSE(needsCacheRebuild(on, wider, ModelConfig{}));
    EXPECT_TRUE(needsCacheRebuild(on, off, gemma));
}

TEST(OptimizationConfig, ParseErrorsNameTheProblem) {
    EXPECT_THAT(parseOptimizationConfig("fast").error().message, HasSubstr("unknown preset 'fast'"));
    EXPECT_THAT(parseOptimizationConfig("optimized:speed=9").error().message, HasSubstr("unknown config key 'speed'"));
    EXPECT_THAT(parseOptimizationConfig("optimized:batching=dynamic").error().message,
                HasSubstr("'dynamic' is not one of continuous|static|sequential"));
    EXPECT_THAT(parseOptimizationConfig("optimized:max-batch=x").error().message, HasSubstr("'x' is not an integer"));
    EXPECT_THAT(parseOptimizationConfig("optimized:prefix").error().message, HasSubstr("'prefix' is not key=value"));
    EXPECT_THAT(parseOptimizationConfig("optimized:decode-graphs=yes").error().message,
                HasSubstr("'yes' is not one of on|off"));
}

TEST(OptimizationConfig, ValidationAgainstTheModel) {
    TestModel m = tinyModel(256);
    const ModelConfig& model = m.model->config();
    EXPECT_TRUE(validateConfig(testConfig(), model));
    OptimizationConfig c = testConfig();
    c.blockSize = 12;
    EXPECT_THAT(validateConfig(c, model).error().message, HasSubstr("block size 12"));
    c = OptimizationConfig::baseline();
    c.kvBudgetBytes = 4096;  // contiguous needs 256 tokens of 128 bytes (F16) per sequence
    EXPECT_THAT(validateConfig(c, model).error().message, HasSubstr("cannot hold one sequence"));
    c = testConfig();
    c.maxBatch = 0;
    EXPECT_THAT(validateConfig(c, model).error().message, HasSubstr("max batch 0"));
}

TEST(OptimizationConfig, AutomaticBudgetIsTheDefaultAndParses) {
    EXPECT_EQ(OptimizationConfig::optimized().kvBudgetBytes, kAutoKvBudget);
    EXPECT_EQ(OptimizationConfig::baseline().kvBudgetBytes, kAutoKvBudget);
    auto c = parseOptimizationConfig("optimized:kv-budget-mib=64:kv-budget-mib=auto");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->kvBudgetBytes, kAutoKvBudget);
    EXPECT_THAT(formatOptimizationConfig(*c), HasSubstr(":kv-budget-mib=auto:"));
    EXPECT_EQ(*parseOptimizationConfig(formatOptimizationConfig(*c)), *c);
    EXPECT_THAT(parseOptimizationConfig("optimized:kv-budget-mib=0").error().message, HasSubstr("outside [1, 2^24]"));
}

TEST(OptimizationConfig, AutomaticBudgetHoldsFourContextsOrWhatMemoryAllows) {
    TestModel m = tinyModel(256);
    ModelConfig model = m.model->config();
    model.contextLength = 1000;
    OptimizationConfig c = OptimizationConfig::optimized();
    c.kvType = DType::F32;
    const uint64_t perToken = 2ull * model.nLayers * model.nKvHeads * model.headDim * 4;  // K and V, f32
    const uint64_t perBlock = perToken * 16;
    const uint64_t aim = perToken * 1000 * kAutoKvContexts;  // 250 blocks

    const KvBudgetChoice plenty = kvBudgetFor(c, model, aim * 3);
    EXPECT_EQ(plenty.bytes, aim);
    EXPECT_TRUE(plenty.automatic);
    EXPECT_FALSE(plenty.limitedByMemory);
    EXPECT_EQ(describeKvBudget(plenty, c, model), "auto: 4 contexts of 1000 tokens, " + formatBytes(aim));

    const KvBudgetChoice scarce = kvBudgetFor(c, model, aim / 3);
    EXPECT_EQ(scarce.bytes, 83 * perBlock);  // the whole blocks of a third
    EXPECT_TRUE(scarce.limitedByMemory);
    EXPECT_THAT(describeKvBudget(scarce, c, model), HasSubstr(" available; 4 contexts of 1000 tokens need "));

    model.contextLength = 1001;  // 4004 tokens: 251 blocks
    EXPECT_EQ(kvBudgetFor(c, model, aim * 3).bytes, 251 * perBlock);

    c.kvBudgetBytes = 3u << 20;
    const KvBudgetChoice set = kvBudgetFor(c, model, 1);
    EXPECT_EQ(set.bytes, 3u << 20);
    EXPECT_FALSE(set.automatic);
    EXPECT_EQ(describeKvBudget(set, c, model), "set: 3.00 MiB");
}

TEST(OptimizationConfig, AContextSetCapsEachSequenceAndSizesTheAutomaticBudget) {
    TestModel m = tinyModel(256);
    ModelConfig model = m.model->config();
    model.contextLength = 1000;
    OptimizationConfig c = OptimizationConfig::optimized();
    EXPECT_EQ(c.contextLength, kModelContext);
    EXPECT_EQ(OptimizationConfig::baseline().contextLength, kModelContext);
    EXPECT_EQ(contextFor(c, model), 1000);
    EXPECT_EQ(blockManagerConfigFor(c, model).maxContext, 1000);

    c.contextLength = 200;
    EXPECT_EQ(contextFor(c, model), 200);
    EXPECT_EQ(blockManagerConfigFor(c, model).maxContext, 200);
    const uint64_t perToken = 2ull * model.nLayers * model.nKvHeads * model.headDim * 2;  // K and V, f16
    const KvBudgetChoice budget = kvBudgetFor(c, model, uint64_t(1) << 40);
    EXPECT_EQ(budget.bytes, perToken * 200 * kAutoKvContexts);  // 800 tokens: 50 whole blocks
    EXPECT_EQ(describeKvBudget(budget, c, model), "auto: 4 contexts of 200 tokens, " + formatBytes(budget.bytes));
    EXPECT_TRUE(validateConfig(c, model));

    c.contextLength = 5000;  // more than the model's: the model's
    EXPECT_EQ(contextFor(c, model), 1000);
    EXPECT_TRUE(validateConfig(c, model));
    c.contextLength = -1;
    EXPECT_THAT(validateConfig(c, model).error().message, HasSubstr("context of -1 tokens"));

    auto parsed = parseOptimizationConfig("optimized:context=2048");
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->contextLength, 2048);
    EXPECT_THAT(formatOptimizationConfig(*parsed), HasSubstr(":context=2048"));
    EXPECT_EQ(*parseOptimizationConfig(formatOptimizationConfig(*parsed)), *parsed);
    EXPECT_EQ(parseOptimizationConfig("optimized:context=2048:context=model")->contextLength, kModelContext);
    EXPECT_THAT(formatOptimizationConfig(OptimizationConfig::optimized()), HasSubstr(":context=model"));
    EXPECT_THAT(parseOptimizationConfig("optimized:context=0").error().message, HasSubstr("'context': 0 tokens"));
}

TEST(OptimizationConfig, OnlyLayoutChangesRebuildTheCache) {
    const OptimizationConfig a = OptimizationConfig::optimized();
    OptimizationConfig b = a;
    b.batching = BatchingMode::Static;
    b.attention = cpu::AttentionAlgorithm::Naive;
    b.groupedKv = false;
    b.maxBatch = 3;
    b.decodeGraphs = false;
    b.int8Matmul = Int8Matmul::On;
    b.dependentLaunch = true;
    EXPECT_FALSE(needsCacheRebuild(a, b, {}));
    for (auto change : {+[](OptimizationConfig& c) { c.blockSize = 32; },
                        +[](OptimizationConfig& c) { c.kvAllocation = KvAllocation::Contiguous; },
                        +[](OptimizationConfig& c) { c.kvBudgetBytes = 64u << 20; },
                        +[](OptimizationConfig& c) { c.prefixCaching = false; },
                        +[](OptimizationConfig& c) { c.slidingWindow = 64; },
                        +[](OptimizationConfig& c) { c.contextLength = 128; }}) {
        OptimizationConfig c = a;
        change(c);
        EXPECT_TRUE(needsCacheRebuild(a, c, {}));
    }
    // An automatic pool leaves room for the activations: more tokens per
    // step re-size it; fewer, or a set budget, do not.
    OptimizationConfig more = a;
    more.maxBatchTokens = 512;
    EXPECT_TRUE(needsCacheRebuild(a, more, {}));
    EXPECT_FALSE(needsCacheRebuild(more, a, {}));
    OptimizationConfig set = a;
    set.kvBudgetBytes = 64u << 20;
    OptimizationConfig setMore = set;
    setMore.maxBatchTokens = 512;
    EXPECT_FALSE(needsCacheRebuild(set, setMore, {}));
}

}  // namespace
}  // namespace pagoda::runtime::testing

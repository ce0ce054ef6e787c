// Local-layer KV pools (OptimizationConfig::localKvPools) on a Gemma 3
// shaped model: its local layers keep a window's blocks per sequence in
// pools of their own, and every greedy token is the same as with every
// layer keeping every position, alone, batched with prefix reuse, and
// preempted. F32 weights and KV: the pools hold the same values at other
// addresses, and attention reads them in the same order.

#include <gtest/gtest.h>

#include "engine/backend/cpu_ops.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

constexpr int kNewTokens = 24;

// Gemma 3's pattern at test size: 6 layers, layer 5 global, local windows
// of 16 positions; prompts of 10 to 89 tokens and 24 more generated reach
// well past the window.
TestModel gemmaModel() {
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.architecture = "gemma3";
    spec.nLayers = 6;
    spec.nKvHeads = 2;
    spec.slidingWindow = 16;
    spec.contextLength = 256;
    spec.dtype = DType::F32;
    return syntheticModel(spec);
}

// A budget of `blocks` blocks of every layer: 2 (K, V) x 6 layers x 2 KV
// heads x 16 tokens x 16 dims x 4 bytes each.
OptimizationConfig gemmaConfig(int blocks, bool localPools) {
    OptimizationConfig c = testConfig();
    c.kvBudgetBytes = uint64_t(blocks) * 2 * 6 * 2 * 16 * 16 * 4;
    c.localKvPools = localPools;
    return c;
}

class LocalKvPools : public ::testing::Test {
protected:
    void SetUp() override {
        m_model = gemmaModel();
        ASSERT_EQ(m_model.model->config().globalEvery, 6);
        m_prompts = sharedPrefixPrompts();
    }

    std::vector<std::vector<int32_t>> run(const std::vector<std::vector<int32_t>>& prompts,
                                          const OptimizationConfig& config, StatsSnapshot* stats = nullptr) {
        return runTogether(*m_model.model, m_ops, prompts, config, kNewTokens, stats);
    }

    TestModel m_model;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
    std::vector<std::vector<int32_t>> m_prompts;
};

TEST_F(LocalKvPools, GiveEveryTokenOfPoolsHoldingEveryPosition) {
    StatsSnapshot full, local;
    const auto expected = run(m_prompts, gemmaConfig(128, false), &full);
    ASSERT_EQ(expected.size(), m_prompts.size());
    EXPECT_EQ(full.kv.localLayers, 0);
    EXPECT_EQ(run(m_prompts, gemmaConfig(128, true), &local), expected);
    // The same bytes: the local layers' pools take 8 x (1 + 2) + 4 = 28
    // blocks each (max batch 8 of a window's block and two more, and the
    // 4 blocks of 64 tokens a step), the global layer the rest.
    EXPECT_EQ(local.kv.localLayers, 5);
    EXPECT_EQ(local.kv.localBlocks.blocksTotal, 28);
    EXPECT_EQ(local.kv.blocks.blocksTotal, 128 * 6 - 28 * 5);
    EXPECT_EQ(local.memory.kvPoolBytes, full.memory.kvPoolBytes);
    // The same blocks of the global layer at the peak, fewer of the local ones.
    EXPECT_LT(local.counters.peakKvBytes, full.counters.peakKvBytes);
    EXPECT_GT(local.counters.peakKvBytes, full.counters.peakKvBytes / 6);
    EXPECT_EQ(local.memory.kvUsedBytes, 0u);  // every request finished
    EXPECT_GT(local.kv.localBlocks.evictionsBy(EvictionCause::Window), 0);
    // Prefix reuse still works: the shared prompts' first two blocks, whose
    // second one the window of the hit reaches.
    EXPECT_EQ(local.counters.prefixHitTokens, full.counters.prefixHitTokens);
    EXPECT_GT(local.counters.prefixHitTokens, 0);
    for (size_t i = 0; i < m_prompts.size(); ++i) {
        EXPECT_EQ(run({m_prompts[i]}, gemmaConfig(128, true)).front(), expected[i]) << "request " << i << " alone";
    }
}

TEST_F(LocalKvPools, PreemptedSequencesRecomputeToTheSameTokens) {
    const auto expected = run(m_prompts, gemmaConfig(128, false));
    // 12 blocks of every layer, fewer than the local pools' 28: every layer
    // gets 12.
    StatsSnapshot stats;
    EXPECT_EQ(run(m_prompts, gemmaConfig(12, true), &stats), expected);
    EXPECT_EQ(stats.kv.localBlocks.blocksTotal, 12);
    EXPECT_GE(stats.counters.preemptions, 1);
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
    EXPECT_EQ(stats.kv.localBlocks.blocksUsed, 0);
    // 40 blocks: 28 for each local layer, 100 for the global one.
    EXPECT_EQ(run(m_prompts, gemmaConfig(40, true), &stats), expected);
    EXPECT_EQ(stats.kv.blocks.blocksTotal, 40 * 6 - 28 * 5);
}

// A conversation's next turn resends its history: the prefix cache skips
// all of it but the last partial block. Two other requests in between
// make the local layers' pools evict the history's first blocks; its last
// window's blocks are all the next turn needs there.
TEST_F(LocalKvPools, TheNextTurnReusesTheHistoryFromItsLastWindow) {
    struct Outcome {
        int reused = -1;
        int64_t localLruEvictions = 0;
    };
    const auto nextTurn = [&](bool localPools) {
        Recorder events;
        auto engine = Engine::create(*m_model.model, m_ops, gemmaConfig(128, localPools), &events);
        EXPECT_TRUE(engine) << engine.error().message;
        const auto run = [&](const std::vector<int32_t>& prompt, int newTokens) {
            const RequestId id = (*engine)->submit(greedyRequest(prompt, newTokens)).value();
            while ((*engine)->step()) EXPECT_TRUE((*engine)->validate());
            return id;
        };
        std::vector<int32_t> history = m_prompts[7];  // 59 tokens
        const std::vector<int32_t> reply = events.tokens(run(history, kNewTokens));
        // 16 and 10 blocks: the pools' 28 are 5 cached and 23 free before them.
        std::mt19937_64 rng(5);
        run(randomTokens(250, rng), 4);
        run(randomTokens(150, rng), 4);
        history.insert(history.end(), reply.begin(), reply.end());
        history.insert(history.end(), m_prompts[0].begin(), m_prompts[0].begin() + 10);
        const std::vector<FinishEvent> finished = events.finishes(run(history, 4));
        EXPECT_EQ(finished.size(), 1u);
        Outcome outcome;
        if (!finished.empty()) outcome.reused = finished[0].stats.reusedTokens;
        outcome.localLruEvictions = (*engine)->snapshot().kv.localBlocks.evictionsBy(EvictionCause::Lru);
        return outcome;
    };
    // The first request stored 59 + 23 = 82 positions: 5 full blocks.
    EXPECT_EQ(nextTurn(false).reused, 80);
    const Outcome pooled = nextTurn(true);
    EXPECT_EQ(pooled.reused, 80);
    EXPECT_GT(pooled.localLruEvictions, 0);
}

}  // namespace
}  // namespace pagoda::runtime::testing

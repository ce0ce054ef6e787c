// With greedy sampling a request's tokens must not depend on what else
// runs: alone, among 7 others with prefix reuse, or with a KV budget so
// small that sequences are preempted and recomputed again and again.
//
// Exactness: the forward pass computes each row independently of the
// others (attention per query, norms per row, matmul output rows per
// token), but the CPU matmul sums in a different order for one token
// (matrix-vector kernel) than for several (tiled kernel), and a recomputed
// token goes through the tiled kernel where it was first decoded with the
// matrix-vector one. Logits therefore differ by ~1e-6 relative between
// batch shapes (F32 weights and KV; F16 KV could round the K/V of a token
// differently). Greedy ids are still identical unless the top two logits
// are that close, so the test checks that margin on every generated
// position of the reference: a failure of the margin check means "pick
// another seed", a failure of the token comparison is a real bug.
//
// The same holds with Q8_0 weights on the int8-matmul optimization: each
// token's products are the same bits in any batch (kernels/cpu/matmul.h),
// and the attention's rounding differences reach them only where they move
// a rounding of x to 8 bits. Before int8 covered prefill, a recomputed
// token's products differed from its decode by the 8-bit rounding itself,
// ~1% of their size.

#include <gtest/gtest.h>

#include "engine/backend/cpu_ops.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

constexpr int kRequests = 8;
constexpr int kNewTokens = 32;

// The weights' type, and whether their products run on int8.
struct Products {
    DType weights;
    Int8Matmul int8;
};

class BatchInvariance : public ::testing::TestWithParam<Products> {
protected:
    void SetUp() override {
        SyntheticSpec spec = *syntheticPreset("tiny");
        spec.contextLength = 256;
        spec.dtype = GetParam().weights;
        spec.seed = 42;
        m_model = syntheticModel(spec);
        m_ops.setInt8Matmul(GetParam().int8);
        m_prompts = sharedPrefixPrompts();
        for (const auto& prompt : m_prompts) m_alone.push_back(runAll({prompt}, testConfig()).front());
    }

    OptimizationConfig testConfig(int budgetBlocks = 256) const {
        OptimizationConfig c = testing::testConfig(budgetBlocks);
        c.int8Matmul = GetParam().int8;
        return c;
    }

    std::vector<std::vector<int32_t>> runAll(const std::vector<std::vector<int32_t>>& prompts,
                                             const OptimizationConfig& config, StatsSnapshot* stats = nullptr) {
        return runTogether(*m_model.model, m_ops, prompts, config, kNewTokens, stats);
    }

    TestModel m_model;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
    std::vector<std::vector<int32_t>> m_prompts;
    std::vector<std::vector<int32_t>> m_alone;
};

// The premise of exact comparison: every greedy choice of the reference
// wins by a margin far above the ~1e-6 relative noise of summation order.
TEST_P(BatchInvariance, ReferenceChoicesAreNotNearTies) {
    Generator generator(*m_model.model, m_ops, GeneratorOptions{256, 16, DType::F32, false});
    const int vocab = m_model.model->config().vocabSize;
    for (int i = 0; i < kRequests; ++i) {
        ASSERT_EQ(m_alone[i].size(), size_t(kNewTokens));
        const std::vector<GreedyChoice> choices = greedyChoices(generator, m_prompts[i], m_alone[i], vocab);
        ASSERT_EQ(choices.size(), size_t(kNewTokens));
        for (int g = 0; g < kNewTokens; ++g) {
            ASSERT_EQ(choices[g].token, m_alone[i][g]) << "request " << i << " token " << g;
            EXPECT_GT(choices[g].margin, 1e-4f) << "near-tie at request " << i << " token " << g;
        }
    }
}

TEST_P(BatchInvariance, EightTogetherWithPrefixReuseMatchAlone) {
    StatsSnapshot stats;
    EXPECT_EQ(runAll(m_prompts, testConfig(), &stats), m_alone);
    EXPECT_GT(stats.counters.prefixHitTokens, 0);
    EXPECT_GT(stats.counters.peakRunning, 4);
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
}

TEST_P(BatchInvariance, RepeatedPreemptionMatchesAlone) {
    // 10 blocks of 16 tokens: the longest request needs 8, all eight about 45.
    StatsSnapshot stats;
    EXPECT_EQ(runAll(m_prompts, testConfig(10), &stats), m_alone);
    EXPECT_GE(stats.counters.preemptions, 3);
    EXPECT_GT(stats.counters.recomputedTokens, 0);
    EXPECT_GT(stats.counters.prefixHitTokens, 0);
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
    EXPECT_EQ(stats.kv.blocks.sequences, 0);

    // No prefix cache, and 8 tokens per step: prefill in small chunks
    // between the decode tokens.
    OptimizationConfig small = testConfig(8);
    small.prefixCaching = false;
    small.maxBatchTokens = 8;
    EXPECT_EQ(runAll(m_prompts, small, &stats), m_alone);
    EXPECT_GE(stats.counters.preemptions, 3);
    EXPECT_EQ(stats.counters.prefixHitTokens, 0);
}

INSTANTIATE_TEST_SUITE_P(Weights, BatchInvariance,
                         ::testing::Values(Products{DType::F32, Int8Matmul::Off}, Products{DType::Q8_0, Int8Matmul::Cpu}),
                         [](const ::testing::TestParamInfo<Products>& info) {
                             return std::string(dtypeName(info.param.weights)) + (info.param.int8 != Int8Matmul::Off ? "_int8" : "");
                         });

}  // namespace
}  // namespace pagoda::runtime::testing

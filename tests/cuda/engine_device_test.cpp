// The runtime Engine on the device: scheduler, continuous batching, prefix
// reuse, preemption and CUDA graphs over CudaOps. Greedy requests run
// together, and with a KV budget so small that sequences are preempted and
// recomputed, must produce the tokens each produces alone on the device.
// Skipped with "no CUDA device: <reason>" without a device.
//
// Exactness: rows are computed independently of each other, but a
// recomputed token's K/V comes from a prefill GEMM where it first came from
// a decode one (another summation order), so its f16 K/V can round the
// other way and move later logits by ~1e-4 of their RMS. Tokens are
// therefore compared up to the reference's first near-tie (top two logits
// closer than 1e-2 of the RMS, measured on the device), and at least a
// quarter of each request's tokens must be compared (the seed was chosen on
// the CPU, whose logits differ slightly from the device's).

#include <gtest/gtest.h>

#include "tests/cuda/model_test_util.h"
#include "tests/runtime/runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

constexpr int kRequests = 8;
constexpr int kNewTokens = 32;
constexpr int kContext = 256;

// Head dim 64 (the tensor-core prefill kernel), 2 query heads per KV head,
// a small vocabulary (few near-ties).
SyntheticSpec deviceSpec() {
    SyntheticSpec spec;
    spec.dim = 256;
    spec.nLayers = 2;
    spec.nHeads = 4;
    spec.nKvHeads = 2;
    spec.ffnDim = 512;
    spec.vocabSize = 512;
    spec.contextLength = kContext;
    spec.dtype = DType::F16;
    spec.seed = 4;  // on the CPU, every reference token before the 18th clears 2e-2 of the RMS
    return spec;
}

// Optimized (flash attention, paged KV, prefix reuse, CUDA graphs), f16 KV
// in `budgetBlocks` blocks of 16 tokens.
OptimizationConfig deviceConfig(const ModelConfig& c, int budgetBlocks) {
    OptimizationConfig config = OptimizationConfig::optimized();
    config.kvType = DType::F16;
    config.maxBatch = 8;
    config.maxBatchTokens = 64;
    config.kvBudgetBytes = uint64_t(budgetBlocks) * 2 * c.nLayers * c.nKvHeads * 16 * c.headDim * 2;
    return config;
}

class EngineOnDevice : public ::testing::Test {
protected:
    void SetUp() override {
        std::string reason;
        m_cuda = test::cudaOpsOrSkipReason(reason);
        if (!m_cuda) GTEST_SKIP() << "no CUDA device: " << reason;
        m_built = test::buildModel(deviceSpec());
        ASSERT_TRUE(m_built.model);
        auto uploaded = m_cuda->uploadModel(*m_built.model);
        ASSERT_TRUE(uploaded) << uploaded.error().message;

        m_prompts = sharedPrefixPrompts();
        for (const auto& prompt : m_prompts) m_alone.push_back(runAll({prompt}, config(256)).front());
        comparableLengths();
    }

    OptimizationConfig config(int budgetBlocks) const { return deviceConfig(m_built.model->config(), budgetBlocks); }

    std::vector<std::vector<int32_t>> runAll(const std::vector<std::vector<int32_t>>& prompts,
                                             const OptimizationConfig& config, StatsSnapshot* stats = nullptr) {
        return runTogether(*m_built.model, *m_cuda, prompts, config, kNewTokens, stats);
    }

    // How many leading tokens of each reference are clear choices.
    void comparableLengths() {
        Generator generator(*m_built.model, *m_cuda, GeneratorOptions{64, 16, DType::F16, false});
        const int vocab = m_built.model->config().vocabSize;
        for (int i = 0; i < kRequests; ++i) {
            ASSERT_EQ(m_alone[i].size(), size_t(kNewTokens));
            const std::vector<GreedyChoice> choices = greedyChoices(generator, m_prompts[i], m_alone[i], vocab);
            ASSERT_EQ(choices.size(), size_t(kNewTokens));
            int clear = 0;
            // A choice the prefill does not repeat is a near-tie too.
            while (clear < kNewTokens && choices[clear].token == m_alone[i][clear] && choices[clear].margin >= 1e-2f) {
                ++clear;
            }
            EXPECT_GE(clear, kNewTokens / 4) << "request " << i << ": near-tie at token " << clear;
            m_clear.push_back(clear);
        }
    }

    void expectMatchesAlone(const std::vector<std::vector<int32_t>>& got) {
        ASSERT_EQ(got.size(), m_alone.size());
        for (int i = 0; i < kRequests; ++i) {
            ASSERT_EQ(got[i].size(), size_t(kNewTokens)) << "request " << i;
            EXPECT_TRUE(std::equal(got[i].begin(), got[i].begin() + m_clear[i], m_alone[i].begin()))
                << "request " << i << " differs within its first " << m_clear[i] << " tokens";
        }
    }

    std::unique_ptr<CudaOps> m_cuda;
    test::BuiltModel m_built;
    std::vector<std::vector<int32_t>> m_prompts;
    std::vector<std::vector<int32_t>> m_alone;
    std::vector<int> m_clear;
};

TEST_F(EngineOnDevice, EightTogetherWithPrefixReuseMatchAlone) {
    StatsSnapshot stats;
    expectMatchesAlone(runAll(m_prompts, config(256), &stats));
    EXPECT_GT(stats.counters.prefixHitTokens, 0);
    EXPECT_GT(stats.counters.peakRunning, 4);
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
}

TEST_F(EngineOnDevice, RepeatedPreemptionMatchesAlone) {
    // 10 blocks of 16 tokens: the longest request needs 8, all eight about 45.
    StatsSnapshot stats;
    expectMatchesAlone(runAll(m_prompts, config(10), &stats));
    EXPECT_GE(stats.counters.preemptions, 3);
    EXPECT_GT(stats.counters.recomputedTokens, 0);
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
    EXPECT_EQ(stats.kv.blocks.sequences, 0);
}

TEST_F(EngineOnDevice, BaselineConfigurationMatchesAlone) {
    // Naive attention, expanded KV, contiguous KV, static batching: the
    // baselines run on the device too.
    OptimizationConfig baseline = OptimizationConfig::baseline();
    baseline.kvType = DType::F16;
    baseline.maxBatch = 8;
    baseline.maxBatchTokens = 64;
    baseline.kvBudgetBytes = config(256).kvBudgetBytes;  // contiguous: 8 x 16 blocks reserved
    expectMatchesAlone(runAll(m_prompts, baseline));
}

}  // namespace
}  // namespace pagoda::runtime::testing

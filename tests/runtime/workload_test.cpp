// The workload runner behind `pagoda-bench compare` and the app's
// comparison view, on a tiny synthetic model: counts, greedy outputs that
// do not depend on the config, progress, and cancellation.

#include <gmock/gmock.h>
#include <gtest/gtest.h>


#include "engine/backend/cpu_ops.h"
#include "engine/runtime/workload.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

using ::testing::HasSubstr;

class WorkloadTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_model = tinyModel(256);
        m_workload.requests = 6;
        m_workload.promptLength = 48;
        m_workload.genLength = 6;
        m_workload.concurrency = 3;
        m_workload.sharedPrefix = 0.5;
        m_prompts = makeWorkloadPrompts(m_workload, m_model.model->config().vocabSize, m_model.model->config().bos);
    }

    Result<WorkloadResult> run(const OptimizationConfig& config, const WorkloadControl& control = {}) {
        return runWorkload(*m_model.model, m_ops, fitToWorkload(config, m_workload), m_workload, m_prompts, control);
    }

    TestModel m_model;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
    Workload m_workload;
    std::vector<std::vector<int32_t>> m_prompts;
};

TEST_F(WorkloadTest, PromptsShareTheirPrefix) {
    ASSERT_EQ(m_prompts.size(), 6u);
    const int32_t bos = m_model.model->config().bos;
    for (const auto& p : m_prompts) {
        ASSERT_EQ(p.size(), 48u);
        if (bos >= 0) {
            EXPECT_EQ(p.front(), bos);
        }
        EXPECT_TRUE(std::equal(p.begin(), p.begin() + 24, m_prompts.front().begin()));
        for (int32_t id : p) EXPECT_LT(id, 512);
    }
    EXPECT_NE(m_prompts[0], m_prompts[1]);
    EXPECT_EQ(makeWorkloadPrompts(m_workload, 512, bos), m_prompts);
}

TEST_F(WorkloadTest, RunsAndCounts) {
    std::vector<WorkloadProgress> reports;
    WorkloadControl control;
    control.progress = [&](const WorkloadProgress& p) { reports.push_back(p); };
    auto result = run(testConfig(), control);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->generatedTokens, 6 * 6);
    ASSERT_EQ(result->outputs.size(), 6u);
    for (const auto& output : result->outputs) EXPECT_EQ(output.size(), 6u);
    EXPECT_GT(result->tokensPerSecond, 0);
    EXPECT_GT(result->ttftP50, 0);
    EXPECT_GE(result->ttftP95, result->ttftP50);
    EXPECT_GE(result->itlP95, result->itlP50);
    EXPECT_GT(result->peakKvBytes, 0u);
    EXPECT_EQ(result->kvBudget, "set: 2.00 MiB");  // testConfig: 256 blocks
    EXPECT_THAT(workloadResultJson("A", *result), HasSubstr(R"("kv_budget": "set: 2.00 MiB")"));
    EXPECT_GE(result->maxConcurrent, 2);
    EXPECT_LE(result->maxConcurrent, 3);
    EXPECT_GT(result->prefixHitRate, 0);  // later requests find the shared prefix cached
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back().finished, 6);
    EXPECT_EQ(reports.back().total, 6);
    for (size_t i = 1; i < reports.size(); ++i) EXPECT_GT(reports[i].finished, reports[i - 1].finished);
}

TEST_F(WorkloadTest, GreedyOutputsMatchAcrossConfigs) {
    OptimizationConfig baseline = OptimizationConfig::baseline();
    baseline.kvType = DType::F32;
    baseline.kvBudgetBytes = testConfig().kvBudgetBytes;
    auto a = run(baseline);
    auto b = run(testConfig());
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(a->outputs, b->outputs);
    EXPECT_EQ(a->config.kvAllocation, KvAllocation::Contiguous);
    EXPECT_EQ(b->config.kvAllocation, KvAllocation::Paged);
}

TEST_F(WorkloadTest, CancelStopsAtTheNextStepAndFreesTheBlocks) {
    m_workload.requests = 40;
    m_workload.genLength = 200;
    m_prompts = makeWorkloadPrompts(m_workload, 512, m_model.model->config().bos);
    std::atomic<bool> cancel = false;
    WorkloadProgress last;
    int reports = 0;
    WorkloadControl control;
    control.cancel = &cancel;
    // Cancel once the first request has finished: the others are mid-decode.
    control.progress = [&](const WorkloadProgress& p) {
        last = p;
        ++reports;
        cancel = true;
    };
    auto result = run(testConfig(), control);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message, kWorkloadCancelled);
    // The first finish, then the drained engine: no step after the cancel
    // finished a request, so the running ones stopped mid-decode.
    EXPECT_EQ(reports, 2);
    EXPECT_LT(last.finished, last.total);  // it stopped before the end, its requests cancelled
    EXPECT_EQ(last.blocksUsed, 0);
}

TEST_F(WorkloadTest, CancelledBeforeStartRunsNothing) {
    std::atomic<bool> cancel = true;
    WorkloadControl control;
    control.cancel = &cancel;
    auto result = run(testConfig(), control);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message, kWorkloadCancelled);
}

TEST_F(WorkloadTest, ErrorsNameTheProblem) {
    ModelConfig small = m_model.model->config();
    small.contextLength = 16;
    EXPECT_THAT(checkWorkload(m_workload, small).error().message,
                HasSubstr("prompt 48 + generation 6 tokens exceed the context of 16"));
    EXPECT_TRUE(checkWorkload(m_workload, m_model.model->config()));
    m_workload.requests = 7;
    EXPECT_THAT(run(testConfig()).error().message, HasSubstr("6 prompts for a workload of 7 requests"));
}

TEST(WorkloadConfig, FitsTheClients) {
    Workload w;
    w.concurrency = 32;
    OptimizationConfig c = OptimizationConfig::optimized();
    c.maxBatch = 4;
    c.maxBatchTokens = 8;
    const OptimizationConfig fitted = fitToWorkload(c, w);
    EXPECT_EQ(fitted.maxBatch, 32);
    EXPECT_EQ(fitted.maxBatchTokens, 32);
    const Workload warm = warmUpWorkload(w);
    EXPECT_EQ(warm.requests, 2);
    EXPECT_EQ(warm.genLength, 4);
}

}  // namespace
}  // namespace pagoda::runtime::testing

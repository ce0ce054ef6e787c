// Thousands of seeded random operations: submissions (random lengths,
// priorities, overflow policies, stop strings, sampling), cancellations of
// live and finished ids, reconfigurations (batching, layout, block size,
// budget, automatic budget, window, attention, local-layer pools; on the
// tiny model and on a Gemma 2 of its shape), host memory for the
// automatic budget coming and going with refits, and steps. The block manager's invariants
// are checked after every step; at the end every accepted request has
// finished exactly once, with a reason, and every block is back in the
// pool. A second test does the same from several threads at once while
// the engine thread runs its loop (run it under ThreadSanitizer).
//
// PAGODA_TEST_SEED=<n> replays a seed.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "engine/backend/cpu_ops.h"
#include "engine/transformer/transformer.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

uint64_t testSeed() {
    if (const char* s = std::getenv("PAGODA_TEST_SEED")) return std::strtoull(s, nullptr, 10);
    return std::random_device{}();
}

Request randomRequest(std::mt19937_64& rng, int maxPrompt) {
    Request r = greedyRequest(randomTokens(1 + int(rng() % uint64_t(maxPrompt)), rng), 1 + int(rng() % 40));
    r.priority = int(rng() % 3);
    r.overflow = rng() % 2 ? OverflowPolicy::KeepWindow : OverflowPolicy::Error;
    r.stopAtEndOfGeneration = rng() % 2;
    if (rng() % 2) {
        r.sampling.temperature = 0.9f;
        r.sampling.seed = rng();
    }
    if (rng() % 4 == 0) r.stopStrings = {"e", "\n\n", std::string(1, char('a' + rng() % 26))};
    return r;
}

// A random config valid for the tiny model with a context of 128 tokens,
// or (sometimes) an invalid one that reconfigure must refuse.
OptimizationConfig randomConfig(std::mt19937_64& rng) {
    OptimizationConfig c = testConfig();
    c.batching = BatchingMode(rng() % 3);
    c.kvAllocation = rng() % 3 == 0 ? KvAllocation::Contiguous : KvAllocation::Paged;
    c.prefixCaching = c.kvAllocation == KvAllocation::Paged && rng() % 4 != 0;
    c.eviction = rng() % 2 ? EvictionPolicyKind::Lru : EvictionPolicyKind::Fifo;
    c.attention = rng() % 2 ? cpu::AttentionAlgorithm::Flash : cpu::AttentionAlgorithm::Naive;
    c.groupedKv = rng() % 2;
    c.decodeGraphs = rng() % 2;
    c.int8Matmul = Int8Matmul(rng() % 3);
    c.dependentLaunch = rng() % 2;
    c.blockSize = 8 << (rng() % 3);
    c.maxBatch = 1 + int(rng() % 8);
    c.maxBatchTokens = c.maxBatch + int(rng() % 64);
    c.kvType = rng() % 2 ? DType::F32 : DType::F16;
    const uint64_t bytesPerToken = 2 * 2 * 2 * 16 * (c.kvType == DType::F32 ? 4 : 2);
    // Contiguous needs 128 tokens; the automatic budget holds what the ops' limit allows.
    c.kvBudgetBytes = rng() % 5 == 0 ? kAutoKvBudget : bytesPerToken * (48 + rng() % 400);
    c.slidingWindow = std::array{-1, 0, 24, 64}[rng() % 4];
    c.localKvPools = rng() % 2;
    return c;
}

// The tiny model's KV dims as Gemma 2 (layer 0 local with a window of 16,
// layer 1 global): local-layer pools come and go with the configs.
TestModel tinyGemma2(int contextLength) {
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.architecture = "gemma2";
    spec.slidingWindow = 16;
    spec.contextLength = contextLength;
    spec.dtype = DType::F32;
    return syntheticModel(spec);
}

void randomOperationsFinishEveryRequestOnceAndFreeEveryBlock(const TestModel& model) {
    const uint64_t seed = testSeed();
    SCOPED_TRACE(::testing::Message() << "PAGODA_TEST_SEED=" << seed);
    std::mt19937_64 rng(seed);
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    Recorder events;
    auto created = Engine::create(*model.model, ops, testConfig(24), &events, EngineOptions{24, 1000});
    ASSERT_TRUE(created) << created.error().message;
    Engine& engine = **created;

    std::vector<RequestId> accepted;
    int rejected = 0, tooLong = 0, reconfigured = 0, refused = 0;
    bool sawLocalPools = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int op = 0; op < 4000; ++op) {
        const uint64_t kind = rng() % 100;
        if (kind < 30) {
            auto id = engine.submit(randomRequest(rng, 100));
            if (id) {
                accepted.push_back(*id);
            } else if (id.error().message.find("exceeds the context limit") != std::string::npos) {
                ++tooLong;  // the budget of the current config holds fewer tokens
            } else {
                ASSERT_NE(id.error().message.find("overloaded"), std::string::npos) << id.error().message;
                ++rejected;
            }
        } else if (kind < 38 && !accepted.empty()) {
            engine.cancel(accepted[rng() % accepted.size()]);
        } else if (kind < 41) {
            (engine.reconfigure(randomConfig(rng)) ? reconfigured : refused)++;
        } else if (kind < 42) {
            // Memory for an automatic budget comes and goes: at least 130 f32
            // tokens, one sequence of the context, beside the activations of
            // the most tokens per step randomConfig sets.
            const uint64_t activations = Transformer::activationBytes(model.model->config(), 72);
            ops.setKvMemoryLimit(rng() % 2 ? std::optional<uint64_t>(activations + 512 * (130 + rng() % 600))
                                           : std::nullopt);
            engine.refitKvCache();
        } else {
            engine.step();
            auto valid = engine.validate();
            ASSERT_TRUE(valid) << "op " << op << ": " << valid.error().message;
            if (op % 16 == 0) sawLocalPools = sawLocalPools || engine.snapshot().kv.localLayers > 0;
        }
    }
    // A model with local layers ran with their pools at times.
    EXPECT_EQ(sawLocalPools, model.model->config().globalEvery > 0);
    while (engine.step()) {
        ASSERT_TRUE(engine.validate());
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the engine does not drain";
    }

    const auto finishes = events.allFinishes();
    EXPECT_EQ(finishes.size(), accepted.size());
    std::array<int, kFinishReasons> reasons{};
    for (RequestId id : accepted) {
        auto it = finishes.find(id);
        ASSERT_NE(it, finishes.end()) << "request " << id << " never finished";
        ASSERT_EQ(it->second.size(), 1u) << "request " << id << " finished " << it->second.size() << " times";
        const FinishEvent& f = it->second.front();
        ++reasons[size_t(f.reason)];
        EXPECT_EQ(f.stats.generatedTokens, int(events.tokens(id).size()));
        EXPECT_TRUE(f.reason != FinishReason::Length || f.stats.generatedTokens >= 1);
    }
    const StatsSnapshot stats = engine.snapshot();
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
    EXPECT_EQ(stats.kv.blocks.sequences, 0);
    EXPECT_EQ(stats.kv.localBlocks.blocksUsed, 0);
    EXPECT_EQ(stats.running + stats.waiting, 0);
    EXPECT_EQ(reasons[size_t(FinishReason::Error)], 0);
    EXPECT_EQ(stats.counters.requestsRejected, rejected);
    EXPECT_GT(stats.counters.preemptions, 0);
    EXPECT_GT(reasons[size_t(FinishReason::Cancelled)], 0);
    EXPECT_GT(reasons[size_t(FinishReason::Length)], 0);
    std::printf("seed %llu: %zu accepted, %d rejected, %d too long, %d reconfigured (%d refused), %lld steps, %lld preemptions, "
                "finished: stop %d eos %d length %d cancelled %d overflow %d\n",
                (unsigned long long)seed, accepted.size(), rejected, tooLong, reconfigured, refused,
                (long long)stats.counters.steps, (long long)stats.counters.preemptions,
                reasons[size_t(FinishReason::StopString)], reasons[size_t(FinishReason::EndOfGeneration)],
                reasons[size_t(FinishReason::Length)], reasons[size_t(FinishReason::Cancelled)],
                reasons[size_t(FinishReason::ContextOverflow)]);
}

TEST(EngineStress, RandomOperationsFinishEveryRequestOnceAndFreeEveryBlock) {
    randomOperationsFinishEveryRequestOnceAndFreeEveryBlock(tinyModel(128));
}

TEST(EngineStress, RandomOperationsOnAModelWithLocalLayers) {
    randomOperationsFinishEveryRequestOnceAndFreeEveryBlock(tinyGemma2(128));
}

// Clients on several threads while the engine thread runs its loop.
TEST(EngineStress, ConcurrentClientsWhileTheLoopRuns) {
    const uint64_t seed = testSeed();
    SCOPED_TRACE(::testing::Message() << "PAGODA_TEST_SEED=" << seed);
    TestModel model = tinyModel(128);
    CpuOps ops(CpuOpsOptions{1, std::nullopt});
    Recorder events;
    auto created = Engine::create(*model.model, ops, testConfig(24), &events, EngineOptions{16, 1000});
    ASSERT_TRUE(created) << created.error().message;
    Engine& engine = **created;
    std::jthread loop([&](std::stop_token stop) { engine.run(stop); });

    constexpr int kClients = 3;
    std::array<std::vector<RequestId>, kClients> accepted;
    {
        std::vector<std::jthread> clients;
        for (int c = 0; c < kClients; ++c) {
            clients.emplace_back([&, c] {
                std::mt19937_64 rng(seed + uint64_t(c));
                for (int op = 0; op < 150; ++op) {
                    const uint64_t kind = rng() % 10;
                    if (kind < 5) {
                        if (auto id = engine.submit(randomRequest(rng, 60))) accepted[size_t(c)].push_back(*id);
                    } else if (kind < 7 && !accepted[size_t(c)].empty()) {
                        engine.cancel(accepted[size_t(c)][rng() % accepted[size_t(c)].size()]);
                    } else if (kind < 8) {
                        (void)engine.reconfigure(randomConfig(rng));
                    } else {
                        const StatsSnapshot s = engine.snapshot();
                        EXPECT_LE(s.kv.blocks.blocksUsed, s.kv.blocks.blocksTotal);
                        EXPECT_FALSE(engine.prometheus().empty());
                        std::this_thread::sleep_for(std::chrono::microseconds(200));
                    }
                }
            });
        }
    }
    size_t total = 0;
    for (const auto& ids : accepted) total += ids.size();
    ASSERT_TRUE(events.waitForFinishes(total, std::chrono::seconds(60))) << "requests did not finish";
    loop.request_stop();
    loop.join();
    const auto finishes = events.allFinishes();
    EXPECT_EQ(finishes.size(), total);
    for (const auto& ids : accepted) {
        for (RequestId id : ids) {
            auto it = finishes.find(id);
            ASSERT_NE(it, finishes.end()) << "request " << id;
            EXPECT_EQ(it->second.size(), 1u) << "request " << id;
        }
    }
    EXPECT_TRUE(engine.validate());
    EXPECT_EQ(engine.snapshot().kv.blocks.blocksUsed, 0);
}

}  // namespace
}  // namespace pagoda::runtime::testing

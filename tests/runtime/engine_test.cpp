// Engine behaviour on a tiny synthetic model: request validation, load
// shedding, text and stop strings, cancellation mid-prefill and mid-decode,
// the three batching modes, context overflow policies, prefix reuse,
// reconfiguration while requests run, and the automatic KV budget.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "engine/backend/cpu_ops.h"
#include "engine/backend/layer_split_ops.h"
#include "engine/transformer/transformer.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

using ::testing::HasSubstr;

class EngineTest : public ::testing::Test {
protected:
    void SetUp() override { m_model = tinyModel(256); }

    std::unique_ptr<Engine> makeEngine(const OptimizationConfig& config, const EngineOptions& options = {}) {
        return makeEngine(config, m_events, options);
    }
    std::unique_ptr<Engine> makeEngine(const OptimizationConfig& config, Recorder& events,
                                       const EngineOptions& options = {}) {
        auto engine = Engine::create(*m_model.model, m_ops, config, &events, options);
        EXPECT_TRUE(engine) << engine.error().message;
        return engine ? std::move(*engine) : nullptr;
    }

    RequestId submit(Engine& engine, Request request) {
        auto id = engine.submit(std::move(request));
        EXPECT_TRUE(id) << id.error().message;
        return id.value_or(-1);
    }

    FinishEvent onlyFinish(RequestId id) { return onlyFinish(m_events, id); }
    static FinishEvent onlyFinish(const Recorder& events, RequestId id) {
        const auto finishes = events.finishes(id);
        EXPECT_EQ(finishes.size(), 1u) << "request " << id;
        return finishes.empty() ? FinishEvent{} : finishes.front();
    }

    TestModel m_model;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
    Recorder m_events;
    std::mt19937_64 m_rng{7};
};

TEST_F(EngineTest, InvalidRequestsAreErrorsAtSubmit) {
    auto engine = makeEngine(testConfig());
    Request empty;
    EXPECT_THAT(engine->submit(empty).error().message, HasSubstr("empty prompt"));
    EXPECT_THAT(engine->submit(greedyRequest({1, 512}, 4)).error().message,
                HasSubstr("prompt token id 512 outside the vocabulary [0, 512)"));
    EXPECT_THAT(engine->submit(greedyRequest({1, 2}, 0)).error().message, HasSubstr("max new tokens 0"));
    EXPECT_THAT(engine->submit(greedyRequest(std::vector<int32_t>(257, 5), 4)).error().message,
                HasSubstr("prompt of 257 tokens exceeds the context limit of 256 tokens"));
    EXPECT_FALSE(engine->cancel(12345));
    OptimizationConfig bad = testConfig();
    bad.maxBatchTokens = 4;
    EXPECT_THAT(engine->reconfigure(bad).error().message, HasSubstr("max batch tokens 4"));
    bad = testConfig();
    bad.kvAllocation = KvAllocation::Contiguous;
    EXPECT_THAT(engine->reconfigure(bad).error().message, HasSubstr("prefix caching needs paged"));
}

TEST_F(EngineTest, OverloadedQueueRejectsAtOnceAndRecovers) {
    auto engine = makeEngine(testConfig(), EngineOptions{2, 100});
    submit(*engine, greedyRequest(randomTokens(8, m_rng), 2));
    submit(*engine, greedyRequest(randomTokens(8, m_rng), 2));
    auto third = engine->submit(greedyRequest(randomTokens(8, m_rng), 2));
    ASSERT_FALSE(third);
    EXPECT_THAT(third.error().message, HasSubstr("overloaded: 2 requests waiting (limit 2)"));
    engine->runUntilIdle();
    EXPECT_EQ(engine->snapshot().counters.requestsRejected, 1);
    EXPECT_TRUE(engine->submit(greedyRequest(randomTokens(8, m_rng), 2)));
    engine->runUntilIdle();
    EXPECT_EQ(m_events.allFinishes().size(), 3u);
}

// Q8_0 KV (a model with heads of 32): the same tokens batched as each
// request alone, with the prefix cache reusing a shared prompt; a model
// whose heads are not a multiple of 32 is refused, saying so.
TEST_F(EngineTest, Q8KvBatchesAsEachRequestRunsAlone) {
    const TestModel model = tinyModel(256, 42, 32);
    OptimizationConfig config = testConfig();
    config.kvType = DType::Q8_0;
    config.kvBudgetBytes = 4u << 20;
    std::vector<Request> requests;
    const std::vector<int32_t> shared = randomTokens(20, m_rng);
    for (int i = 0; i < 4; ++i) {
        std::vector<int32_t> prompt = shared;
        const std::vector<int32_t> own = randomTokens(5 + 6 * i, m_rng);
        prompt.insert(prompt.end(), own.begin(), own.end());
        requests.push_back(greedyRequest(prompt, 8));
    }
    std::vector<std::vector<int32_t>> together;
    std::vector<std::vector<int32_t>> alone;
    {
        Recorder events;
        auto engine = Engine::create(*model.model, m_ops, config, &events);
        ASSERT_TRUE(engine) << engine.error().message;
        std::vector<RequestId> ids;
        for (const Request& r : requests) ids.push_back(submit(**engine, r));
        while ((*engine)->step()) EXPECT_TRUE((*engine)->validate());
        EXPECT_GE((*engine)->snapshot().counters.peakRunning, 2);
        for (RequestId id : ids) together.push_back(events.tokens(id));
    }
    for (const Request& r : requests) {
        Recorder events;
        OptimizationConfig single = config;
        single.prefixCaching = false;
        auto engine = Engine::create(*model.model, m_ops, single, &events);
        ASSERT_TRUE(engine) << engine.error().message;
        const RequestId id = submit(**engine, r);
        while ((*engine)->step()) {
        }
        alone.push_back(events.tokens(id));
    }
    EXPECT_EQ(together, alone);
    for (const std::vector<int32_t>& tokens : together) EXPECT_EQ(tokens.size(), 8u);

    auto refused = Engine::create(*m_model.model, m_ops, config, &m_events);
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.error().message, HasSubstr("q8_0 needs a head dim that is a multiple of 32"));
}

TEST_F(EngineTest, TextPromptStreamsTextAndStopsAtAStopString) {
    auto engine = makeEngine(testConfig());
    Request request;
    request.promptText = "Once upon a time";
    request.sampling.temperature = 0;
    request.maxNewTokens = 40;
    request.stopAtEndOfGeneration = false;
    const RequestId full = submit(*engine, request);
    engine->runUntilIdle();
    const std::string text = m_events.text(full);
    EXPECT_EQ(onlyFinish(full).reason, FinishReason::Length);
    TokenStreamDecoder decoder(*m_model.model->tokenizer());
    std::string expected;
    for (int32_t token : m_events.tokens(full)) expected += decoder.push(token);
    EXPECT_EQ(text, expected + decoder.flush());
    ASSERT_GE(text.size(), 12u);

    // A stop string from the middle of that text, likely spanning tokens.
    request.stopStrings = {text.substr(6, 5)};
    const size_t cut = text.find(request.stopStrings[0]);
    const RequestId stopped = submit(*engine, request);
    engine->runUntilIdle();
    const FinishEvent finish = onlyFinish(stopped);
    EXPECT_EQ(finish.reason, FinishReason::StopString);
    EXPECT_EQ(m_events.text(stopped), text.substr(0, cut));
    EXPECT_LT(finish.stats.generatedTokens, 40);
}

// A chat template's output carries special-token markers: they become
// their tokens only when the request says so (user text keeps them as text).
TEST_F(EngineTest, TextPromptParsesSpecialTokensOnlyWhenAsked) {
    auto engine = makeEngine(testConfig());
    const Tokenizer& tokenizer = *m_model.model->tokenizer();
    Request request;
    request.promptText = "Hello</s>world";
    request.sampling.temperature = 0;
    request.maxNewTokens = 1;
    const RequestId plain = submit(*engine, request);
    request.parseSpecialTokens = true;
    const RequestId special = submit(*engine, request);
    engine->runUntilIdle();
    const size_t plainTokens = tokenizer.encode(request.promptText, tokenizer.vocab().addBos, false).size();
    const size_t specialTokens = tokenizer.encode(request.promptText, tokenizer.vocab().addBos, true).size();
    ASSERT_LT(specialTokens, plainTokens);
    EXPECT_EQ(onlyFinish(plain).stats.promptTokens, int(plainTokens));
    EXPECT_EQ(onlyFinish(special).stats.promptTokens, int(specialTokens));
}

// The snapshot ties each running request to its block manager sequence,
// the owner the block map names (the app labels blocks with chat tabs).
TEST_F(EngineTest, SnapshotNamesTheSequenceOwningEachUsedBlock) {
    OptimizationConfig config = testConfig();
    config.prefixCaching = false;  // every used block then has exactly one owner
    auto engine = makeEngine(config);
    for (int i = 0; i < 3; ++i) submit(*engine, greedyRequest(randomTokens(40, m_rng), 20));
    for (int i = 0; i < 4; ++i) engine->step();
    const StatsSnapshot s = engine->snapshot();
    std::set<SeqId> running;
    for (const RequestSnapshot& r : s.requests) {
        if (r.state == RequestState::Waiting) {
            EXPECT_EQ(r.seq, -1) << "request " << r.id;
        } else {
            EXPECT_GE(r.seq, 0) << "request " << r.id;
            running.insert(r.seq);
        }
    }
    ASSERT_FALSE(running.empty());
    int used = 0;
    for (const BlockMapEntry& b : s.kv.blockMap) {
        if (b.state != BlockState::Used) continue;
        ++used;
        EXPECT_TRUE(running.contains(b.owner)) << "owner " << b.owner;
    }
    EXPECT_GT(used, 0);
    engine->runUntilIdle();
}

TEST_F(EngineTest, CancelMidPrefillFreesEverythingAtOnce) {
    OptimizationConfig config = testConfig();
    config.maxBatchTokens = 16;  // a 200-token prompt takes 13 steps
    auto engine = makeEngine(config);
    const RequestId id = submit(*engine, greedyRequest(randomTokens(200, m_rng), 8));
    engine->step();
    engine->step();
    EXPECT_GT(engine->snapshot().kv.blocks.blocksUsed, 0);
    ASSERT_TRUE(engine->cancel(id));
    EXPECT_FALSE(engine->step());
    const StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
    EXPECT_EQ(stats.kv.blocks.sequences, 0);
    EXPECT_EQ(onlyFinish(id).reason, FinishReason::Cancelled);
    EXPECT_TRUE(m_events.tokens(id).empty());
    EXPECT_FALSE(engine->cancel(id));
    EXPECT_TRUE(engine->validate());
}

TEST_F(EngineTest, CancelMidDecodeFreesEverythingAtOnce) {
    auto engine = makeEngine(testConfig());
    const RequestId id = submit(*engine, greedyRequest(randomTokens(40, m_rng), 100));
    const RequestId other = submit(*engine, greedyRequest(randomTokens(30, m_rng), 100));
    for (int i = 0; i < 5; ++i) engine->step();
    const int usedBoth = engine->snapshot().kv.blocks.blocksUsed;
    ASSERT_EQ(m_events.tokens(id).size(), 5u);
    engine->cancel(id);
    engine->cancel(other);
    engine->step();
    EXPECT_GT(usedBoth, 0);
    EXPECT_EQ(engine->snapshot().kv.blocks.blocksUsed, 0);
    EXPECT_EQ(onlyFinish(id).reason, FinishReason::Cancelled);
    EXPECT_EQ(onlyFinish(id).stats.generatedTokens, 5);
    EXPECT_EQ(onlyFinish(other).reason, FinishReason::Cancelled);
}

// Every mode runs every request to the same greedy tokens; sequential never
// runs two at once; static admits only into an empty batch.
TEST_F(EngineTest, BatchingModesAgreeAndKeepTheirShape) {
    std::vector<Request> requests;
    for (int i = 0; i < 5; ++i) requests.push_back(greedyRequest(randomTokens(10 + 7 * i, m_rng), 6 + 3 * i));
    std::map<BatchingMode, std::vector<std::vector<int32_t>>> outputs;
    for (BatchingMode mode : {BatchingMode::Continuous, BatchingMode::Static, BatchingMode::Sequential}) {
        SCOPED_TRACE(std::string(batchingModeName(mode)));
        OptimizationConfig config = testConfig();
        config.batching = mode;
        config.maxBatch = 3;
        Recorder events;
        auto engine = makeEngine(config, events);
        std::vector<RequestId> ids;
        for (const Request& r : requests) ids.push_back(submit(*engine, r));
        int runningBefore = 0;
        while (engine->step()) {
            const StatsSnapshot s = engine->snapshot();
            EXPECT_LE(s.running, mode == BatchingMode::Sequential ? 1 : 3);
            if (mode != BatchingMode::Continuous && s.lastStep.admitted > 0) {
                EXPECT_EQ(runningBefore, 0);
            }
            runningBefore = s.running;
        }
        for (RequestId id : ids) {
            EXPECT_EQ(onlyFinish(events, id).reason, FinishReason::Length);
            outputs[mode].push_back(events.tokens(id));
        }
        EXPECT_EQ(engine->snapshot().counters.peakRunning, mode == BatchingMode::Sequential ? 1 : 3);
    }
    EXPECT_EQ(outputs[BatchingMode::Static], outputs[BatchingMode::Continuous]);
    EXPECT_EQ(outputs[BatchingMode::Sequential], outputs[BatchingMode::Continuous]);
}

TEST_F(EngineTest, ContextOverflowErrorOrKeepWindow) {
    m_model = tinyModel(64);
    auto engine = makeEngine(testConfig());
    Request request = greedyRequest(randomTokens(60, m_rng), 20);
    const RequestId error = submit(*engine, request);
    request.overflow = OverflowPolicy::KeepWindow;
    const RequestId window = submit(*engine, request);
    engine->runUntilIdle();

    const FinishEvent overflow = onlyFinish(error);
    EXPECT_EQ(overflow.reason, FinishReason::ContextOverflow);
    EXPECT_THAT(overflow.message, HasSubstr("context full: 64 tokens, the limit is 64"));
    EXPECT_EQ(overflow.stats.generatedTokens, 5);  // the 5th cannot be fed

    const FinishEvent kept = onlyFinish(window);
    EXPECT_EQ(kept.reason, FinishReason::Length);
    EXPECT_EQ(kept.stats.generatedTokens, 20);
    EXPECT_GE(kept.stats.contextShifts, 1);
    EXPECT_THAT(kept.message, HasSubstr("context window kept"));
    // Both share their first five tokens: the shift changes nothing before it.
    const std::vector<int32_t> windowTokens = m_events.tokens(window);
    EXPECT_EQ(std::vector(windowTokens.begin(), windowTokens.begin() + 5), m_events.tokens(error));
    EXPECT_EQ(engine->snapshot().counters.contextShifts, kept.stats.contextShifts);
}

TEST_F(EngineTest, PrefixCacheSkipsTheSharedPrefill) {
    auto engine = makeEngine(testConfig());
    const std::vector<int32_t> prompt = randomTokens(70, m_rng);
    const RequestId first = submit(*engine, greedyRequest(prompt, 4));
    engine->runUntilIdle();
    const RequestId second = submit(*engine, greedyRequest(prompt, 4));
    engine->runUntilIdle();
    EXPECT_EQ(onlyFinish(first).stats.reusedTokens, 0);
    EXPECT_EQ(onlyFinish(second).stats.reusedTokens, 64);  // four whole blocks of 16
    EXPECT_EQ(m_events.tokens(first), m_events.tokens(second));
    EXPECT_EQ(engine->snapshot().counters.prefixHitTokens, 64);
}

// The model split across two backends by layer (two CPU backends here:
// tests/transformer/test_layer_split.cpp has the forward pass) generates
// what one backend does, with prefix reuse, under both decode paths, with
// a pool small enough to preempt, and under the baseline config.
TEST_F(EngineTest, AModelSplitByLayerGeneratesWhatOneBackendDoes) {
    const auto prompts = sharedPrefixPrompts();
    struct Case {
        const char* name;
        OptimizationConfig config;
    };
    std::vector<Case> cases = {{"eager decode", testConfig()}, {"decode graphs", testConfig()},
                               {"a pool that preempts", testConfig(12)}, {"baseline", testConfig()}};
    cases[0].config.decodeGraphs = false;
    cases[1].config.decodeGraphs = true;
    OptimizationConfig baseline = OptimizationConfig::baseline();
    baseline.kvType = DType::F32;
    baseline.kvBudgetBytes = cases[3].config.kvBudgetBytes;
    cases[3].config = baseline;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        StatsSnapshot alone;
        const auto want = runTogether(*m_model.model, m_ops, prompts, c.config, 10, &alone);
        auto split = LayerSplitOps::create(std::make_unique<CpuOps>(CpuOpsOptions{1, std::nullopt}),
                                           std::make_unique<CpuOps>(CpuOpsOptions{2, std::nullopt}), 1,
                                           m_model.model->config().nLayers);
        ASSERT_TRUE(split) << split.error().message;
        StatsSnapshot stats;
        EXPECT_EQ(runTogether(*m_model.model, **split, prompts, c.config, 10, &stats), want);
        EXPECT_EQ(stats.counters.preemptions, alone.counters.preemptions);
        EXPECT_EQ(stats.counters.prefixHitTokens, alone.counters.prefixHitTokens);
        if (&c == &cases[2]) {
            EXPECT_GT(alone.counters.preemptions, 0);
        }
    }
}

// Timing each operation (the profiler's breakdown) changes no output, times
// every step from the one after the switch, and stops and restarts on
// demand.
TEST_F(EngineTest, TimingEachOperationChangesNoOutputAndCountsEveryStep) {
    const auto prompts = sharedPrefixPrompts();
    const std::vector<std::vector<int32_t>> some(prompts.begin(), prompts.begin() + 3);
    const auto want = runTogether(*m_model.model, m_ops, some, testConfig(), 6);
    auto engine = makeEngine(testConfig());
    EXPECT_FALSE(engine->snapshot().operations.on);
    engine->timeOperations(true);
    std::vector<RequestId> ids;
    for (const auto& prompt : some) ids.push_back(submit(*engine, greedyRequest(prompt, 6)));
    engine->runUntilIdle();
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(m_events.tokens(ids[i]), want[i]) << i;

    const StatsSnapshot timed = engine->snapshot();
    const OperationTimes& ops = timed.operations;
    EXPECT_TRUE(ops.on);
    EXPECT_EQ(ops.steps, timed.counters.steps);
    EXPECT_EQ(ops.tokens, timed.counters.promptTokens + timed.counters.decodeTokens);
    std::map<TimedOps::Op, int64_t> calls;
    for (const TimedOps::OpTime& t : ops.times) calls[t.op] = t.calls;
    const int64_t layers = m_model.model->config().nLayers;
    EXPECT_EQ(calls[TimedOps::Op::Attention], ops.steps * layers);
    EXPECT_EQ(calls[TimedOps::Op::MatmulSwiglu], ops.steps * layers);
    EXPECT_EQ(calls[TimedOps::Op::Embed], ops.steps);

    // Off: the times stay as they were.
    engine->timeOperations(false);
    submit(*engine, greedyRequest(some[0], 3));
    engine->runUntilIdle();
    const StatsSnapshot off = engine->snapshot();
    EXPECT_FALSE(off.operations.on);
    EXPECT_EQ(off.operations.steps, ops.steps);
    EXPECT_GT(off.counters.steps, timed.counters.steps);
    ASSERT_EQ(off.operations.times.size(), ops.times.size());
    for (size_t i = 0; i < ops.times.size(); ++i) EXPECT_EQ(off.operations.times[i].calls, ops.times[i].calls);

    // On again: from zero.
    engine->timeOperations(true);
    submit(*engine, greedyRequest(some[1], 3));
    engine->runUntilIdle();
    const StatsSnapshot again = engine->snapshot();
    EXPECT_TRUE(again.operations.on);
    EXPECT_EQ(again.operations.steps, again.counters.steps - off.counters.steps);
}

// Reconfiguring to a new cache layout while requests run preempts them,
// recomputes them in the new cache and changes none of their tokens.
TEST_F(EngineTest, ReconfigureRebuildsTheCacheWithoutChangingOutputs) {
    std::vector<Request> requests;
    for (int i = 0; i < 4; ++i) requests.push_back(greedyRequest(randomTokens(20 + 5 * i, m_rng), 24));
    std::vector<std::vector<int32_t>> expected;
    {
        Recorder events;
        auto engine = makeEngine(testConfig(), events);
        std::vector<RequestId> ids;
        for (const Request& r : requests) ids.push_back(submit(*engine, r));
        engine->runUntilIdle();
        for (RequestId id : ids) expected.push_back(events.tokens(id));
    }
    auto engine = makeEngine(testConfig());
    std::vector<RequestId> ids;
    for (const Request& r : requests) ids.push_back(submit(*engine, r));
    OptimizationConfig contiguous = testConfig();
    contiguous.kvAllocation = KvAllocation::Contiguous;
    contiguous.prefixCaching = false;
    contiguous.blockSize = 32;
    OptimizationConfig naive = contiguous;
    naive.attention = cpu::AttentionAlgorithm::Naive;
    naive.groupedKv = false;
    naive.maxBatchTokens = 100;
    for (int i = 0; i < 5; ++i) engine->step();
    ASSERT_TRUE(engine->reconfigure(contiguous));
    for (int i = 0; i < 5; ++i) engine->step();
    ASSERT_TRUE(engine->reconfigure(naive));
    engine->runUntilIdle();
    const StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.counters.cacheRebuilds, 1);
    EXPECT_EQ(stats.counters.preemptions, 4);
    EXPECT_EQ(stats.config, naive);
    EXPECT_EQ(stats.kv.allocation, KvAllocation::Contiguous);
    EXPECT_EQ(stats.kv.blocks.blocksUsed, 0);
    for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(m_events.tokens(ids[i]), expected[i]) << "request " << i;
        EXPECT_EQ(onlyFinish(ids[i]).stats.preemptions, 1);
    }
}

// The config's int8 products reach the backend when the engine starts and
// when it is reconfigured: cpu and on turn the CPU's on, off turns them off.
TEST_F(EngineTest, Int8MatmulReachesTheBackend) {
    auto engine = makeEngine(testConfig());
    ASSERT_EQ(testConfig().int8Matmul, Int8Matmul::Cpu);
    EXPECT_THAT(m_ops.description(), HasSubstr("int8 matmul"));
    for (const Int8Matmul mode : {Int8Matmul::Off, Int8Matmul::On, Int8Matmul::Off}) {
        OptimizationConfig config = testConfig();
        config.int8Matmul = mode;
        ASSERT_TRUE(engine->reconfigure(config));
        engine->step();
        EXPECT_EQ(m_ops.description().find("int8 matmul") != std::string::npos, mode != Int8Matmul::Off)
            << int8MatmulName(mode) << ": " << m_ops.description();
    }
}

TEST_F(EngineTest, PriorityRunsFirst) {
    OptimizationConfig config = testConfig();
    config.batching = BatchingMode::Sequential;
    auto engine = makeEngine(config);
    Request low = greedyRequest(randomTokens(10, m_rng), 3);
    Request high = low;
    high.priority = 5;
    const RequestId lowId = submit(*engine, low);
    const RequestId highId = submit(*engine, high);
    engine->runUntilIdle();
    EXPECT_LT(onlyFinish(highId).stats.totalSeconds, onlyFinish(lowId).stats.totalSeconds);
    EXPECT_GT(onlyFinish(lowId).stats.queueSeconds, onlyFinish(highId).stats.queueSeconds);
}

// tiny: 2 (K, V) x 2 layers x 2 KV heads x 16 dims x 4 bytes (f32) per token
constexpr uint64_t kTinyBytesPerToken = 2 * 2 * 2 * 16 * 4;

OptimizationConfig automaticBudget() {
    OptimizationConfig c = testConfig();
    c.kvBudgetBytes = kAutoKvBudget;
    return c;
}

// The activations of tiny at testConfig's 64 tokens per step, which the
// automatic budget leaves room for.
uint64_t tinyActivationBytes() { return Transformer::activationBytes(tinyModel(256).model->config(), 64); }

TEST_F(EngineTest, AutomaticBudgetHoldsFourContextsOrWhatMemoryAllows) {
    auto engine = makeEngine(automaticBudget());
    StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.memory.kvPoolBytes, 4 * 256 * kTinyBytesPerToken);
    EXPECT_EQ(stats.contextLimit, 256);
    EXPECT_EQ(stats.kv.budget, "auto: 4 contexts of 256 tokens, 512.00 KiB");

    // Memory for 100 tokens beside the activations (64 tokens per step).
    m_ops.setKvMemoryLimit(100 * kTinyBytesPerToken + tinyActivationBytes());
    auto limited = makeEngine(automaticBudget());
    stats = limited->snapshot();
    EXPECT_EQ(stats.memory.kvPoolBytes, 96 * kTinyBytesPerToken);  // 6 whole blocks
    EXPECT_GT(stats.contextLimit, 0);
    EXPECT_LE(stats.contextLimit, 96);
    EXPECT_EQ(stats.kv.budget, "auto: 48.00 KiB, what memory allows (50.00 KiB available; 4 contexts of 256 tokens need "
              "512.00 KiB)");
    EXPECT_EQ(limited->submit(greedyRequest(randomTokens(stats.contextLimit + 1, m_rng), 4)).error().message,
              fmt::format("prompt of {} tokens exceeds the context limit of {} tokens (the model's is 256; the KV "
                          "cache, {}, holds no more)",
                          stats.contextLimit + 1, stats.contextLimit, stats.kv.budget));
    const RequestId id = submit(*limited, greedyRequest(randomTokens(20, m_rng), 8));
    limited->runUntilIdle();
    EXPECT_EQ(onlyFinish(id).reason, FinishReason::Length);
}

// A context set below the model's caps each sequence (prompts, and
// generation under either overflow policy), sizes the automatic pool, and
// changes nothing a shorter request generates; raising it again restores
// the model's.
TEST_F(EngineTest, AContextSetCapsEverySequence) {
    const Request shortRequest = greedyRequest(randomTokens(20, m_rng), 8);
    auto whole = makeEngine(automaticBudget());
    const RequestId reference = submit(*whole, shortRequest);
    whole->runUntilIdle();

    OptimizationConfig config = automaticBudget();
    config.contextLength = 48;
    auto engine = makeEngine(config);
    StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.contextLimit, 48);
    EXPECT_EQ(stats.memory.kvPoolBytes, 4 * 48 * kTinyBytesPerToken);
    EXPECT_EQ(stats.kv.budget, "auto: 4 contexts of 48 tokens, 96.00 KiB");
    EXPECT_EQ(engine->submit(greedyRequest(randomTokens(49, m_rng), 4)).error().message,
              "prompt of 49 tokens exceeds the context limit of 48 tokens (the context set; the model's is 256)");

    const RequestId same = submit(*engine, shortRequest);
    Request overflowing = greedyRequest(randomTokens(40, m_rng), 20);
    const RequestId error = submit(*engine, overflowing);
    overflowing.overflow = OverflowPolicy::KeepWindow;
    const RequestId window = submit(*engine, overflowing);
    engine->runUntilIdle();
    EXPECT_EQ(m_events.tokens(same), m_events.tokens(reference));
    const FinishEvent overflow = onlyFinish(error);
    EXPECT_EQ(overflow.reason, FinishReason::ContextOverflow);
    EXPECT_THAT(overflow.message, HasSubstr("context full: 48 tokens, the limit is 48"));
    EXPECT_EQ(overflow.stats.generatedTokens, 9);  // the 9th cannot be fed
    const FinishEvent kept = onlyFinish(window);
    EXPECT_EQ(kept.reason, FinishReason::Length);
    EXPECT_GE(kept.stats.contextShifts, 1);

    config.contextLength = kModelContext;
    ASSERT_TRUE(engine->reconfigure(config));
    engine->runUntilIdle();
    EXPECT_EQ(engine->snapshot().contextLimit, 256);
    EXPECT_TRUE(engine->submit(greedyRequest(randomTokens(49, m_rng), 4)));
    engine->runUntilIdle();
}

// A cache that memory limited takes what is freed later when refitted; one
// that memory did not limit stays.
TEST_F(EngineTest, RefitGrowsAnAutomaticCacheThatMemoryLimited) {
    m_ops.setKvMemoryLimit(100 * kTinyBytesPerToken + tinyActivationBytes());
    auto engine = makeEngine(automaticBudget());
    const RequestId id = submit(*engine, greedyRequest(randomTokens(20, m_rng), 30));
    for (int i = 0; i < 3; ++i) engine->step();
    EXPECT_EQ(engine->snapshot().memory.kvPoolBytes, 96 * kTinyBytesPerToken);

    m_ops.setKvMemoryLimit(std::nullopt);
    engine->refitKvCache();
    engine->runUntilIdle();
    StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.memory.kvPoolBytes, 4 * 256 * kTinyBytesPerToken);
    EXPECT_EQ(stats.kv.budget, "auto: 4 contexts of 256 tokens, 512.00 KiB");
    EXPECT_EQ(stats.contextLimit, 256);
    EXPECT_EQ(stats.counters.cacheRebuilds, 1);
    EXPECT_EQ(onlyFinish(id).reason, FinishReason::Length);
    EXPECT_EQ(onlyFinish(id).stats.preemptions, 1);

    engine->refitKvCache();
    EXPECT_FALSE(engine->step());
    EXPECT_EQ(engine->snapshot().counters.cacheRebuilds, 1);
    EXPECT_TRUE(engine->validate());

    // Memory gone by the time a limited cache is refitted: no cache, and
    // the failure reported as a reconfigure's.
    m_ops.setKvMemoryLimit(100 * kTinyBytesPerToken);  // the activations are held: 100 tokens for the pool
    OptimizationConfig other = automaticBudget();
    other.blockSize = 32;
    ASSERT_TRUE(engine->reconfigure(other));
    engine->step();
    ASSERT_THAT(engine->snapshot().kv.budget, HasSubstr("what memory allows"));
    m_ops.setKvMemoryLimit(100);
    engine->refitKvCache();
    engine->step();
    stats = engine->snapshot();
    EXPECT_EQ(stats.counters.configFailures, 1);
    EXPECT_THAT(stats.configError, HasSubstr("no KV cache: "));
    EXPECT_THAT(engine->submit(greedyRequest({1, 2}, 4)).error().message, HasSubstr("no KV cache: "));
}

// More tokens per step need more activations: an automatic pool that
// memory limits is made again, smaller, leaving room for them.
TEST_F(EngineTest, MoreTokensPerStepShrinkALimitedAutomaticPool) {
    const ModelConfig& model = m_model.model->config();
    m_ops.setKvMemoryLimit(100 * kTinyBytesPerToken + Transformer::activationBytes(model, 128));
    auto engine = makeEngine(automaticBudget());  // 64 tokens per step
    const uint64_t before = engine->snapshot().memory.kvPoolBytes;
    const RequestId id = submit(*engine, greedyRequest(randomTokens(20, m_rng), 8));
    engine->step();
    OptimizationConfig more = automaticBudget();
    more.maxBatchTokens = 128;
    ASSERT_TRUE(engine->reconfigure(more));
    engine->runUntilIdle();
    const StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.counters.cacheRebuilds, 1);
    EXPECT_EQ(stats.counters.configFailures, 0);
    EXPECT_LT(stats.memory.kvPoolBytes, before);
    EXPECT_EQ(stats.memory.kvPoolBytes, 96 * kTinyBytesPerToken);  // the limit less the 128-token activations
    EXPECT_EQ(onlyFinish(id).reason, FinishReason::Length);
}

// A rebuild that fails (here: the automatic budget finds no memory) makes
// the cache of the config in effect again; the running requests are
// recomputed there and finish as they would have.
TEST_F(EngineTest, FailedRebuildFallsBackToTheConfigInEffect) {
    std::vector<int32_t> prompt = randomTokens(30, m_rng);
    std::vector<int32_t> expected;
    {
        Recorder events;
        auto alone = makeEngine(testConfig(), events);
        const RequestId id = submit(*alone, greedyRequest(prompt, 12));
        alone->runUntilIdle();
        expected = events.tokens(id);
    }
    auto engine = makeEngine(testConfig());
    const RequestId id = submit(*engine, greedyRequest(prompt, 12));
    for (int i = 0; i < 4; ++i) engine->step();
    m_ops.setKvMemoryLimit(100);  // less than a block
    ASSERT_TRUE(engine->reconfigure(automaticBudget()));  // checked at its aim, which fits
    engine->runUntilIdle();
    const StatsSnapshot stats = engine->snapshot();
    EXPECT_EQ(stats.config, testConfig());
    EXPECT_EQ(stats.kv.budget, "set: 2.00 MiB");  // 256 blocks
    EXPECT_EQ(stats.counters.configFailures, 1);
    EXPECT_THAT(stats.configError, HasSubstr("KV budget auto: 0 B, what memory allows"));
    EXPECT_THAT(engine->prometheus(), HasSubstr("pagoda_config_failures_total 1"));
    EXPECT_EQ(onlyFinish(id).reason, FinishReason::Length);
    EXPECT_EQ(onlyFinish(id).stats.preemptions, 1);
    EXPECT_EQ(m_events.tokens(id), expected);
    EXPECT_TRUE(engine->validate());
}

// When the fallback fails too, the engine has no cache: requests fail with
// the reason, none is lost or left waiting, and a reconfigure that fits
// brings it back.
TEST_F(EngineTest, WithoutACacheEveryRequestFailsWithTheReason) {
    auto engine = makeEngine(automaticBudget());
    const RequestId running = submit(*engine, greedyRequest(randomTokens(30, m_rng), 50));
    for (int i = 0; i < 3; ++i) engine->step();
    m_ops.setKvMemoryLimit(100);  // all of it the pool's: the activations are allocated already
    OptimizationConfig larger = automaticBudget();
    larger.blockSize = 32;
    ASSERT_TRUE(engine->reconfigure(larger));
    engine->runUntilIdle();
    EXPECT_EQ(onlyFinish(running).reason, FinishReason::Error);
    EXPECT_THAT(onlyFinish(running).message, HasSubstr("no KV cache: KV budget auto: 0 B, what memory allows (100 B available;"));
    EXPECT_THAT(engine->submit(greedyRequest({1, 2}, 4)).error().message,
                HasSubstr("; reconfigure the engine"));
    EXPECT_EQ(engine->snapshot().memory.kvPoolBytes, 0u);
    EXPECT_THAT(engine->validate().error().message, HasSubstr("no KV cache"));

    m_ops.setKvMemoryLimit(std::nullopt);
    ASSERT_TRUE(engine->reconfigure(larger));
    engine->step();
    const RequestId again = submit(*engine, greedyRequest(randomTokens(20, m_rng), 5));
    engine->runUntilIdle();
    EXPECT_EQ(onlyFinish(again).reason, FinishReason::Length);
    EXPECT_EQ(engine->snapshot().config, larger);
    EXPECT_TRUE(engine->validate());
}

}  // namespace
}  // namespace pagoda::runtime::testing

// Exports: the Prometheus text parses line by line (valid names, # HELP and
// # TYPE before every family's samples, counters named *_total, numeric
// values; device memory only with a device), the trace is well-formed JSON
// with complete events, and the snapshot's numbers agree with what ran.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "engine/backend/cpu_ops.h"
#include "engine/runtime/prometheus.h"
#include "engine/runtime/trace.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Exposition {
    std::map<std::string, std::string> types;  // family -> counter|gauge
    int samples = 0;
};

// Checks every line of a Prometheus text (failures are the test's).
Exposition parseExposition(const std::string& text) {
    const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
    const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
    const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (\S+))");
    std::set<std::string> helped, typed, seen;
    Exposition parsed;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::smatch m;
        if (std::regex_match(line, m, help)) {
            EXPECT_TRUE(helped.insert(m[1]).second) << "second HELP for " << m[1];
        } else if (std::regex_match(line, m, type)) {
            EXPECT_TRUE(helped.contains(m[1])) << "TYPE before HELP: " << line;
            EXPECT_TRUE(typed.insert(m[1]).second) << "second TYPE for " << m[1];
            parsed.types[m[1]] = m[2];
            EXPECT_EQ(m[2] == "counter", std::string(m[1]).ends_with("_total")) << line;
            EXPECT_TRUE(std::string(m[1]).starts_with("pagoda_")) << line;
        } else if (std::regex_match(line, m, sample)) {
            EXPECT_TRUE(typed.contains(m[1])) << "sample without HELP/TYPE: " << line;
            size_t used = 0;
            const std::string value = m[4];
            EXPECT_NO_THROW((void)std::stod(value, &used)) << line;
            EXPECT_EQ(used, value.size()) << line;
            EXPECT_TRUE(seen.insert(std::string(m[1]) + std::string(m[2])).second) << "duplicate series " << line;
            ++parsed.samples;
        } else {
            ADD_FAILURE() << "unparseable line: '" << line << "'";
        }
    }
    return parsed;
}

class ExportTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_model = tinyModel(128);
        auto engine = Engine::create(*m_model.model, m_ops, testConfig(12), &m_events);
        ASSERT_TRUE(engine) << engine.error().message;
        m_engine = std::move(*engine);
        std::mt19937_64 rng(3);
        for (int i = 0; i < 6; ++i) ASSERT_TRUE(m_engine->submit(greedyRequest(randomTokens(20 + 9 * i, rng), 20)));
        m_engine->runUntilIdle();
    }

    TestModel m_model;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
    Recorder m_events;
    std::unique_ptr<Engine> m_engine;
};

TEST_F(ExportTest, PrometheusTextParsesLineByLine) {
    const std::string text = m_engine->prometheus();
    const Exposition parsed = parseExposition(text);
    EXPECT_GT(parsed.samples, 30);
    EXPECT_EQ(parsed.types.at("pagoda_generated_tokens_total"), "counter");
    EXPECT_EQ(parsed.types.at("pagoda_memory_bytes"), "gauge");
    EXPECT_THAT(text, HasSubstr("pagoda_generated_tokens_total 120\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_requests_finished_total{reason=\"length\"} 6\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_kv_blocks{state=\"used\"} 0\n"));
    EXPECT_THAT(text, Not(HasSubstr("pagoda_kv_local_blocks")));  // tiny has no local layers
}

// A model with local-layer pools exports their blocks too (here a
// snapshot that says so).
TEST_F(ExportTest, LocalLayerPoolsAreExportedWhenThereAreSome) {
    StatsSnapshot s = m_engine->snapshot();
    s.kv.localLayers = 5;
    s.kv.localBlocks.blocksUsed = 3;
    s.kv.localBlocks.blocksCached = 4;
    s.kv.localBlocks.blocksFree = 21;
    const std::string text = prometheusText(s);
    EXPECT_EQ(parseExposition(text).types.at("pagoda_kv_local_blocks"), "gauge");
    EXPECT_THAT(text, HasSubstr("pagoda_kv_local_blocks{state=\"used\"} 3\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_kv_local_blocks{state=\"free\"} 21\n"));
}

// The CPU backend has no device, so the device families are checked on a
// snapshot that says it has one.
TEST_F(ExportTest, DeviceMemoryIsExportedOnlyWithADevice) {
    StatsSnapshot s = m_engine->snapshot();
    EXPECT_FALSE(s.memory.device.has_value());
    EXPECT_THAT(prometheusText(s), Not(HasSubstr("pagoda_device_memory")));
    s.memory.device = DeviceMemoryStats{100, 200, 30, 4, 512, 1000, 4096};
    const std::string text = prometheusText(s);
    const Exposition parsed = parseExposition(text);
    EXPECT_EQ(parsed.types.at("pagoda_device_memory_bytes"), "gauge");
    EXPECT_EQ(parsed.types.at("pagoda_device_memory_free_bytes"), "gauge");
    EXPECT_EQ(parsed.types.at("pagoda_device_memory_total_bytes"), "gauge");
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_bytes{use=\"weights\"} 100\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_bytes{use=\"kv_cache\"} 200\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_bytes{use=\"activations\"} 30\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_bytes{use=\"workspace\"} 4\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_bytes{use=\"reserved\"} 512\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_free_bytes 1000\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_device_memory_total_bytes 4096\n"));
}

// Time by operation: the switch always; the times once there are some.
TEST_F(ExportTest, OperationTimesAreExportedOnceTimed) {
    StatsSnapshot s = m_engine->snapshot();
    std::string text = prometheusText(s);
    EXPECT_THAT(text, HasSubstr("pagoda_operation_timing 0\n"));
    EXPECT_THAT(text, Not(HasSubstr("pagoda_operation_seconds")));
    s.operations.on = true;
    s.operations.times = {{TimedOps::Op::Matmul, 50, 0.25}, {TimedOps::Op::Attention, 20, 0.125}};
    s.operations.steps = 10;
    text = prometheusText(s);
    const Exposition parsed = parseExposition(text);
    EXPECT_EQ(parsed.types.at("pagoda_operation_seconds"), "gauge");
    EXPECT_EQ(parsed.types.at("pagoda_operation_calls"), "gauge");
    EXPECT_THAT(text, HasSubstr("pagoda_operation_timing 1\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_operation_seconds{op=\"matmul\"} 0.25\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_operation_seconds{op=\"attention\"} 0.125\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_operation_calls{op=\"matmul\"} 50\n"));
    EXPECT_THAT(text, HasSubstr("pagoda_operation_timed_steps 10\n"));
}

TEST_F(ExportTest, TraceIsWellFormedJsonWithCompleteEvents) {
    const std::string trace = m_engine->trace();
    EXPECT_TRUE(isValidJson(trace)) << trace.substr(0, 2000);
    const StatsSnapshot stats = m_engine->snapshot();
    // Each step: a "step" complete event with its phases inside.
    size_t steps = 0;
    for (size_t at = 0; (at = trace.find(R"("name":"step","cat":"engine","ph":"X")", at)) != std::string::npos; ++at) {
        ++steps;
    }
    EXPECT_EQ(steps, size_t(stats.counters.steps));
    EXPECT_THAT(trace, HasSubstr(R"("name":"forward","cat":"engine","ph":"X")"));
    EXPECT_THAT(trace, HasSubstr(R"("ph":"C")"));
    EXPECT_TRUE(isValidJson(traceJson({})));
    EXPECT_FALSE(isValidJson(R"({"traceEvents":[}")"));
}

TEST_F(ExportTest, SnapshotAgreesWithWhatRan) {
    const StatsSnapshot s = m_engine->snapshot();
    EXPECT_EQ(s.counters.requestsSubmitted, 6);
    EXPECT_EQ(s.counters.finished(FinishReason::Length), 6);
    EXPECT_EQ(s.counters.generatedTokens, 120);
    EXPECT_GT(s.counters.preemptions, 0);  // 12 blocks for six sequences of up to 85 tokens
    // Every position is computed once (the last sampled token is never fed),
    // plus what preemption made recompute, minus the first admissions' prefix hits.
    int64_t positions = 0;
    for (const auto& [id, finishes] : m_events.allFinishes()) {
        positions += finishes.front().stats.promptTokens - finishes.front().stats.reusedTokens + 19;
    }
    EXPECT_EQ(s.counters.promptTokens + s.counters.decodeTokens, positions + s.counters.recomputedTokens);
    EXPECT_EQ(int(s.kv.blockMap.size()), s.kv.blocks.blocksTotal);
    EXPECT_EQ(s.kv.blocks.blocksTotal, 12);
    EXPECT_EQ(s.memory.weightsBytes, m_model.model->weightBytes());
    EXPECT_EQ(s.memory.kvPoolBytes, 12u * s.kv.bytesPerBlock);
    EXPECT_GT(s.memory.workspaceBytes, 0u);
    EXPECT_GT(s.memory.hostRssBytes, 0u);
    EXPECT_GT(s.counters.peakRunning, 1);
    EXPECT_GT(s.counters.decodeSeconds, 0);
    EXPECT_GT(s.counters.prefillSeconds, 0);
    EXPECT_TRUE(s.requests.empty());
    EXPECT_GT(s.generatedTokensPerSecond, 0);
}

}  // namespace
}  // namespace pagoda::runtime::testing

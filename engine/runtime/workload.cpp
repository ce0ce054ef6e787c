#include "engine/runtime/workload.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "engine/model/model_config.h"
#include "engine/runtime/engine.h"

namespace pagoda::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// Nearest-rank percentile of unsorted values (0 when empty).
double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const size_t rank = size_t(std::ceil(p / 100.0 * double(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

// C clients, each submitting its next request when the previous finishes.
class ClosedLoop final : public EngineEvents {
public:
    ClosedLoop(const std::vector<std::vector<int32_t>>& prompts, int requests, int genLength)
        : m_prompts(prompts), m_requests(size_t(requests)), m_genLength(genLength), m_tokens(m_requests),
          m_tokenTimes(m_requests) {}

    void start(Engine& engine, int concurrency) {
        m_engine = &engine;
        for (int c = 0; c < concurrency && m_next < m_requests; ++c) submitNext();
    }
    // Submits nothing more and cancels what is in the engine.
    void stop() {
        m_next = m_requests;
        for (const RequestId id : m_live) m_engine->cancel(id);
    }

    void onToken(RequestId id, int32_t token) override {
        const size_t i = m_index.at(id);
        m_tokens[i].push_back(token);
        m_tokenTimes[i].push_back(Clock::now());
    }
    void onText(RequestId, std::string_view) override {}
    void onFinished(const FinishEvent& event) override {
        m_live.erase(event.id);
        ++m_finished;
        if (event.reason != FinishReason::Length && !m_error) {
            m_error = Error{fmt::format("request {} finished early: {} {}", event.id, finishReasonName(event.reason),
                                        event.message)};
        }
        m_ttft.push_back(event.stats.ttftSeconds);
        if (m_next < m_requests) submitNext();
    }

    int finished() const { return m_finished; }
    const std::optional<Error>& error() const { return m_error; }
    std::vector<std::vector<int32_t>>& tokens() { return m_tokens; }
    const std::vector<double>& ttft() const { return m_ttft; }
    std::vector<double> interTokenLatencies() const {
        std::vector<double> gaps;
        for (const auto& times : m_tokenTimes) {
            for (size_t t = 1; t < times.size(); ++t) {
                gaps.push_back(std::chrono::duration<double>(times[t] - times[t - 1]).count());
            }
        }
        return gaps;
    }

private:
    void submitNext() {
        Request request;
        request.promptTokens = m_prompts[m_next];
        request.sampling.temperature = 0;  // greedy: every config must produce the same tokens
        request.sampling.repeatPenalty = 1;
        request.maxNewTokens = m_genLength;
        request.stopAtEndOfGeneration = false;
        auto id = m_engine->submit(std::move(request));
        if (!id) {
            m_error = id.error();
            m_next = m_requests;
            return;
        }
        m_live.insert(*id);
        m_index[*id] = m_next++;
    }

    const std::vector<std::vector<int32_t>>& m_prompts;
    const size_t m_requests;
    int m_genLength;
    Engine* m_engine = nullptr;
    size_t m_next = 0;
    int m_finished = 0;
    std::map<RequestId, size_t> m_index;
    std::set<RequestId> m_live;
    std::vector<std::vector<int32_t>> m_tokens;
    std::vector<std::vector<Clock::time_point>> m_tokenTimes;
    std::vector<double> m_ttft;
    std::optional<Error> m_error;
};

}  // namespace

Result<void> checkWorkload(const Workload& workload, const ModelConfig& model) {
    if (workload.promptLength + workload.genLength > model.contextLength) {
        return fail("prompt {} + generation {} tokens exceed the context of {}", workload.promptLength,
                    workload.genLength, model.contextLength);
    }
    return {};
}

OptimizationConfig fitToWorkload(OptimizationConfig config, const Workload& workload) {
    config.maxBatch = std::max(config.maxBatch, workload.concurrency);
    config.maxBatchTokens = std::max(config.maxBatchTokens, config.maxBatch);
    return config;
}

Workload warmUpWorkload(const Workload& workload) {
    Workload warm = workload;
    warm.requests = std::min(2, workload.requests);
    warm.genLength = std::min(4, workload.genLength);
    return warm;
}

std::vector<int32_t> lcgTokens(int n, int vocab, uint64_t seed) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    uint64_t x = seed;
    for (int32_t& id : ids) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        id = int32_t((x >> 33) % uint64_t(vocab));
    }
    return ids;
}

std::vector<std::vector<int32_t>> makeWorkloadPrompts(const Workload& w, int vocab, int32_t bos) {
    const int shared = int(w.sharedPrefix * w.promptLength);
    // Skip the control tokens (<unk> <s> </s>) at the start of the vocabulary.
    auto draw = [&](int n, uint64_t seed) {
        std::vector<int32_t> ids = lcgTokens(n, vocab - 3, seed);
        for (int32_t& id : ids) id += 3;
        return ids;
    };
    const std::vector<int32_t> prefix = draw(shared, 1);
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < w.requests; ++i) {
        std::vector<int32_t> p;
        if (bos >= 0) p.push_back(bos);
        p.insert(p.end(), prefix.begin(), prefix.end());
        const std::vector<int32_t> tail = draw(w.promptLength - int(p.size()), 1000 + uint64_t(i));
        p.insert(p.end(), tail.begin(), tail.end());
        prompts.push_back(std::move(p));
    }
    return prompts;
}

Result<WorkloadResult> runWorkload(const Model& model, Ops& ops, const OptimizationConfig& config,
                                   const Workload& workload, const std::vector<std::vector<int32_t>>& prompts,
                                   const WorkloadControl& control) {
    if (prompts.size() < size_t(workload.requests)) {
        return fail("{} prompts for a workload of {} requests", prompts.size(), workload.requests);
    }
    const auto cancelled = [&] { return control.cancel != nullptr && control.cancel->load(); };
    if (cancelled()) return std::unexpected(Error{std::string(kWorkloadCancelled)});
    ClosedLoop loop(prompts, workload.requests, workload.genLength);
    PAGODA_ASSIGN_OR_RETURN(auto engine, Engine::create(model, ops, config, &loop));
    const auto report = [&] {
        if (control.progress) {
            control.progress({loop.finished(), workload.requests, engine->snapshot().kv.blocks.blocksUsed});
        }
    };
    const auto start = Clock::now();
    loop.start(*engine, workload.concurrency);
    int reported = 0;
    while (engine->step()) {
        if (cancelled()) {
            loop.stop();
            engine->runUntilIdle();  // the cancels apply at the next step boundary, freeing the blocks
            report();
            return std::unexpected(Error{std::string(kWorkloadCancelled)});
        }
        if (loop.finished() != reported) {
            reported = loop.finished();
            report();
        }
    }
    if (loop.finished() != reported) report();  // the step that finished the last requests returned false
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (loop.error()) return std::unexpected(*loop.error());

    const StatsSnapshot stats = engine->snapshot();
    WorkloadResult r;
    r.config = config;
    r.seconds = seconds;
    r.generatedTokens = stats.counters.generatedTokens;
    r.tokensPerSecond = double(r.generatedTokens) / seconds;
    r.ttftP50 = percentile(loop.ttft(), 50);
    r.ttftP95 = percentile(loop.ttft(), 95);
    const std::vector<double> gaps = loop.interTokenLatencies();
    r.itlP50 = percentile(gaps, 50);
    r.itlP95 = percentile(gaps, 95);
    r.peakKvBytes = stats.counters.peakKvBytes;
    r.kvPoolBytes = stats.memory.kvPoolBytes;
    r.kvBudget = stats.kv.budget;
    r.peakRssBytes = stats.counters.peakHostRssBytes;
    r.workspaceBytes = stats.memory.workspaceBytes;
    r.maxConcurrent = stats.counters.peakRunning;
    r.contextLimit = stats.contextLimit;
    r.preemptions = stats.counters.preemptions;
    r.prefixHitRate = stats.counters.prefixQueryTokens
                          ? double(stats.counters.prefixHitTokens) / double(stats.counters.prefixQueryTokens)
                          : 0.0;
    r.outputs = std::move(loop.tokens());
    return r;
}

std::string workloadResultJson(std::string_view name, const WorkloadResult& r) {
    return fmt::format(
        R"({{"name": "{}", "config": "{}", "seconds": {:.4f}, "generated_tokens": {}, "tok_s": {:.3f},
   "ttft_p50_s": {:.6f}, "ttft_p95_s": {:.6f}, "itl_p50_s": {:.6f}, "itl_p95_s": {:.6f},
   "peak_kv_bytes": {}, "kv_pool_bytes": {}, "kv_budget": "{}", "peak_rss_bytes": {}, "workspace_bytes": {},
   "max_concurrent": {}, "context_limit": {}, "preemptions": {}, "prefix_hit_rate": {:.4f}}})",
        name, formatOptimizationConfig(r.config), r.seconds, r.generatedTokens, r.tokensPerSecond, r.ttftP50,
        r.ttftP95, r.itlP50, r.itlP95, r.peakKvBytes, r.kvPoolBytes, r.kvBudget, r.peakRssBytes, r.workspaceBytes,
        r.maxConcurrent, r.contextLimit, r.preemptions, r.prefixHitRate);
}

}  // namespace pagoda::runtime

#include "app/bench/compare_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/bench/bench_models.h"
#include "engine/backend/backend_select.h"
#include "engine/model/model.h"
#include "engine/runtime/engine.h"

namespace pagoda {
namespace {

using runtime::Engine;
using runtime::OptimizationConfig;
using runtime::RequestId;
using Clock = std::chrono::steady_clock;

struct Workload {
    int requests = 16;
    int promptLength = 64;
    int genLength = 32;
    int concurrency = 8;
    double sharedPrefix = 0.5;  // fraction of every prompt that all requests share
};

struct RunResult {
    std::string name;
    OptimizationConfig config;
    double seconds = 0;
    int64_t generatedTokens = 0;
    double tokensPerSecond = 0;
    double ttftP50 = 0, ttftP95 = 0;  // seconds
    double itlP50 = 0, itlP95 = 0;    // seconds between a request's tokens
    uint64_t peakKvBytes = 0;         // most KV blocks held by sequences at once, in bytes
    uint64_t kvPoolBytes = 0;
    uint64_t peakRssBytes = 0;
    uint64_t workspaceBytes = 0;
    int maxConcurrent = 0;
    int contextLimit = 0;
    int64_t preemptions = 0;
    double prefixHitRate = 0;
    std::vector<std::vector<int32_t>> outputs;  // [request] generated ids
};

// Nearest-rank percentile of unsorted values (0 when empty).
double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const size_t rank = size_t(std::ceil(p / 100.0 * double(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

// C clients, each submitting its next request when the previous finishes.
class ClosedLoop final : public runtime::EngineEvents {
public:
    ClosedLoop(const std::vector<std::vector<int32_t>>& prompts, int genLength)
        : m_prompts(prompts), m_genLength(genLength), m_tokens(prompts.size()), m_tokenTimes(prompts.size()) {}

    void start(Engine& engine, int concurrency) {
        m_engine = &engine;
        for (int c = 0; c < concurrency && m_next < m_prompts.size(); ++c) submitNext();
    }

    void onToken(RequestId id, int32_t token) override {
        const size_t i = m_index.at(id);
        m_tokens[i].push_back(token);
        m_tokenTimes[i].push_back(Clock::now());
    }
    void onText(RequestId, std::string_view) override {}
    void onFinished(const runtime::FinishEvent& event) override {
        if (event.reason != runtime::FinishReason::Length && !m_error) {
            m_error = Error{fmt::format("request {} finished early: {} {}", event.id,
                                        runtime::finishReasonName(event.reason), event.message)};
        }
        m_ttft.push_back(event.stats.ttftSeconds);
        if (m_next < m_prompts.size()) submitNext();
    }

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
        runtime::Request request;
        request.promptTokens = m_prompts[m_next];
        request.sampling.temperature = 0;  // greedy: every config must produce the same tokens
        request.sampling.repeatPenalty = 1;
        request.maxNewTokens = m_genLength;
        request.stopAtEndOfGeneration = false;
        auto id = m_engine->submit(std::move(request));
        if (!id) {
            m_error = id.error();
            m_next = m_prompts.size();
            return;
        }
        m_index[*id] = m_next++;
    }

    const std::vector<std::vector<int32_t>>& m_prompts;
    int m_genLength;
    Engine* m_engine = nullptr;
    size_t m_next = 0;
    std::map<RequestId, size_t> m_index;
    std::vector<std::vector<int32_t>> m_tokens;
    std::vector<std::vector<Clock::time_point>> m_tokenTimes;
    std::vector<double> m_ttft;
    std::optional<Error> m_error;
};

Result<RunResult> runWorkload(const Model& model, Ops& ops, const std::string& name,
                              const OptimizationConfig& config, const Workload& workload,
                              const std::vector<std::vector<int32_t>>& prompts) {
    ClosedLoop loop(prompts, workload.genLength);
    PAGODA_ASSIGN_OR_RETURN(auto engine, Engine::create(model, ops, config, &loop));
    const auto start = Clock::now();
    loop.start(*engine, workload.concurrency);
    engine->runUntilIdle();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (loop.error()) return std::unexpected(withContext(name, *loop.error()));

    const runtime::StatsSnapshot stats = engine->snapshot();
    RunResult r;
    r.name = name;
    r.config = config;
    r.seconds = seconds;
    r.generatedTokens = stats.counters.generatedTokens;
    r.tokensPerSecond = double(r.generatedTokens) / seconds;
    r.ttftP50 = percentile(loop.ttft(), 50);
    r.ttftP95 = percentile(loop.ttft(), 95);
    const std::vector<double> gaps = loop.interTokenLatencies();
    r.itlP50 = percentile(gaps, 50);
    r.itlP95 = percentile(gaps, 95);
    r.peakKvBytes = uint64_t(stats.counters.peakBlocksUsed) * stats.kv.bytesPerBlock;
    r.kvPoolBytes = stats.memory.kvPoolBytes;
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

// Prompts of `length` tokens whose first sharedPrefix share is common to all.
std::vector<std::vector<int32_t>> makePrompts(const Workload& w, int vocab, int32_t bos) {
    const int shared = int(w.sharedPrefix * w.promptLength);
    // Skip the control tokens (<unk> <s> </s>) at the start of the vocabulary.
    auto draw = [&](int n, uint64_t seed) {
        std::vector<int32_t> ids = benchTokens(n, vocab - 3, seed);
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

struct Toggle {
    const char* name;
    void (*apply)(OptimizationConfig&);
};

// Each optimization switched on alone over the baseline. Decode graphs
// have no row: they record the flash path only, which the baseline lacks
// (compare `optimized` with `optimized:decode-graphs=off` instead).
const Toggle kToggles[] = {
    {"+continuous batching", [](OptimizationConfig& c) { c.batching = runtime::BatchingMode::Continuous; }},
    {"+paged KV", [](OptimizationConfig& c) { c.kvAllocation = KvAllocation::Paged; }},
    {"+flash attention", [](OptimizationConfig& c) { c.attention = cpu::AttentionAlgorithm::Flash; }},
    {"+grouped KV (GQA)", [](OptimizationConfig& c) { c.groupedKv = true; }},
    {"+prefix cache (paged)",
     [](OptimizationConfig& c) {
         c.kvAllocation = KvAllocation::Paged;
         c.prefixCaching = true;
     }},
};

std::string mib(uint64_t bytes) { return fmt::format("{:.1f}", double(bytes) / double(1 << 20)); }
std::string ms(double seconds) { return fmt::format("{:.1f}", seconds * 1e3); }
std::string ratio(double value, double reference) {
    return reference > 0 ? fmt::format("{:.2f}x", value / reference) : std::string("-");
}

void printTable(const std::string& title, const std::vector<RunResult>& rows) {
    if (rows.empty()) return;
    const RunResult& first = rows.front();
    size_t width = 6;
    for (const RunResult& r : rows) width = std::max(width, r.name.size());
    fmt::print("\n{}\n", title);
    fmt::print("{:<{}} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>5} {:>6} {:>7} {:>6} {:>6}\n", "config",
               width, "tok/s", "ttft50", "ttft95", "itl50", "itl95", "kv peak", "kv pool", "rss peak", "workspace",
               "conc", "ctx", "preempt", "prefix", "same");
    fmt::print("{:<{}} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>5} {:>6} {:>7} {:>6} {:>6}\n", "", width,
               "", "ms", "ms", "ms", "ms", "MiB", "MiB", "MiB", "MiB", "seqs", "tokens", "", "hits", "output");
    for (const RunResult& r : rows) {
        int same = 0;
        for (size_t i = 0; i < r.outputs.size(); ++i) same += r.outputs[i] == first.outputs[i];
        fmt::print("{:<{}} {:>8.1f} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>5} {:>6} {:>7} {:>5.0f}% {:>3}/{}\n",
                   r.name, width, r.tokensPerSecond, ms(r.ttftP50), ms(r.ttftP95), ms(r.itlP50), ms(r.itlP95),
                   mib(r.peakKvBytes), mib(r.kvPoolBytes), mib(r.peakRssBytes), mib(r.workspaceBytes),
                   r.maxConcurrent, r.contextLimit, r.preemptions, 100 * r.prefixHitRate, same, r.outputs.size());
    }
    fmt::print("{:<{}} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}   (ratios vs {})\n", "", width, "tok/s", "ttft50", "ttft95",
               "itl50", "itl95", "kv peak", first.name);
    for (const RunResult& r : rows) {
        fmt::print("{:<{}} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n", r.name, width,
                   ratio(r.tokensPerSecond, first.tokensPerSecond), ratio(r.ttftP50, first.ttftP50),
                   ratio(r.ttftP95, first.ttftP95), ratio(r.itlP50, first.itlP50), ratio(r.itlP95, first.itlP95),
                   ratio(double(r.peakKvBytes), double(first.peakKvBytes)));
    }
}

std::string rowsJson(const std::vector<RunResult>& rows) {
    std::string out = "[";
    for (size_t i = 0; i < rows.size(); ++i) {
        const RunResult& r = rows[i];
        out += fmt::format(
            R"({}
  {{"name": "{}", "config": "{}", "seconds": {:.4f}, "generated_tokens": {}, "tok_s": {:.3f},
   "ttft_p50_s": {:.6f}, "ttft_p95_s": {:.6f}, "itl_p50_s": {:.6f}, "itl_p95_s": {:.6f},
   "peak_kv_bytes": {}, "kv_pool_bytes": {}, "peak_rss_bytes": {}, "workspace_bytes": {},
   "max_concurrent": {}, "context_limit": {}, "preemptions": {}, "prefix_hit_rate": {:.4f}}})",
            i ? "," : "", r.name, runtime::formatOptimizationConfig(r.config), r.seconds, r.generatedTokens,
            r.tokensPerSecond, r.ttftP50, r.ttftP95, r.itlP50, r.itlP95, r.peakKvBytes, r.kvPoolBytes, r.peakRssBytes,
            r.workspaceBytes, r.maxConcurrent, r.contextLimit, r.preemptions, r.prefixHitRate);
    }
    return out + "\n ]";
}

std::vector<std::string> splitList(const std::string& list) {
    std::vector<std::string> items;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) items.push_back(list.substr(start, comma - start));
        start = comma + 1;
    }
    return items;
}

}  // namespace

Result<void> runCompareBench(Args& args) {
    Workload w;
    PAGODA_ASSIGN_OR_RETURN(w.requests, args.integer("requests", 16, 1, 100000));
    PAGODA_ASSIGN_OR_RETURN(w.promptLength, args.integer("prompt-len", 64, 2, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(w.genLength, args.integer("gen-len", 32, 1, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(w.concurrency, args.integer("concurrency", 8, 1, 4096));
    PAGODA_ASSIGN_OR_RETURN(w.sharedPrefix, args.number("shared-prefix", 0.5, 0, 1));
    BackendOptions backendOptions;
    PAGODA_ASSIGN_OR_RETURN(backendOptions.cpu.threads, args.integer("threads", 0, 0, 1024));
    PAGODA_ASSIGN_OR_RETURN(backendOptions.choice, parseBackendChoice(args.value("backend").value_or("auto")));
    PAGODA_ASSIGN_OR_RETURN(const int64_t budgetMib, args.integer("kv-budget-mib", 0, 0, int64_t(1) << 24));
    PAGODA_ASSIGN_OR_RETURN(const int64_t toggles, args.integer("toggles", 1, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const int reps, args.integer("reps", 1, 1, 100));
    const std::vector<std::string> configNames = splitList(args.value("configs").value_or("baseline,optimized"));
    PAGODA_ASSIGN_OR_RETURN(const std::filesystem::path modelPath, benchModelPath(args));
    const std::optional<std::string> jsonPath = args.value("json");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    if (configNames.empty()) return fail("--configs: no config given");

    // Every config keeps its own settings but runs in the same KV budget.
    auto withBudget = [&](OptimizationConfig c) {
        if (budgetMib > 0) c.kvBudgetBytes = uint64_t(budgetMib) << 20;
        c.maxBatch = std::max(c.maxBatch, w.concurrency);
        c.maxBatchTokens = std::max(c.maxBatchTokens, c.maxBatch);
        return c;
    };
    std::vector<std::pair<std::string, OptimizationConfig>> configs;
    for (const std::string& name : configNames) {
        PAGODA_ASSIGN_OR_RETURN(const OptimizationConfig c, runtime::parseOptimizationConfig(name));
        configs.emplace_back(name, withBudget(c));
    }

    PAGODA_ASSIGN_OR_RETURN(auto model, Model::load(modelPath));
    const ModelConfig& mc = model->config();
    if (w.promptLength + w.genLength > mc.contextLength) {
        return fail("prompt {} + generation {} tokens exceed the context of {}", w.promptLength, w.genLength,
                    mc.contextLength);
    }
    PAGODA_ASSIGN_OR_RETURN(SelectedBackend backend, selectBackend(backendOptions));
    PAGODA_RETURN_IF_ERROR(prepareModel(backend, *model));
    Ops& ops = *backend.ops;
    const auto prompts = makePrompts(w, mc.vocabSize, mc.bos);
    fmt::print("model:     {} ({}, {} layers, {} heads / {} KV heads, context {})\n", modelPath.filename().string(),
               model->weightTypeName(), mc.nLayers, mc.nHeads, mc.nKvHeads, mc.contextLength);
    fmt::print("backend:   {} ({})\n", ops.description(), backend.note);
    fmt::print("workload:  {} requests, {} prompt tokens ({:.0f}% shared prefix), {} generated (greedy), "
               "{} clients in a closed loop; the fastest of {} rounds\n",
               w.requests, w.promptLength, 100 * w.sharedPrefix, w.genLength, w.concurrency, reps);
    if (backend.cuda != nullptr) {
        fmt::print("note:      CUDA graphs of decode steps: compare optimized with optimized:decode-graphs=off\n");
    }
    if (mc.nKvHeads == mc.nHeads) {
        fmt::print("note:      {} KV heads for {} query heads: grouped and expanded KV compute the same here\n",
                   mc.nKvHeads, mc.nHeads);
    }

    // Warm-up: page in the weights so the first config is not charged for it.
    Workload warm = w;
    warm.requests = std::min(2, w.requests);
    warm.genLength = std::min(4, w.genLength);
    PAGODA_RETURN_IF_ERROR(runWorkload(*model, ops, "warm-up", withBudget(OptimizationConfig::optimized()), warm,
                                       std::vector(prompts.begin(), prompts.begin() + warm.requests)));

    // The rows, then each distinct config run once per repetition; rounds
    // alternate the configs, and each keeps its fastest round (the machine
    // may be shared).
    std::vector<std::pair<std::string, OptimizationConfig>> singleRows;
    if (toggles) {
        const OptimizationConfig base = withBudget(OptimizationConfig::baseline());
        singleRows.emplace_back("baseline", base);
        for (const Toggle& t : kToggles) {
            OptimizationConfig c = base;
            t.apply(c);
            singleRows.emplace_back(t.name, c);
        }
    }
    std::map<std::string, RunResult> best;  // formatted config -> fastest run
    std::vector<std::pair<std::string, OptimizationConfig>> distinct;
    for (const auto* rows : {&configs, &singleRows}) {
        for (const auto& [name, c] : *rows) {
            if (best.try_emplace(runtime::formatOptimizationConfig(c)).second) distinct.emplace_back(name, c);
        }
    }
    for (int rep = 0; rep < reps; ++rep) {
        for (const auto& [name, c] : distinct) {
            fmt::print(stderr, "round {}/{}: {}...\n", rep + 1, reps, name);
            PAGODA_ASSIGN_OR_RETURN(RunResult r, runWorkload(*model, ops, name, c, w, prompts));
            RunResult& kept = best[runtime::formatOptimizationConfig(c)];
            if (rep == 0 || r.tokensPerSecond > kept.tokensPerSecond) kept = std::move(r);
        }
    }
    auto rowsOf = [&](const std::vector<std::pair<std::string, OptimizationConfig>>& rows) {
        std::vector<RunResult> out;
        for (const auto& [name, c] : rows) {
            out.push_back(best[runtime::formatOptimizationConfig(c)]);
            out.back().name = name;
        }
        return out;
    };
    const std::vector<RunResult> named = rowsOf(configs);
    const std::vector<RunResult> single = rowsOf(singleRows);

    printTable("configs", named);
    printTable("each optimization alone over the baseline", single);
    fmt::print("\ncolumns: tok/s generated tokens per second of wall time; ttft time to first token from submit;\n"
               "itl time between a request's tokens; kv peak most KV blocks held at once (contiguous: reserved);\n"
               "rss peak resident memory of the process; conc most sequences running at once; ctx longest\n"
               "sequence the KV budget admits; prefix hits share of admitted tokens found cached; same output\n"
               "requests whose tokens equal the first row's\n");

    if (jsonPath) {
        std::ofstream out(*jsonPath);
        out << fmt::format(
            R"({{"model": "{}", "backend": "{}", "requests": {}, "prompt_len": {}, "gen_len": {}, "concurrency": {},
 "shared_prefix": {:.3f}, "reps": {},
 "configs": {},
 "toggles": {}}}
)",
            modelPath.filename().string(), ops.description(), w.requests, w.promptLength, w.genLength, w.concurrency,
            w.sharedPrefix, reps, rowsJson(named), rowsJson(single));
        if (!out) return fail("cannot write '{}'", *jsonPath);
    }
    return {};
}

}  // namespace pagoda

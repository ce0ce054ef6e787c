#include "app/bench/compare_bench.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/bench/bench_models.h"
#include "app/common/backend_args.h"
#include "engine/backend/backend_select.h"
#include "engine/backend/cuda_ops.h"
#include "engine/backend/timed_ops.h"
#include "engine/model/model.h"
#include "engine/runtime/workload.h"

namespace pagoda {
namespace {

using runtime::OptimizationConfig;
using runtime::Workload;

struct RunResult : runtime::WorkloadResult {
    std::string name;
};

Result<RunResult> runNamed(const Model& model, Ops& ops, const std::string& name, const OptimizationConfig& config,
                           const Workload& workload, const std::vector<std::vector<int32_t>>& prompts) {
    auto result = runtime::runWorkload(model, ops, config, workload, prompts);
    if (!result) return std::unexpected(withContext(name, result.error()));
    return RunResult{std::move(*result), name};
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
        out += fmt::format("{}\n  {}", i ? "," : "", runtime::workloadResultJson(rows[i].name, rows[i]));
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

// A --backends item: auto, cpu or cuda, with ":N" for CUDA device N and
// "@L" for L GPU layers (--gpu-layers); the CPU threads come from --threads.
Result<BackendOptions> parseBackendItem(const std::string& item, const BackendOptions& common) {
    BackendOptions options = common;
    const auto bad = [&] { return fail("--backends: '{}' is not auto, cpu or cuda, with :N (a device) or @L (GPU "
                                       "layers)", item); };
    const size_t at = item.find('@');
    const std::string choice = item.substr(0, at);
    const size_t colon = choice.find(':');
    PAGODA_ASSIGN_OR_RETURN(options.choice, parseBackendChoice(choice.substr(0, colon)));
    if (options.choice == BackendChoice::Cpu && (colon != std::string::npos || at != std::string::npos)) return bad();
    if (colon != std::string::npos) {
        int device = -1;
        const std::string index = choice.substr(colon + 1);
        const auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), device);
        if (ec != std::errc() || end != index.data() + index.size() || device < 0) return bad();
        options.cudaDevice = device;
    }
    if (at != std::string::npos) {
        auto layers = parseGpuLayers(item.substr(at + 1));
        if (!layers) return bad();
        options.gpuLayers = *layers;
    }
    return options;
}

// A backend with the model's weights on it.
struct BenchBackend {
    BackendOptions options;
    SelectedBackend selected;
};

// A row of the tables: a config on one of the backends.
struct Row {
    std::string name;
    OptimizationConfig config;
    size_t backend;  // into the backends
};

// Rows that run the same config on the same backend are run once.
std::string rowKey(const Row& row) {
    return fmt::format("{}|{}", row.backend, runtime::formatOptimizationConfig(row.config));
}

}  // namespace

Result<void> runCompareBench(Args& args) {
    Workload w;
    PAGODA_ASSIGN_OR_RETURN(w.requests, args.integer("requests", 16, 1, 100000));
    PAGODA_ASSIGN_OR_RETURN(w.promptLength, args.integer("prompt-len", 64, 2, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(w.genLength, args.integer("gen-len", 32, 1, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(w.concurrency, args.integer("concurrency", 8, 1, 4096));
    PAGODA_ASSIGN_OR_RETURN(w.sharedPrefix, args.number("shared-prefix", 0.5, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const BackendOptions backendOptions, parseBackendOptions(args));
    PAGODA_ASSIGN_OR_RETURN(const int64_t budgetMib, args.integer("kv-budget-mib", 0, 0, int64_t(1) << 24));
    PAGODA_ASSIGN_OR_RETURN(const int64_t toggles, args.integer("toggles", 1, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const int reps, args.integer("reps", 1, 1, 100));
    PAGODA_ASSIGN_OR_RETURN(const int64_t opTimes, args.integer("op-times", 0, 0, 1));
    const std::vector<std::string> configNames = splitList(args.value("configs").value_or("baseline,optimized"));
    const std::vector<std::string> backendItems = splitList(args.value("backends").value_or(""));
    PAGODA_ASSIGN_OR_RETURN(const std::filesystem::path modelPath, benchModelPath(args));
    const std::optional<std::string> jsonPath = args.value("json");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());
    if (configNames.empty()) return fail("--configs: no config given");
    if (!backendItems.empty() && backendItems.size() != configNames.size()) {
        return fail("--backends: {} backends for {} configs (one each)", backendItems.size(), configNames.size());
    }

    // Every config keeps its own settings but runs in the same KV budget.
    auto withBudget = [&](OptimizationConfig c) {
        if (budgetMib > 0) c.kvBudgetBytes = uint64_t(budgetMib) << 20;
        return runtime::fitToWorkload(c, w);
    };
    // The backends, one for every distinct choice; each config row names
    // the one it runs on (the toggle rows run on the first config's).
    std::vector<BenchBackend> backends;
    std::vector<size_t> configBackend;
    std::vector<OptimizationConfig> parsed;
    for (size_t i = 0; i < configNames.size(); ++i) {
        PAGODA_ASSIGN_OR_RETURN(const OptimizationConfig c, runtime::parseOptimizationConfig(configNames[i]));
        parsed.push_back(withBudget(c));
        BackendOptions options = backendOptions;
        if (!backendItems.empty()) {
            PAGODA_ASSIGN_OR_RETURN(options, parseBackendItem(backendItems[i], backendOptions));
        }
        // Automatic GPU layers leave room for the first config on the backend.
        options.room = runtime::gpuRoomFor(parsed.back());
        const auto same = std::ranges::find_if(
            backends, [&](const BenchBackend& b) { return sameBackendChoice(b.options, options); });
        configBackend.push_back(size_t(same - backends.begin()));
        if (same == backends.end()) backends.push_back({options, {}});
    }
    std::vector<Row> configs;
    for (size_t i = 0; i < configNames.size(); ++i) {
        const std::string name = backends.size() > 1 ? configNames[i] + " @" + backendItems[i] : configNames[i];
        configs.push_back({name, parsed[i], configBackend[i]});
    }

    PAGODA_ASSIGN_OR_RETURN(auto model, Model::load(modelPath));
    const ModelConfig& mc = model->config();
    PAGODA_RETURN_IF_ERROR(runtime::checkWorkload(w, mc));
    fmt::print("model:     {} ({}, {} layers, {} heads / {} KV heads, context {})\n", modelPath.filename().string(),
               model->weightTypeName(), mc.nLayers, mc.nHeads, mc.nKvHeads, mc.contextLength);
    bool anyCuda = false;
    // The first GPU backend's weights: another backend on that device
    // (--backends cuda:0,auto:0) runs on them rather than on a copy.
    std::shared_ptr<const SharedCudaWeights> uploaded;
    for (BenchBackend& b : backends) {
        PAGODA_ASSIGN_OR_RETURN(b.selected, selectBackend(b.options));
        PAGODA_RETURN_IF_ERROR(prepareModel(b.selected, *model, {}, uploaded));
        copyWeightsForTheCpu(b.selected, *model);
        if (uploaded == nullptr && b.selected.cuda != nullptr) uploaded = b.selected.cuda->sharedWeights();
        fmt::print("backend:   {} ({})\n", b.selected.ops->description(), b.selected.note);
        anyCuda = anyCuda || b.selected.cuda != nullptr;
    }
    const auto prompts = runtime::makeWorkloadPrompts(w, mc.vocabSize, mc.bos);
    fmt::print("workload:  {} requests, {} prompt tokens ({:.0f}% shared prefix), {} generated (greedy), "
               "{} clients in a closed loop; the fastest of {} rounds\n",
               w.requests, w.promptLength, 100 * w.sharedPrefix, w.genLength, w.concurrency, reps);
    if (anyCuda) {
        fmt::print("note:      CUDA graphs of decode steps: compare optimized with optimized:decode-graphs=off\n");
    }
    if (mc.nKvHeads == mc.nHeads) {
        fmt::print("note:      {} KV heads for {} query heads: grouped and expanded KV compute the same here\n",
                   mc.nKvHeads, mc.nHeads);
    }

    // Warm-up: page in the weights (fill the device's caches) so that the
    // first config on each backend is not charged for it; under that config,
    // so that a KV budget it sets holds for the warm-up too.
    for (size_t i = 0; i < backends.size(); ++i) {
        const auto first = std::ranges::find(configs, i, &Row::backend);
        PAGODA_RETURN_IF_ERROR(runNamed(*model, *backends[i].selected.ops, "warm-up", first->config,
                                        runtime::warmUpWorkload(w), prompts));
    }

    // The rows, then each distinct config run once per repetition; rounds
    // alternate the configs, and each keeps its fastest round (the machine
    // may be shared).
    std::vector<Row> singleRows;
    if (toggles) {
        const OptimizationConfig base = withBudget(OptimizationConfig::baseline());
        singleRows.push_back({"baseline", base, configBackend[0]});
        for (const Toggle& t : kToggles) {
            OptimizationConfig c = base;
            t.apply(c);
            singleRows.push_back({t.name, c, configBackend[0]});
        }
        // Only a model with local and global layers (Gemma) has local-layer
        // pools; for any other the row would repeat "+paged KV".
        OptimizationConfig local = base;
        local.kvAllocation = KvAllocation::Paged;
        local.localKvPools = true;
        if (runtime::localKvPoolsFor(local, mc)) {
            singleRows.push_back({"+local-layer KV pools (paged)", local, configBackend[0]});
        }
        // Only quantized weights have int8 products.
        if (const std::string type = model->weightTypeName(); type != "f32" && type != "f16" && type != "bf16") {
            OptimizationConfig int8 = base;
            int8.int8Matmul = Int8Matmul::Cpu;
            singleRows.push_back({"+int8 matmul (CPU)", int8, configBackend[0]});
        }
    }
    std::map<std::string, RunResult> best;  // rowKey -> fastest run
    std::vector<Row> distinct;
    for (const auto* rows : {&configs, &singleRows}) {
        for (const Row& row : *rows) {
            if (best.try_emplace(rowKey(row)).second) distinct.push_back(row);
        }
    }
    for (int rep = 0; rep < reps; ++rep) {
        for (const Row& row : distinct) {
            fmt::print(stderr, "round {}/{}: {}...\n", rep + 1, reps, row.name);
            PAGODA_ASSIGN_OR_RETURN(RunResult r, runNamed(*model, *backends[row.backend].selected.ops, row.name,
                                                         row.config, w, prompts));
            RunResult& kept = best[rowKey(row)];
            if (rep == 0 || r.tokensPerSecond > kept.tokensPerSecond) kept = std::move(r);
        }
    }
    auto rowsOf = [&](const std::vector<Row>& rows) {
        std::vector<RunResult> out;
        for (const Row& row : rows) {
            out.push_back(best[rowKey(row)]);
            out.back().name = row.name;
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

    // Why one config beats another: each runs once more through TimedOps,
    // outside the rounds above (timing every call alone slows the run).
    // "op_times" in the JSON: [{"config": NAME, "ops": [per generated token]}, ...].
    std::string opTimesJson;
    if (opTimes != 0) {
        const int tokens = w.requests * w.genLength;
        for (const Row& row : configs) {
            TimedOps timed(*backends[row.backend].selected.ops);
            PAGODA_RETURN_IF_ERROR(runNamed(*model, timed, row.name, row.config, w, prompts));
            fmt::print("\nop times of {}, each call timed alone, per generated token ({} prompts included)\n{}",
                       row.name, w.requests, timed.table(tokens, "token"));
            opTimesJson += fmt::format(R"({}{{"config": "{}", "ops": {}}})", opTimesJson.empty() ? "" : ",\n  ",
                                       row.name, TimedOps::json(timed.times(), tokens, "token"));
        }
        opTimesJson = fmt::format(",\n \"op_times\": [\n  {}\n ]", opTimesJson);
    }

    if (jsonPath) {
        // "backend": the first config's (and the toggle rows'); "backends":
        // every one, in the order --backends first names them.
        std::string descriptions;
        for (const BenchBackend& b : backends) {
            descriptions += fmt::format("{}\"{}\"", descriptions.empty() ? "" : ", ", b.selected.ops->description());
        }
        std::ofstream out(*jsonPath);
        out << fmt::format(
            R"({{"model": "{}", "backend": "{}", "backends": [{}], "requests": {}, "prompt_len": {}, "gen_len": {},
 "concurrency": {}, "shared_prefix": {:.3f}, "reps": {},
 "configs": {},
 "toggles": {}{}}}
)",
            modelPath.filename().string(), backends[configBackend[0]].selected.ops->description(), descriptions,
            w.requests, w.promptLength, w.genLength, w.concurrency, w.sharedPrefix, reps, rowsJson(named),
            rowsJson(single), opTimesJson);
        if (!out) return fail("cannot write '{}'", *jsonPath);
    }
    return {};
}

}  // namespace pagoda

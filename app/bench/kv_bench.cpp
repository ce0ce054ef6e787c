#include "app/bench/kv_bench.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/cache/block_manager.h"
#include "engine/cache/kv_budget.h"
#include "engine/model/synthetic.h"

namespace pagoda {
namespace {

constexpr int32_t kVocab = 32000;

// Lognormal lengths, given by their median (e^mu) and sigma.
struct LengthDistribution {
    double median = 0;
    double sigma = 0;

    std::string describe() const { return fmt::format("lognormal(median {:g}, sigma {:g})", median, sigma); }
    int draw(std::mt19937_64& rng, int lo, int hi) const {
        std::lognormal_distribution<double> d(std::log(median), sigma);
        return std::clamp(int(std::lround(d(rng))), lo, hi);
    }
};

struct BenchOptions {
    std::string preset;
    KvLayout dims;  // numBlocks unset: it follows from the budget and the block size
    uint64_t budgetBytes = 0;
    std::string budgetSource;
    int context = 0;
    uint64_t seed = 0;
    int sequences = 0;
    LengthDistribution prompt, output;
    int conversations = 0;
    int regenerations = 0;
    LengthDistribution history, turn;
};

struct Request {
    std::vector<int32_t> prompt;
    int output = 0;  // tokens to generate
};

struct Workload {
    std::vector<Request> requests;
    int64_t idealHitTokens = 0;  // chat: what an unbounded cache without preemption would hit
};

std::vector<int32_t> randomTokens(int n, std::mt19937_64& rng) {
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int32_t& t : tokens) t = int32_t(rng() % kVocab);
    return tokens;
}

Workload capacityWorkload(const BenchOptions& o) {
    std::mt19937_64 rng(o.seed);
    Workload w;
    for (int i = 0; i < o.sequences; ++i) {
        const int promptTokens = o.prompt.draw(rng, 1, o.context - 1);
        const int outputTokens = o.output.draw(rng, 1, o.context - promptTokens);
        w.requests.push_back({randomTokens(promptTokens, rng), outputTokens});
    }
    return w;
}

// Conversations with a shared history; each request resends the history
// with a new last turn (a regenerate or an edited question). Conversations
// start at random times and their requests follow at exponential gaps, so
// requests of different conversations interleave.
Workload chatWorkload(const BenchOptions& o, int blockSize) {
    std::mt19937_64 rng(o.seed + 1);
    std::uniform_real_distribution<double> start(0, double(o.conversations));
    std::exponential_distribution<double> gap(0.25);
    struct Arrival {
        double time;
        Request request;
        int64_t idealHit;
    };
    std::vector<Arrival> arrivals;
    for (int c = 0; c < o.conversations; ++c) {
        const std::vector<int32_t> history = randomTokens(o.history.draw(rng, 1, o.context / 2), rng);
        double time = start(rng);
        for (int k = 0; k < o.regenerations; ++k) {
            std::vector<int32_t> prompt = history;
            const std::vector<int32_t> turn = randomTokens(o.turn.draw(rng, 1, o.context / 4), rng);
            prompt.insert(prompt.end(), turn.begin(), turn.end());
            const int outputTokens = o.output.draw(rng, 1, o.context - int(prompt.size()));
            const int64_t idealHit = k == 0 ? 0 : int64_t(history.size()) / blockSize * blockSize;
            arrivals.push_back({time, {std::move(prompt), outputTokens}, idealHit});
            time += gap(rng);
        }
    }
    std::stable_sort(arrivals.begin(), arrivals.end(), [](const auto& a, const auto& b) { return a.time < b.time; });
    Workload w;
    for (Arrival& a : arrivals) {
        w.requests.push_back(std::move(a.request));
        w.idealHitTokens += a.idealHit;
    }
    return w;
}

struct SimResult {
    std::string label;
    BlockManagerConfig config;
    int64_t steps = 0;
    double meanRunning = 0;      // over the steps where requests were waiting: the pool was the limit
    int peakRunning = 0;
    double slotUtilization = 0;  // tokens stored / slots in allocated blocks, over those steps
    double bytesPerToken = 0;    // KV bytes of allocated blocks / tokens stored, over those steps
    int64_t preemptions = 0;
    int64_t promptTokens = 0;    // admitted, recomputes after preemption included
    int64_t prefillTokens = 0;   // of those, computed (not prefix hits)
    BlockStats stats;            // at the end
};

// Continuous batching over the block manager: each step every running
// sequence appends one generated token (on no space, the newest running
// sequence is preempted and requeued first, to be recomputed later), then
// waiting requests are admitted first come, first served while canAdmit.
Result<SimResult> simulate(std::string label, const BlockManagerConfig& config, uint64_t bytesPerBlock,
                           const Workload& workload, uint64_t seed) {
    PAGODA_ASSIGN_OR_RETURN(BlockManager m, BlockManager::create(config));
    const std::vector<Request>& requests = workload.requests;
    std::mt19937_64 rng(seed);
    std::vector<std::vector<int32_t>> generated(requests.size());
    std::deque<size_t> waiting(requests.size());
    std::iota(waiting.begin(), waiting.end(), size_t(0));
    struct Running {
        SeqId seq;
        size_t request;
    };
    std::vector<Running> running;
    std::vector<int32_t> slots, prompt;
    SimResult r{std::move(label), config};
    int64_t saturatedSteps = 0, runningSum = 0, storedSum = 0, slotsSum = 0;
    double usedBytesSum = 0;

    auto preemptNewest = [&]() -> Result<void> {
        const Running victim = running.back();
        running.pop_back();
        PAGODA_RETURN_IF_ERROR(m.preempt(victim.seq));
        waiting.push_front(victim.request);
        ++r.preemptions;
        return {};
    };

    while (!waiting.empty() || !running.empty()) {
        ++r.steps;
        for (size_t i = 0; i < running.size();) {
            const Running current = running[i];
            if (int(generated[current.request].size()) == requests[current.request].output) {
                PAGODA_RETURN_IF_ERROR(m.release(current.seq));
                running.erase(running.begin() + ptrdiff_t(i));
                continue;
            }
            const int32_t token = int32_t(rng() % kVocab);
            slots.clear();
            PAGODA_ASSIGN_OR_RETURN(Alloc alloc, m.appendSlots(current.seq, std::span(&token, 1), slots));
            bool preemptedItself = false;
            while (alloc == Alloc::NoSpace && !preemptedItself) {
                preemptedItself = running.back().seq == current.seq;
                PAGODA_RETURN_IF_ERROR(preemptNewest());
                if (!preemptedItself) {
                    PAGODA_ASSIGN_OR_RETURN(alloc, m.appendSlots(current.seq, std::span(&token, 1), slots));
                }
            }
            if (preemptedItself) break;  // it was the newest: the last one this step
            generated[current.request].push_back(token);
            ++i;
        }
        while (!waiting.empty()) {
            const size_t q = waiting.front();
            prompt = requests[q].prompt;
            prompt.insert(prompt.end(), generated[q].begin(), generated[q].end());
            PAGODA_ASSIGN_OR_RETURN(const bool fits, m.canAdmit(prompt));
            if (!fits) break;
            PAGODA_ASSIGN_OR_RETURN(const Admission admission, m.admit(prompt));
            slots.clear();
            const auto rest = std::span(prompt).subspan(size_t(admission.hitTokens));
            PAGODA_ASSIGN_OR_RETURN(const Alloc alloc, m.appendSlots(admission.seq, rest, slots));
            if (admission.status != Alloc::Ok || alloc != Alloc::Ok) {
                return fail("{}: canAdmit promised room for request {} ({} tokens) but there was none", r.label, q,
                            prompt.size());
            }
            r.promptTokens += int64_t(prompt.size());
            r.prefillTokens += int64_t(prompt.size()) - admission.hitTokens;
            running.push_back({admission.seq, q});
            waiting.pop_front();
        }
        if (running.empty() && !waiting.empty()) {
            return fail("{}: request {} ({} tokens) cannot be admitted into an empty pool of {} blocks", r.label,
                        waiting.front(), requests[waiting.front()].prompt.size(), config.numBlocks);
        }
        r.peakRunning = std::max(r.peakRunning, int(running.size()));
        if (!waiting.empty()) {
            const BlockStats s = m.stats();
            ++saturatedSteps;
            runningSum += int64_t(running.size());
            storedSum += s.tokensStored;
            slotsSum += s.slotsAllocated;
            usedBytesSum += double(s.blocksUsed) * double(bytesPerBlock);
        }
    }
    if (saturatedSteps > 0) {
        r.meanRunning = double(runningSum) / double(saturatedSteps);
        r.slotUtilization = double(storedSum) / double(slotsSum);
        r.bytesPerToken = usedBytesSum / double(storedSum);
    }
    r.stats = m.stats();
    return r;
}

BlockManagerConfig managerConfig(const BenchOptions& o, int blockSize, KvAllocation allocation, bool prefixCaching,
                                 EvictionPolicyKind eviction) {
    KvLayout dims = o.dims;
    dims.blockSize = blockSize;
    BlockManagerConfig c;
    c.numBlocks = int(o.budgetBytes / dims.bytesPerBlock());
    c.blockSize = blockSize;
    c.maxContext = o.context;
    c.allocation = allocation;
    c.prefixCaching = prefixCaching;
    c.eviction = eviction;
    c.hashSeed = o.seed | 1;
    return c;
}

uint64_t bytesPerBlock(const BenchOptions& o, int blockSize) {
    KvLayout dims = o.dims;
    dims.blockSize = blockSize;
    return dims.bytesPerBlock();
}

std::string humanBytes(double bytes) {
    if (bytes >= 1 << 30) return fmt::format("{:.2f} GiB", bytes / double(1 << 30));
    if (bytes >= 1 << 20) return fmt::format("{:.2f} MiB", bytes / double(1 << 20));
    return fmt::format("{:.1f} KiB", bytes / 1024.0);
}

Result<BenchOptions> readOptions(Args& args) {
    BenchOptions o;
    o.preset = args.value("preset").value_or("8b-gqa");
    const auto spec = syntheticPreset(o.preset);
    if (!spec) return fail("--preset: unknown '{}'", o.preset);
    o.dims.nLayers = spec->nLayers;
    o.dims.nKvHeads = spec->nKvHeads;
    o.dims.headDim = spec->headSize();
    const std::string kvType = args.value("kv-dtype").value_or("f16");
    const std::optional<DType> type = dtypeFromName(kvType);
    if (!type) return fail("--kv-dtype: '{}' (f16, f32 or q8_0)", kvType);
    o.dims.type = *type;
    PAGODA_RETURN_IF_ERROR(checkKvType(o.dims.type, o.dims.headDim));
    PAGODA_ASSIGN_OR_RETURN(o.dims.blockSize, args.integer("block-size", 16, 8, 32));
    PAGODA_ASSIGN_OR_RETURN(const int64_t budgetMib, args.integer("budget-mib", 0, 0, int64_t(1) << 30));
    PAGODA_ASSIGN_OR_RETURN(const double fraction, args.number("budget-fraction", 0, 0, 1));
    if (budgetMib > 0 && fraction > 0) return fail("--budget-mib and --budget-fraction: give one");
    if (fraction > 0) {
        PAGODA_ASSIGN_OR_RETURN(o.budgetBytes, resolveKvBudget({0, fraction}));
        o.budgetSource = fmt::format("{:g} of MemAvailable", fraction);
    } else {
        o.budgetBytes = uint64_t(budgetMib > 0 ? budgetMib : 8192) << 20;
        o.budgetSource = "fixed";
    }
    PAGODA_ASSIGN_OR_RETURN(o.context, args.integer("context", 4096, 64, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(const int64_t seed, args.integer("seed", 1, 0, std::numeric_limits<int64_t>::max()));
    o.seed = uint64_t(seed);
    PAGODA_ASSIGN_OR_RETURN(o.sequences, args.integer("sequences", 1000, 1, 1000000));
    PAGODA_ASSIGN_OR_RETURN(o.prompt.median, args.number("prompt-median", 300, 1, 1e6));
    PAGODA_ASSIGN_OR_RETURN(o.prompt.sigma, args.number("prompt-sigma", 1.0, 0, 4));
    PAGODA_ASSIGN_OR_RETURN(o.output.median, args.number("output-median", 200, 1, 1e6));
    PAGODA_ASSIGN_OR_RETURN(o.output.sigma, args.number("output-sigma", 0.6, 0, 4));
    PAGODA_ASSIGN_OR_RETURN(o.conversations, args.integer("conversations", 128, 1, 100000));
    PAGODA_ASSIGN_OR_RETURN(o.regenerations, args.integer("regenerations", 4, 1, 1000));
    PAGODA_ASSIGN_OR_RETURN(o.history.median, args.number("history-median", 1000, 1, 1e6));
    PAGODA_ASSIGN_OR_RETURN(o.history.sigma, args.number("history-sigma", 0.5, 0, 4));
    o.turn = {40, 0.5};
    // Every run must be able to hold one sequence of the whole context
    // (what contiguous mode reserves, and the longest request) above the
    // admission watermark.
    for (int blockSize : {8, 16, 32}) {
        KvLayout dims = o.dims;
        dims.blockSize = blockSize;
        PAGODA_ASSIGN_OR_RETURN(const KvLayout layout, kvLayoutForBudget(dims, o.budgetBytes));
        const int perSequence = (o.context + blockSize - 1) / blockSize;
        const int watermark = int(BlockManagerConfig{}.watermark * layout.numBlocks);
        if (layout.numBlocks - watermark < perSequence) {
            return fail("a budget of {} bytes is {} blocks of {} tokens: one sequence of the full context ({} tokens) "
                        "needs {} above the watermark of {}; raise the budget or lower --context",
                        o.budgetBytes, layout.numBlocks, blockSize, o.context, perSequence, watermark);
        }
    }
    return o;
}

std::string capacityJson(const SimResult& r) {
    return fmt::format(
        R"({{"mode": "{}", "block_size": {}, "num_blocks": {}, "mean_running": {:.2f}, "peak_running": {}, )"
        R"("slot_utilization": {:.4f}, "bytes_per_token": {:.1f}, "preemptions": {}, "steps": {}}})",
        r.config.allocation == KvAllocation::Paged ? "paged" : "contiguous", r.config.blockSize, r.config.numBlocks,
        r.meanRunning, r.peakRunning, r.slotUtilization, r.bytesPerToken, r.preemptions, r.steps);
}

std::string chatJson(const SimResult& r) {
    return fmt::format(
        R"({{"prefix_cache": "{}", "hit_rate": {:.4f}, "prompt_tokens": {}, "prefill_tokens": {}, )"
        R"("evictions_lru": {}, "evictions_fifo": {}, "evictions_preemption": {}, "preemptions": {}}})",
        r.label, r.stats.prefixHitRate(), r.promptTokens, r.prefillTokens, r.stats.evictionsBy(EvictionCause::Lru),
        r.stats.evictionsBy(EvictionCause::Fifo), r.stats.evictionsBy(EvictionCause::Preemption), r.preemptions);
}

}  // namespace

Result<void> runKvBench(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(const BenchOptions o, readOptions(args));
    const std::optional<std::string> jsonPath = args.value("json");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());

    const int bs = o.dims.blockSize;
    const uint64_t bytesPerToken = bytesPerBlock(o, bs) / uint64_t(bs);
    fmt::print("pagoda-bench kv: a simulation of the KV block manager's bookkeeping (no model, no compute);\n"
               "it measures capacity under one memory budget, not time.\n\n");
    fmt::print("model dims   {}: {} layers x {} KV heads x head dim {}, {} KV: {} per token\n", o.preset,
               o.dims.nLayers, o.dims.nKvHeads, o.dims.headDim, dtypeName(o.dims.type),
               humanBytes(double(bytesPerToken)));
    fmt::print("budget       {} ({}), context {} tokens\n", humanBytes(double(o.budgetBytes)), o.budgetSource,
               o.context);

    // Workload A: capacity, paged (block sizes 8, 16, 32) against contiguous.
    const Workload capacity = capacityWorkload(o);
    int64_t promptSum = 0, outputSum = 0;
    for (const Request& q : capacity.requests) {
        promptSum += int64_t(q.prompt.size());
        outputSum += q.output;
    }
    const double n = double(capacity.requests.size());
    fmt::print("\nworkload A   {} sequences, prompt {}, output {}, prompt + output <= {}, seed {}\n", o.sequences,
               o.prompt.describe(), o.output.describe(), o.context, o.seed);
    fmt::print("             mean prompt {:.0f}, mean output {:.0f} tokens; all queued at once, admitted FCFS\n\n",
               double(promptSum) / n, double(outputSum) / n);
    std::vector<SimResult> capacityRuns;
    for (int blockSize : {8, 16, 32}) {
        const BlockManagerConfig config =
            managerConfig(o, blockSize, KvAllocation::Paged, true, EvictionPolicyKind::Lru);
        PAGODA_ASSIGN_OR_RETURN(SimResult r,
                                simulate("paged", config, bytesPerBlock(o, blockSize), capacity, o.seed));
        capacityRuns.push_back(std::move(r));
    }
    PAGODA_ASSIGN_OR_RETURN(
        SimResult contiguous,
        simulate("contiguous", managerConfig(o, bs, KvAllocation::Contiguous, false, EvictionPolicyKind::Lru),
                 bytesPerBlock(o, bs), capacity, o.seed));
    capacityRuns.push_back(std::move(contiguous));

    fmt::print("{:<11} {:>5} {:>7} {:>14} {:>14} {:>10} {:>13} {:>12} {:>7}\n", "allocation", "block", "blocks",
               "running (mean)", "running (peak)", "slot util", "bytes/token", "preemptions", "steps");
    for (const SimResult& r : capacityRuns) {
        fmt::print("{:<11} {:>5} {:>7} {:>14.1f} {:>14} {:>9.1f}% {:>13} {:>12} {:>7}\n", r.label, r.config.blockSize,
                   r.config.numBlocks, r.meanRunning, r.peakRunning, 100 * r.slotUtilization,
                   humanBytes(r.bytesPerToken), r.preemptions, r.steps);
    }
    const SimResult& pagedDefault = *std::find_if(capacityRuns.begin(), capacityRuns.end(), [&](const SimResult& r) {
        return r.config.allocation == KvAllocation::Paged && r.config.blockSize == bs;
    });
    const double ratio = pagedDefault.meanRunning / capacityRuns.back().meanRunning;
    fmt::print("(running: sequences resident at once while requests were waiting; slot util and bytes/token\n"
               " over the same steps)\n");
    fmt::print("paged / contiguous at block size {}: {:.1f}x the concurrent sequences\n", bs, ratio);

    // Workload B: chat regenerate, prefix cache off / LRU / FIFO.
    const Workload chat = chatWorkload(o, bs);
    int64_t chatPrompt = 0;
    for (const Request& q : chat.requests) chatPrompt += int64_t(q.prompt.size());
    fmt::print("\nworkload B   chat regenerate: {} conversations x {} requests resending the history {}\n"
               "             with a new last turn {}, output {}, seed {}\n\n",
               o.conversations, o.regenerations, o.history.describe(), o.turn.describe(), o.output.describe(), o.seed);
    std::vector<SimResult> chatRuns;
    struct Variant {
        const char* label;
        bool prefix;
        EvictionPolicyKind eviction;
    };
    for (const Variant& v : {Variant{"off", false, EvictionPolicyKind::Lru},
                             Variant{"lru", true, EvictionPolicyKind::Lru},
                             Variant{"fifo", true, EvictionPolicyKind::Fifo}}) {
        const BlockManagerConfig config = managerConfig(o, bs, KvAllocation::Paged, v.prefix, v.eviction);
        PAGODA_ASSIGN_OR_RETURN(SimResult r, simulate(v.label, config, bytesPerBlock(o, bs), chat, o.seed));
        chatRuns.push_back(std::move(r));
    }
    fmt::print("{:<12} {:>9} {:>14} {:>17} {:>17} {:>12}\n", "prefix cache", "hit rate", "prompt tokens",
               "prefill computed", "evictions (pol.)", "preemptions");
    for (const SimResult& r : chatRuns) {
        fmt::print("{:<12} {:>8.1f}% {:>14} {:>17} {:>17} {:>12}\n", r.label, 100 * r.stats.prefixHitRate(),
                   r.promptTokens, r.prefillTokens,
                   r.stats.evictionsBy(EvictionCause::Lru) + r.stats.evictionsBy(EvictionCause::Fifo), r.preemptions);
    }
    const double idealRate = double(chat.idealHitTokens) / double(chatPrompt);
    fmt::print("(hit rate: prefix hit tokens / prompt tokens admitted, recomputes included; an unbounded cache\n"
               " without preemption would hit {:.1f}% of the {} prompt tokens)\n",
               100 * idealRate, chatPrompt);

    if (jsonPath) {
        std::string capacityRows, chatRows;
        for (const SimResult& r : capacityRuns) {
            capacityRows += (capacityRows.empty() ? "" : ",\n    ") + capacityJson(r);
        }
        for (const SimResult& r : chatRuns) chatRows += (chatRows.empty() ? "" : ",\n    ") + chatJson(r);
        std::ofstream out(*jsonPath);
        out << fmt::format(
            R"json({{"bench": "kv", "simulation": "block manager bookkeeping only (no model, no compute)",
 "preset": "{}", "n_layers": {}, "n_kv_heads": {}, "head_dim": {}, "kv_dtype": "{}", "bytes_per_token": {},
 "budget_bytes": {}, "context": {}, "seed": {},
 "capacity_workload": {{"sequences": {}, "prompt_median": {:g}, "prompt_sigma": {:g}, "output_median": {:g},
   "output_sigma": {:g}, "mean_prompt": {:.1f}, "mean_output": {:.1f}}},
 "capacity": [
    {}],
 "paged_over_contiguous_concurrency": {:.3f},
 "chat_workload": {{"conversations": {}, "regenerations": {}, "history_median": {:g}, "history_sigma": {:g},
   "prompt_tokens": {}, "ideal_hit_rate": {:.4f}}},
 "chat": [
    {}]}}
)json",
            o.preset, o.dims.nLayers, o.dims.nKvHeads, o.dims.headDim, dtypeName(o.dims.type), bytesPerToken,
            o.budgetBytes, o.context, o.seed, o.sequences, o.prompt.median, o.prompt.sigma, o.output.median,
            o.output.sigma, double(promptSum) / n, double(outputSum) / n, capacityRows, ratio, o.conversations,
            o.regenerations, o.history.median, o.history.sigma, chatPrompt, idealRate, chatRows);
        if (!out) return fail("cannot write '{}'", *jsonPath);
    }
    return {};
}

}  // namespace pagoda

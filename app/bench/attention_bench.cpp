// `pagoda-bench attention`: times cpu::attention on synthetic K/V in a paged
// pool (shuffled block tables, as after the cache has churned) or in
// contiguous per-sequence arrays.
//
// Prefill: one sequence of C tokens from position 0 (causal), useful FLOPs
// 4 · nHeads · headDim · C(C+1)/2 for every variant, so GFLOP/s compare
// directly. Decode: `batch` sequences of context C, one query each. Decode
// cycles through enough copies of the K/V pool ("layers", >= 512 MiB in
// all, at most 64) that K/V come from DRAM as in a real decode step; KV
// GB/s = unique K/V bytes of a call / its time. Each (context, head layout)
// builds its inputs once and runs every variant on them.

#include "app/bench/attention_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/kv/kv_cache.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/bandwidth.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"

namespace pagoda {
namespace {

using Clock = std::chrono::steady_clock;
using cpu::AttentionAlgorithm;

constexpr size_t kDecodeBytesTarget = size_t(512) << 20;
constexpr int kMaxLayers = 64;

struct Variant {
    std::string name;
    AttentionAlgorithm algorithm = AttentionAlgorithm::Flash;
    bool expandKv = false;
};

struct Options {
    int threads = 0;
    cpu::SimdLevel simd = cpu::SimdLevel::Avx2;
    int nHeads = 32;
    int headDim = 128;
    std::vector<int> kvHeads;
    DType kvType = DType::F16;
    int blockSize = 16;
    bool contiguous = false;
    std::vector<int> prefillContexts;
    std::vector<int> decodeContexts;
    int batch = 1;
    std::vector<Variant> variants;
    int reps = 5;
    double caseSeconds = 2.0;
    int bandwidthMib = 1024;
    uint64_t seed = 0;
};

struct CaseResult {
    std::string mode;  // "prefill" | "decode"
    int context = 0;
    int nKvHeads = 0;
    std::string variant;
    int reps = 0;
    double medianMs = 0, minMs = 0, maxMs = 0;
    double gflops = 0;       // useful FLOPs (the causal triangle; decode 4·heads·headDim·C) / median time
    double kvGbps = 0;       // decode: unique K/V bytes / median time
    double kvFraction = 0;   // decode: kvGbps / the better streaming-bandwidth sample
    size_t workspace = 0;    // attentionWorkspaceSize().total()
    size_t expandedKv = 0;   // of which the repeat_kv copies
    int layers = 1;          // K/V copies cycled through (decode)
    double cpuShare = 0;     // below ~0.9: other processes took CPU time from the case
};

// "a,b,c"; "" is the empty list.
Result<std::vector<int>> parseList(const std::string& name, const std::string& text, int min, int max) {
    std::vector<int> values;
    if (text.empty()) return values;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t end = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, end - start);
        char* stop = nullptr;
        const long v = std::strtol(item.c_str(), &stop, 10);
        if (item.empty() || *stop != '\0' || v < min || v > max) {
            return fail("--{}: '{}' is not a list of integers in [{}, {}]", name, text, min, max);
        }
        values.push_back(int(v));
        start = end + 1;
    }
    return values;
}

Result<std::vector<Variant>> parseVariants(const std::string& text) {
    std::vector<Variant> variants;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t end = std::min(text.find(',', start), text.size());
        const std::string name = text.substr(start, end - start);
        if (name == "flash") {
            variants.push_back({name, AttentionAlgorithm::Flash, false});
        } else if (name == "naive") {
            variants.push_back({name, AttentionAlgorithm::Naive, false});
        } else if (name == "flash-expanded") {
            variants.push_back({name, AttentionAlgorithm::Flash, true});
        } else if (name == "naive-expanded") {
            variants.push_back({name, AttentionAlgorithm::Naive, true});
        } else {
            return fail("--variants: '{}' (flash, naive, flash-expanded, naive-expanded)", name);
        }
        start = end + 1;
    }
    return variants;
}

// Fast deterministic fill: K/V and queries of magnitude ~1, so that the
// softmax is neither flat nor one-hot.
class Filler {
public:
    explicit Filler(uint64_t seed) : m_state(seed | 1) {}
    uint32_t next() {
        m_state ^= m_state << 13;
        m_state ^= m_state >> 7;
        m_state ^= m_state << 17;
        return uint32_t(m_state >> 32);
    }
    // Uniform in [-1, 1).
    float uniform() { return float(int32_t(next())) * (1.0f / 2147483648.0f); }
    // fp16 in +-[0.5, 2): exponent 14 or 15, random mantissa and sign.
    uint16_t half() {
        const uint32_t r = next();
        return uint16_t((r & 0x8000) | (14 + ((r >> 16) & 1)) << 10 | (r & 0x3ff));
    }

private:
    uint64_t m_state;
};

// One layer's K and V for `batch` sequences of `context` positions.
struct KvLayer {
    std::unique_ptr<uint8_t[]> bytes;  // paged: K pool then V pool; contiguous: per sequence K then V
    size_t poolBytes = 0;              // paged: one pool
};

// The inputs of one (mode, context, head layout), shared by its variants.
struct Inputs {
    std::vector<KvLayer> layers;               // copies cycled through by decode
    std::vector<std::vector<int32_t>> tables;  // paged: per sequence
    size_t sequenceBytes = 0;                  // contiguous: one sequence's K (or V)
    size_t uniqueBytes = 0;                    // K and V bytes one call reads
    std::vector<float> q;                      // [nTokens][nHeads][headDim]
    std::vector<float> out;                    // [nTokens][nHeads][headDim]
    std::vector<std::vector<cpu::AttentionSequence>> sequences;  // per layer
};

// `batch` sequences of `nQueries` queries ending at position context - 1.
Inputs makeInputs(const Options& o, int nKvHeads, int batch, int context, int nQueries, int layers, Filler& fill) {
    Inputs in;
    const auto bytesOf = [&](size_t elements) { return rowBytes(o.kvType, elements); };
    const size_t row = size_t(nKvHeads) * o.headDim;  // elements per position
    const int blocksPerSeq = (context + o.blockSize - 1) / o.blockSize;
    in.uniqueBytes = bytesOf(size_t(batch) * context * row) * 2;
    size_t layerBytes = 0;
    if (o.contiguous) {
        in.sequenceBytes = bytesOf(size_t(context) * row);
        layerBytes = 2 * in.sequenceBytes * batch;
    } else {
        std::vector<int32_t> ids(size_t(batch) * blocksPerSeq);
        std::iota(ids.begin(), ids.end(), 0);
        std::shuffle(ids.begin(), ids.end(), std::mt19937_64(o.seed));
        for (int s = 0; s < batch; ++s) {
            in.tables.emplace_back(ids.begin() + size_t(s) * blocksPerSeq, ids.begin() + size_t(s + 1) * blocksPerSeq);
        }
        layerBytes = 2 * bytesOf(ids.size() * o.blockSize * row);
    }
    // Random values in the first copy; the others copy it (different
    // addresses are what matters, and memcpy is much faster than the fill).
    for (int l = 0; l < layers; ++l) {
        KvLayer layer;
        layer.bytes = std::make_unique_for_overwrite<uint8_t[]>(layerBytes);
        layer.poolBytes = layerBytes / 2;
        if (l > 0) {
            std::memcpy(layer.bytes.get(), in.layers.front().bytes.get(), layerBytes);
        } else if (o.kvType == DType::F16) {
            auto* p = reinterpret_cast<uint16_t*>(layer.bytes.get());
            for (size_t i = 0; i < layerBytes / 2; ++i) p[i] = fill.half();
        } else if (o.kvType == DType::Q8_0) {
            std::vector<float> values(size_t(o.headDim));
            const size_t headBytes = bytesOf(size_t(o.headDim));
            for (size_t at = 0; at < layerBytes; at += headBytes) {
                for (float& x : values) x = fill.uniform();
                cpu::quantizeRow(DType::Q8_0, values.data(), layer.bytes.get() + at, o.headDim);
            }
        } else {
            auto* p = reinterpret_cast<float*>(layer.bytes.get());
            for (size_t i = 0; i < layerBytes / 4; ++i) p[i] = fill.uniform();
        }
        in.layers.push_back(std::move(layer));
    }
    in.q.resize(size_t(batch) * nQueries * o.nHeads * o.headDim);
    for (float& x : in.q) x = fill.uniform();
    in.out.resize(in.q.size());
    for (int l = 0; l < layers; ++l) {
        const uint8_t* base = in.layers[size_t(l)].bytes.get();
        std::vector<cpu::AttentionSequence>& seqs = in.sequences.emplace_back();
        for (int s = 0; s < batch; ++s) {
            cpu::AttentionSequence seq{s * nQueries, nQueries, context - nQueries};
            if (o.contiguous) {
                seq.k = base + 2 * size_t(s) * in.sequenceBytes;
                seq.v = base + (2 * size_t(s) + 1) * in.sequenceBytes;
            } else {
                seq.blockTable = in.tables[size_t(s)].data();
            }
            seqs.push_back(seq);
        }
    }
    return in;
}

// The params of a call over layer l of `in`.
cpu::AttentionParams makeParams(const Options& o, Inputs& in, int l, int nKvHeads, const Variant& variant) {
    cpu::AttentionParams p;
    p.q = in.q.data();
    p.out = in.out.data();
    p.nHeads = o.nHeads;
    p.scale = 1.0f / std::sqrt(float(o.headDim));
    p.kv.type = o.kvType;
    p.kv.nKvHeads = nKvHeads;
    p.kv.blockSize = o.blockSize;
    p.kv.headDim = o.headDim;
    if (!o.contiguous) {
        p.kv.k = in.layers[size_t(l)].bytes.get();
        p.kv.v = in.layers[size_t(l)].bytes.get() + in.layers[size_t(l)].poolBytes;
    }
    p.sequences = in.sequences[size_t(l)];
    p.algorithm = variant.algorithm;
    p.expandKv = variant.expandKv;
    return p;
}

struct Timing {
    int reps = 0;
    double medianMs = 0, minMs = 0, maxMs = 0;
    double cpuShare = 0;  // process CPU time / (wall time · threads) over the timed calls
};

double processCpuSeconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Timed calls until `reps` or, after at least one, until `budget` seconds
// are spent. The first call is a warm-up unless it alone takes a quarter of
// the budget (prefill at 8k): then it counts, the workspace having been
// touched before.
template <class F>
Timing timeCalls(F&& call, int reps, double budget, int threads) {
    std::vector<double> ms;
    const auto start = Clock::now();
    bool warmedUp = false;
    double cpuSeconds = 0;
    while (int(ms.size()) < reps) {
        const auto t0 = Clock::now();
        const double cpu0 = processCpuSeconds();
        call();
        const double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (warmedUp || elapsed > budget * 250) {
            ms.push_back(elapsed);
            cpuSeconds += processCpuSeconds() - cpu0;
        }
        warmedUp = true;
        if (!ms.empty() && std::chrono::duration<double>(Clock::now() - start).count() > budget) break;
    }
    const double wallSeconds = std::accumulate(ms.begin(), ms.end(), 0.0) / 1e3;
    std::sort(ms.begin(), ms.end());
    const size_t n = ms.size();
    return {int(n), n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]), ms.front(), ms.back(),
            cpuSeconds / (wallSeconds * threads)};
}

class Bench {
public:
    Bench(const Options& o, cpu::ThreadPool& pool) : m_o(o), m_ctx{&pool, o.simd}, m_fill(o.seed) {}

    // One sequence of `context` tokens from position 0.
    std::vector<CaseResult> prefill(int context, int nKvHeads) {
        Inputs in = makeInputs(m_o, nKvHeads, 1, context, context, 1, m_fill);
        const double flops = 4.0 * m_o.nHeads * m_o.headDim * (double(context) * (context + 1) / 2);
        std::vector<CaseResult> results;
        for (const Variant& variant : variants(nKvHeads)) {
            CaseResult r = run("prefill", context, nKvHeads, variant, in);
            r.gflops = flops / (r.medianMs * 1e6);
            results.push_back(r);
        }
        return results;
    }

    // `batch` sequences of context `context`, one query each.
    std::vector<CaseResult> decode(int context, int nKvHeads) {
        const size_t perLayer = rowBytes(m_o.kvType, size_t(m_o.batch) * context * nKvHeads * m_o.headDim) * 2;
        const int layers = int(std::clamp<size_t>((kDecodeBytesTarget + perLayer - 1) / perLayer, 1, kMaxLayers));
        Inputs in = makeInputs(m_o, nKvHeads, m_o.batch, context, 1, layers, m_fill);
        std::vector<CaseResult> results;
        for (const Variant& variant : variants(nKvHeads)) {
            CaseResult r = run("decode", context, nKvHeads, variant, in);
            r.kvGbps = double(in.uniqueBytes) / (r.medianMs * 1e6);
            r.gflops = 4.0 * m_o.nHeads * m_o.headDim * double(context) * m_o.batch / (r.medianMs * 1e6);
            results.push_back(r);
        }
        return results;
    }

private:
    // Expanding K/V is a no-op for multi-head attention: skip it there.
    std::vector<Variant> variants(int nKvHeads) const {
        std::vector<Variant> v;
        for (const Variant& variant : m_o.variants) {
            if (!variant.expandKv || nKvHeads < m_o.nHeads) v.push_back(variant);
        }
        return v;
    }

    // Times calls over every layer of `in`; times are per layer.
    CaseResult run(const char* mode, int context, int nKvHeads, const Variant& variant, Inputs& in) {
        std::vector<cpu::AttentionParams> params;
        cpu::AttentionWorkspace workspace;
        for (size_t l = 0; l < in.layers.size(); ++l) {
            params.push_back(makeParams(m_o, in, int(l), nKvHeads, variant));
            params.back().workspace = &workspace;
        }
        const cpu::AttentionWorkspaceSize size = cpu::attentionWorkspaceSize(params.front(), m_ctx.pool->size());
        std::memset(workspace.reserve(size.total()), 0, size.total());
        Timing t = timeCalls(
            [&] {
                for (const cpu::AttentionParams& p : params) cpu::attention(m_ctx, p);
            },
            m_o.reps, m_o.caseSeconds, m_ctx.pool->size());
        const double layers = double(in.layers.size());
        CaseResult r;
        r.mode = mode;
        r.context = context;
        r.nKvHeads = nKvHeads;
        r.variant = variant.name;
        r.reps = t.reps;
        r.medianMs = t.medianMs / layers;
        r.minMs = t.minMs / layers;
        r.maxMs = t.maxMs / layers;
        r.cpuShare = t.cpuShare;
        r.workspace = size.total();
        r.expandedKv = size.expandedKv;
        r.layers = int(in.layers.size());
        return r;
    }

    const Options& m_o;
    cpu::CpuContext m_ctx;
    Filler m_fill;
};

std::string bytesText(size_t bytes) {
    if (bytes >= (size_t(1) << 30)) return fmt::format("{:.2f} GiB", double(bytes) / double(1 << 30));
    if (bytes >= (size_t(1) << 20)) return fmt::format("{:.2f} MiB", double(bytes) / double(1 << 20));
    return fmt::format("{:.1f} KiB", double(bytes) / 1024.0);
}

std::string headsText(const Options& o, int nKvHeads) {
    const char* kind = nKvHeads == o.nHeads ? "MHA" : nKvHeads == 1 ? "MQA" : "GQA";
    return fmt::format("{} {}/{}", kind, o.nHeads, nKvHeads);
}

void printRow(const Options& o, const CaseResult& r) {
    const std::string rate = r.mode == "prefill"
                                 ? fmt::format("{:6.1f} GFLOP/s", r.gflops)
                                 : fmt::format("{:6.1f} GFLOP/s {:5.1f} GB/s K/V", r.gflops, r.kvGbps);
    fmt::print("{:<8} {:>6} {:<11} {:<15} {:>10.3f} ms ({:.3f}-{:.3f}, {:>2} reps, cpu {:3.0f}%)  {:<30} ws {}{}\n",
               r.mode, r.context, headsText(o, r.nKvHeads), r.variant, r.medianMs, r.minMs, r.maxMs, r.reps,
               100 * r.cpuShare, rate,
               bytesText(r.workspace), r.expandedKv ? fmt::format(" (expanded K/V {})", bytesText(r.expandedKv)) : "");
}

const CaseResult* find(const std::vector<CaseResult>& results, const std::string& mode, int context, int nKvHeads,
                       const std::string& variant) {
    for (const CaseResult& r : results) {
        if (r.mode == mode && r.context == context && r.nKvHeads == nKvHeads && r.variant == variant) return &r;
    }
    return nullptr;
}

// The aims of issue #4, for each head layout measured at the contexts they name.
void printAims(const Options& o, const std::vector<CaseResult>& results) {
    fmt::print("\naims:\n");
    for (const int kvh : o.kvHeads) {
        const CaseResult* flash = find(results, "prefill", 2048, kvh, "flash");
        const CaseResult* naive = find(results, "prefill", 2048, kvh, "naive");
        if (flash && naive) {
            const double speedup = naive->medianMs / flash->medianMs;
            const double wsRatio = double(flash->workspace) / double(naive->workspace);
            fmt::print("  {:<11} prefill 2k: flash {:.2f}x naive (aim >= 1.5) {}; workspace {:.2f}% of naive (aim <= 10%) {}\n",
                       headsText(o, kvh), speedup, speedup >= 1.5 ? "met" : "MISSED", 100 * wsRatio,
                       wsRatio <= 0.10 ? "met" : "MISSED");
        }
        if (const CaseResult* decode = find(results, "decode", 8192, kvh, "flash")) {
            fmt::print("  {:<11} decode 8k: flash reads K/V at {:.1f}% of streaming bandwidth (aim >= 70%) {}\n",
                       headsText(o, kvh), 100 * decode->kvFraction, decode->kvFraction >= 0.7 ? "met" : "MISSED");
        }
    }
}

Result<void> writeJson(const std::string& path, const Options& o, const cpu::BandwidthSample& bandwidth,
                       const cpu::BandwidthSample& bandwidthEnd, int threads, const std::vector<CaseResult>& results) {
    std::ofstream out(path);
    out << fmt::format(
        R"({{"threads": {}, "simd": "{}", "n_heads": {}, "head_dim": {}, "kv_type": "{}", "kv_layout": "{}",
 "block_size": {}, "batch": {}, "bandwidth_gbps": {:.4f}, "bandwidth_end_gbps": {:.4f}, "results": [)",
        threads, cpu::simdLevelName(o.simd), o.nHeads, o.headDim, dtypeName(o.kvType),
        o.contiguous ? "contiguous" : "paged", o.blockSize, o.batch, bandwidth.bytesPerSecond / 1e9,
        bandwidthEnd.bytesPerSecond / 1e9);
    for (size_t i = 0; i < results.size(); ++i) {
        const CaseResult& r = results[i];
        out << fmt::format(
            R"({}
  {{"mode": "{}", "context": {}, "n_kv_heads": {}, "variant": "{}", "reps": {}, "layers": {},
   "time_ms": {{"median": {:.5f}, "min": {:.5f}, "max": {:.5f}}}, "gflops": {:.3f}, "kv_gbps": {:.3f},
   "kv_fraction_of_bandwidth": {:.4f}, "workspace_bytes": {}, "expanded_kv_bytes": {}, "cpu_share": {:.3f}}})",
            i ? "," : "", r.mode, r.context, r.nKvHeads, r.variant, r.reps, r.layers, r.medianMs, r.minMs, r.maxMs,
            r.gflops, r.kvGbps, r.kvFraction, r.workspace, r.expandedKv, r.cpuShare);
    }
    out << "\n]}\n";
    if (!out) return fail("cannot write '{}'", path);
    return {};
}

}  // namespace

Result<void> runAttentionBench(Args& args) {
    Options o;
    const bool quick = args.flag("quick");
    PAGODA_ASSIGN_OR_RETURN(o.threads, args.integer("threads", 0, 0, 1024));
    o.simd = cpu::detectSimdLevel();
    if (auto name = args.value("simd")) {
        const auto level = cpu::simdLevelFromName(*name);
        if (!level || (*level == cpu::SimdLevel::Avx512 && o.simd != cpu::SimdLevel::Avx512)) {
            return fail("--simd: '{}' (avx2, or avx512 where the CPU has it)", *name);
        }
        o.simd = *level;
    }
    PAGODA_ASSIGN_OR_RETURN(o.nHeads, args.integer("heads", 32, 1, 1024));
    PAGODA_ASSIGN_OR_RETURN(o.headDim, args.integer("head-dim", 128, 1, 1024));
    PAGODA_ASSIGN_OR_RETURN(o.kvHeads, parseList("kv-heads", args.value("kv-heads").value_or(fmt::format(
                                                                   "{},{},1", o.nHeads, std::max(1, o.nHeads / 4))),
                                                 1, o.nHeads));
    for (const int kvh : o.kvHeads) {
        if (o.nHeads % kvh != 0) return fail("--kv-heads: {} does not divide --heads {}", kvh, o.nHeads);
    }
    const std::string kvType = args.value("kv-type").value_or("f16");
    const std::optional<DType> type = dtypeFromName(kvType);
    if (!type) return fail("--kv-type: '{}' (f16, f32 or q8_0)", kvType);
    o.kvType = *type;
    PAGODA_RETURN_IF_ERROR(checkKvType(o.kvType, o.headDim));
    PAGODA_ASSIGN_OR_RETURN(o.blockSize, args.integer("block-size", 16, 1, 4096));
    const std::string layout = args.value("layout").value_or("paged");
    if (layout != "paged" && layout != "contiguous") return fail("--layout: '{}' (paged or contiguous)", layout);
    o.contiguous = layout == "contiguous";
    PAGODA_ASSIGN_OR_RETURN(o.prefillContexts, parseList("prefill-contexts", args.value("prefill-contexts")
                                                                                 .value_or(quick ? "512,2048" : "512,2048,8192"),
                                                         1, 1 << 16));
    PAGODA_ASSIGN_OR_RETURN(o.decodeContexts,
                            parseList("decode-contexts",
                                      args.value("decode-contexts").value_or(quick ? "512,8192" : "512,2048,8192,32768"),
                                      1, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(o.batch, args.integer("batch", 1, 1, 1024));
    PAGODA_ASSIGN_OR_RETURN(o.variants, parseVariants(args.value("variants").value_or("flash,naive,flash-expanded")));
    PAGODA_ASSIGN_OR_RETURN(o.reps, args.integer("reps", quick ? 3 : 5, 1, 1000));
    PAGODA_ASSIGN_OR_RETURN(o.caseSeconds, args.number("case-seconds", quick ? 1.0 : 2.0, 0.0, 3600.0));
    PAGODA_ASSIGN_OR_RETURN(o.bandwidthMib, args.integer("bandwidth-mib", 1024, 64, 1 << 16));
    PAGODA_ASSIGN_OR_RETURN(int64_t seed, args.integer("seed", 1, 0, INT64_MAX));
    o.seed = uint64_t(seed);
    const std::optional<std::string> jsonPath = args.value("json");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());

    cpu::ThreadPool pool(o.threads);
    const cpu::BandwidthSample bandwidth =
        cpu::measureReadBandwidth(cpu::CpuContext{&pool, o.simd}, size_t(o.bandwidthMib) << 20, 5);
    fmt::print("attention: {} threads, {}, {} heads x {}, {} K/V ({}, block {}), decode batch {}\n", pool.size(),
               cpu::simdLevelName(o.simd), o.nHeads, o.headDim, dtypeName(o.kvType), layout, o.blockSize, o.batch);
    fmt::print("bandwidth: {:.2f} GB/s streaming read ({} MiB, median of 5)\n", bandwidth.bytesPerSecond / 1e9,
               o.bandwidthMib);
    fmt::print("times: median (min-max) of timed calls (docs/ATTENTION.md); decode per call, over its K/V copies;\n"
               "cpu: this process's CPU time / (wall time x threads), well below 100% when others share the cores\n\n");

    Bench bench(o, pool);
    std::vector<CaseResult> results;
    const auto add = [&](std::vector<CaseResult> rows) {
        for (const CaseResult& r : rows) {
            printRow(o, r);
            results.push_back(r);
        }
    };
    for (const int context : o.prefillContexts) {
        for (const int kvh : o.kvHeads) add(bench.prefill(context, kvh));
    }
    for (const int context : o.decodeContexts) {
        for (const int kvh : o.kvHeads) add(bench.decode(context, kvh));
    }
    // The machine may be shared: measure again and judge decode against the
    // better of the two.
    const cpu::BandwidthSample bandwidthEnd =
        cpu::measureReadBandwidth(cpu::CpuContext{&pool, o.simd}, size_t(o.bandwidthMib) << 20, 5);
    const double reference = std::max(bandwidth.bytesPerSecond, bandwidthEnd.bytesPerSecond);
    fmt::print("\nbandwidth again: {:.2f} GB/s; decode K/V reads below are against {:.2f} GB/s\n",
               bandwidthEnd.bytesPerSecond / 1e9, reference / 1e9);
    for (CaseResult& r : results) {
        if (r.mode != "decode") continue;
        r.kvFraction = r.kvGbps * 1e9 / reference;
        fmt::print("  decode {:>6} {:<11} {:<15} {:6.1f} GB/s = {:5.1f}%\n", r.context, headsText(o, r.nKvHeads),
                   r.variant, r.kvGbps, 100 * r.kvFraction);
    }
    printAims(o, results);
    if (jsonPath) PAGODA_RETURN_IF_ERROR(writeJson(*jsonPath, o, bandwidth, bandwidthEnd, pool.size(), results));
    return {};
}

}  // namespace pagoda

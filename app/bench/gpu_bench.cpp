// `pagoda-bench gpu`. Decode: for each preset and batch size B, the
// Transformer on CudaOps prefills B sequences with `context` tokens, then
// `steps` decode steps are timed (each step ends with its logits copied to
// the host: the next token needs them). The roofline of a step is (weight
// bytes + K/V bytes it reads) / copy bandwidth, the bandwidth measured on
// this device as device-to-device copies (bytes read + written per second).
// With --graphs 1 every batch is timed again with the decode step replayed
// as a CUDA graph (TransformerOptions::decodeGraphs). With --int8-matmul 1
// the decode products of quantized weights take their inputs rounded to 8
// bits (Ops::setInt8Matmul); with --dependent-launch 1 the decode-step
// kernels start while the one before them finishes (Ops::setDependentLaunch;
// sm_90 and newer). With --op-times 1 each batch's decode steps run again
// through TimedOps (eager, each call waited for) and their time is broken
// down by operation.
//
// Prefill: per preset, one prompt of --prefill-tokens tokens in one pass
// (tok/s and the TFLOP/s of its matmuls and attention), against the f16
// GEMM throughput measured on this device (cuBLAS, 8192^3): the tensor
// cores' practical peak.
//
// Attention: one sequence of C tokens from position 0, 32 heads of 128,
// useful FLOPs 4 · heads · headDim · C(C+1)/2, time of the attention call
// alone (K/V stored beforehand).

#include "app/bench/gpu_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/bench/bench_models.h"
#include "engine/backend/cuda_ops.h"
#include "engine/backend/timed_ops.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"

namespace pagoda {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPrefillChunk = 256;
constexpr int kWarmupSteps = 3;
constexpr uint64_t kNaiveScoreLimit = 8ull << 30;

struct DecodeRow {
    std::string preset;
    int batch = 0;
    bool graphs = false;
    double tokensPerSecond = 0;
    double stepMs = 0;
    double bytesPerStep = 0;
    double rooflineTokensPerSecond = 0;
    cuda::MemoryAccounting memory;  // during the timed steps
    std::string error;              // a failed variant is reported, not fatal
};

struct PrefillRow {
    std::string preset;
    int tokens = 0;
    double tokensPerSecond = 0;
    double tflops = 0;  // matmul and attention FLOPs of the pass per second
    std::string error;
};

struct AttentionRow {
    int context = 0;
    std::string algorithm;
    double ms = 0;
    double tflops = 0;
    std::string note;
};

Result<std::vector<int>> parseInts(const std::string& list, const char* option) {
    std::vector<int> values;
    std::stringstream in(list);
    for (std::string item; std::getline(in, item, ',');) {
        try {
            values.push_back(std::stoi(item));
        } catch (const std::exception&) {
            return fail("--{}: '{}' is not a number", option, item);
        }
        if (values.back() < 1) return fail("--{}: {} (at least 1)", option, values.back());
    }
    if (values.empty()) return fail("--{}: empty list", option);
    return values;
}

std::vector<std::string> parseNames(const std::string& list) {
    std::vector<std::string> names;
    std::stringstream in(list);
    for (std::string item; std::getline(in, item, ',');) names.push_back(item);
    return names;
}

Result<std::unique_ptr<CudaOps>> openCuda(int device) {
    const CudaProbeResult probe = probeCuda(defaultCudaModulePaths(), device);
    if (!probe.available) return fail("cuda: unavailable: {}", probe.reason);
    return CudaOps::create(probe.module, device);
}

Result<void> check(CudaOps& cuda) {
    PAGODA_RETURN_IF_ERROR(cuda.status());
    return cuda.synchronize();
}

BlockManagerConfig managerFor(int maxContext) {
    BlockManagerConfig manager;
    manager.maxContext = maxContext;
    manager.prefixCaching = false;
    manager.watermark = 0;
    return manager;
}

// One batch size of one model: prefill, then timed decode steps, over a KV
// cache of `kvType`; with `timed` (over `cuda`) the passes run through it,
// its times reset before the timed steps.
Result<DecodeRow> timeDecode(const Model& model, CudaOps& cuda, const std::string& preset, int batch, int context,
                             int steps, bool graphs, double copyGBs, DType kvType, TimedOps* timed = nullptr) {
    const ModelConfig& c = model.config();
    const int perSequence = context + kWarmupSteps + steps;
    if (perSequence > c.contextLength) {
        return fail("context {} + {} steps exceed the model's context of {}", context, steps, c.contextLength);
    }
    const int blockTokens = (perSequence + 15) / 16 * 16;
    // The backend's one KV pool: it replaces the previous run's, whose
    // graphs it drops.
    PAGODA_ASSIGN_OR_RETURN(auto cache, KvCache::create(kvLayoutForTokens(c, batch * blockTokens, 16, kvType),
                                                        managerFor(c.contextLength), &cuda));
    TransformerOptions options;
    options.decodeGraphs = graphs;
    Transformer transformer(model, timed != nullptr ? static_cast<Ops&>(*timed) : cuda, std::max(batch, kPrefillChunk),
                            options);

    std::vector<SeqId> seqs;
    for (int s = 0; s < batch; ++s) {
        const std::vector<int32_t> prompt = benchTokens(context, c.vocabSize, 0x9e3779b97f4a7c15ull * (s + 1));
        PAGODA_ASSIGN_OR_RETURN(Admission admission, cache->admit(prompt));
        seqs.push_back(admission.seq);
        for (int done = 0; done < context; done += kPrefillChunk) {
            ForwardBatch chunk;
            const auto tokens = std::span(prompt).subspan(done, std::min(kPrefillChunk, context - done));
            PAGODA_ASSIGN_OR_RETURN(const Alloc status, cache->addChunk(chunk, admission.seq, tokens, false));
            if (status == Alloc::NoSpace) return fail("KV cache full while prefilling");
            PAGODA_RETURN_IF_ERROR(transformer.forward(chunk, *cache));
        }
    }

    const std::vector<int32_t> ids = benchTokens(kWarmupSteps + steps, c.vocabSize);
    Clock::time_point start;
    for (int i = 0; i < kWarmupSteps + steps; ++i) {
        if (i == kWarmupSteps) {
            if (timed != nullptr) timed->reset();
            start = Clock::now();
        }
        ForwardBatch step;
        for (SeqId seq : seqs) {
            PAGODA_ASSIGN_OR_RETURN(const Alloc status, cache->addChunk(step, seq, std::span(ids).subspan(i, 1), false));
            if (status == Alloc::NoSpace) return fail("KV cache full while decoding");
        }
        PAGODA_RETURN_IF_ERROR(transformer.forward(step, *cache));
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    DecodeRow row;
    row.memory = cuda.memory();

    // K/V bytes a step reads, averaged over the timed steps.
    const double kvBytesPerToken = 2.0 * c.nLayers * c.nKvHeads * double(rowBytes(kvType, size_t(c.headDim)));
    const double meanContext = context + kWarmupSteps + (steps + 1) / 2.0;
    row.preset = preset;
    row.batch = batch;
    row.graphs = graphs;
    row.stepMs = 1e3 * seconds / steps;
    row.tokensPerSecond = double(batch) * steps / seconds;
    row.bytesPerStep = double(model.bytesPerDecodeStep()) + batch * meanContext * kvBytesPerToken;
    row.rooflineTokensPerSecond = batch / (row.bytesPerStep / (copyGBs * 1e9));
    return row;
}

// One prompt of `tokens` tokens in one forward pass (logits of its last
// token only), as llama-bench's pp: a warm-up pass, then the mean of `reps`
// passes, each on a fresh sequence (no prefix reuse).
Result<PrefillRow> timePrefill(const Model& model, CudaOps& cuda, const std::string& preset, int tokens, int reps) {
    const ModelConfig& c = model.config();
    if (tokens > c.contextLength) return fail("{} tokens exceed the model's context of {}", tokens, c.contextLength);
    PAGODA_ASSIGN_OR_RETURN(auto cache, KvCache::create(kvLayoutForTokens(c, (tokens + 15) / 16 * 16, 16, DType::F16),
                                                        managerFor(c.contextLength), &cuda));
    Transformer transformer(model, cuda, tokens, TransformerOptions{});
    const std::vector<int32_t> prompt = benchTokens(tokens, c.vocabSize);
    double seconds = 0;
    for (int rep = 0; rep <= reps; ++rep) {
        PAGODA_ASSIGN_OR_RETURN(Admission admission, cache->admit(prompt));
        ForwardBatch batch;
        PAGODA_ASSIGN_OR_RETURN(const Alloc status, cache->addChunk(batch, admission.seq, prompt, false));
        if (status == Alloc::NoSpace) return fail("KV cache full while prefilling");
        PAGODA_RETURN_IF_ERROR(cuda.synchronize());
        const Clock::time_point start = Clock::now();
        PAGODA_RETURN_IF_ERROR(transformer.forward(batch, *cache));  // ends with the logits on the host
        if (rep > 0) seconds += std::chrono::duration<double>(Clock::now() - start).count();
        PAGODA_RETURN_IF_ERROR(cache->release(admission.seq));
    }
    const double perLayer = 2.0 * c.dim * (c.nHeads + 2 * c.nKvHeads) * c.headDim  // q, k, v
                            + 2.0 * c.nHeads * c.headDim * c.dim                   // o
                            + 6.0 * c.dim * c.ffnDim;                              // gate, up, down
    const double attention = 4.0 * c.nHeads * c.headDim * (double(tokens) * (tokens + 1) / 2);
    const double flops = c.nLayers * (perLayer * tokens + attention) + 2.0 * c.vocabSize * c.dim;
    PrefillRow row;
    row.preset = preset;
    row.tokens = tokens;
    row.tokensPerSecond = tokens * reps / seconds;
    row.tflops = flops * reps / seconds / 1e12;
    return row;
}

// Causal prefill attention of one `context`-token sequence, 32 heads of 128.
Result<std::vector<AttentionRow>> timeAttention(CudaOps& cuda, int context, int reps) {
    ModelConfig c;
    c.nLayers = 1;
    c.nHeads = 32;
    c.nKvHeads = 32;
    c.headDim = 128;
    PAGODA_ASSIGN_OR_RETURN(auto cache, KvCache::create(kvLayoutForTokens(c, context, 16, DType::F16),
                                                        managerFor(context), &cuda));
    const std::vector<int32_t> tokens(size_t(context), 0);
    PAGODA_ASSIGN_OR_RETURN(Admission admission, cache->admit(tokens));
    ForwardBatch batch;
    PAGODA_ASSIGN_OR_RETURN(const Alloc status, cache->addChunk(batch, admission.seq, tokens, false));
    if (status == Alloc::NoSpace) return fail("attention bench: KV cache full");

    const size_t elements = size_t(context) * c.nHeads * c.headDim;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> host(elements);
    std::vector<std::unique_ptr<ActivationMemory>> buffers;  // q, k, v, out: [context][nHeads][headDim] each
    for (int i = 0; i < 4; ++i) {
        PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<ActivationMemory> buffer, cuda.allocateActivations(elements));
        for (float& x : host) x = dist(rng);
        PAGODA_RETURN_IF_ERROR(cuda.copyToDevice(host.data(), buffer->data(), elements * sizeof(float)));
        buffers.push_back(std::move(buffer));
    }
    cuda.storeKv(cache->storage(), 0, buffers[1]->data(), buffers[2]->data(), batch.slots.data(), context);
    PAGODA_RETURN_IF_ERROR(check(cuda));

    const cpu::AttentionSequence sequence{0, context, 0, batch.chunks[0].blockTable.data()};
    const double flops = 4.0 * c.nHeads * c.headDim * (double(context) * (context + 1) / 2);
    std::vector<AttentionRow> rows;
    for (cpu::AttentionAlgorithm algorithm : {cpu::AttentionAlgorithm::Flash, cpu::AttentionAlgorithm::Naive}) {
        AttentionRow row;
        row.context = context;
        row.algorithm = algorithm == cpu::AttentionAlgorithm::Flash ? "flash" : "naive";
        const uint64_t scoreBytes = uint64_t(context) * context * c.nHeads * sizeof(float);
        if (algorithm == cpu::AttentionAlgorithm::Naive && scoreBytes > kNaiveScoreLimit) {
            row.note = fmt::format("skipped: the score matrix takes {:.1f} GiB", double(scoreBytes) / (1ull << 30));
            rows.push_back(row);
            continue;
        }
        cpu::AttentionParams params;
        params.q = buffers[0]->data();
        params.out = buffers[3]->data();
        params.nHeads = c.nHeads;
        params.scale = 1.0f / std::sqrt(float(c.headDim));
        params.kv = cache->view(0);
        params.sequences = std::span(&sequence, 1);
        params.algorithm = algorithm;
        cuda.attention(cache->storage(), 0, params);  // warm-up: plans, workspace
        PAGODA_RETURN_IF_ERROR(check(cuda));
        const Clock::time_point start = Clock::now();
        for (int r = 0; r < reps; ++r) cuda.attention(cache->storage(), 0, params);
        PAGODA_RETURN_IF_ERROR(check(cuda));
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count() / reps;
        row.ms = 1e3 * seconds;
        row.tflops = flops / seconds / 1e12;
        rows.push_back(row);
    }
    return rows;
}

double gib(uint64_t bytes) { return double(bytes) / double(1ull << 30); }

std::string memoryJson(const cuda::MemoryAccounting& m) {
    std::string json = "{";
    for (int u = 0; u < cuda::kMemoryUses; ++u) {
        std::string name(cuda::memoryUseName(cuda::MemoryUse(u)));
        std::replace(name.begin(), name.end(), ' ', '_');
        json += fmt::format("\"{}_bytes\": {}, ", name, m.inUseBy(cuda::MemoryUse(u)));
    }
    return json + fmt::format(R"("reserved_bytes": {}, "device_free_bytes": {}, "device_total_bytes": {}}})", m.reserved,
                              m.deviceFree, m.deviceTotal);
}

std::string jsonString(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\') out += '\\';
        out += ch;
    }
    return out + "\"";
}

}  // namespace

Result<void> runGpuBench(Args& args) {
    const bool quick = args.flag("quick");
    PAGODA_ASSIGN_OR_RETURN(const int device, args.integer("device", 0, 0, 64));
    const std::vector<std::string> presets = parseNames(args.value("presets").value_or(quick ? "tiny" : "7b,8b-gqa"));
    DType dtype = DType::F16;
    if (auto name = args.value("dtype")) {
        auto parsed = dtypeFromName(*name);
        if (!parsed) return fail("--dtype: '{}'", *name);
        dtype = *parsed;
    }
    PAGODA_ASSIGN_OR_RETURN(const std::vector<int> batches,
                            parseInts(args.value("batches").value_or(quick ? "1,4" : "1,8,32"), "batches"));
    PAGODA_ASSIGN_OR_RETURN(const int context, args.integer("context", quick ? 64 : 512, 1, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(const int steps, args.integer("steps", quick ? 8 : 32, 1, 100000));
    PAGODA_ASSIGN_OR_RETURN(const std::vector<int> attentionContexts,
                            parseInts(args.value("attention-contexts").value_or(quick ? "256,1024" : "4096,16384"),
                                      "attention-contexts"));
    PAGODA_ASSIGN_OR_RETURN(const int64_t graphs, args.integer("graphs", 0, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const int prefillTokens, args.integer("prefill-tokens", quick ? 64 : 512, 1, 1 << 20));
    PAGODA_ASSIGN_OR_RETURN(const int64_t int8Matmul, args.integer("int8-matmul", 0, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const int64_t dependentLaunch, args.integer("dependent-launch", 0, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const int64_t opTimes, args.integer("op-times", 0, 0, 1));
    const std::string kvTypeName = args.value("kv-type").value_or("f16");
    const std::optional<DType> kvType = dtypeFromName(kvTypeName);
    if (!kvType || (*kvType != DType::F16 && *kvType != DType::Q8_0)) {
        return fail("--kv-type: '{}' (f16 or q8_0)", kvTypeName);
    }
    const std::optional<std::string> jsonPath = args.value("json");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());

    PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<CudaOps> probeOps, openCuda(device));
    probeOps->setInt8Matmul(int8Matmul != 0 ? Int8Matmul::On : Int8Matmul::Off);
    probeOps->setDependentLaunch(dependentLaunch != 0);
    const std::string description = probeOps->description();
    PAGODA_ASSIGN_OR_RETURN(const double copyGBs, probeOps->measureCopyBandwidthSync(size_t(1) << 30, 20));
    fmt::print("device:      {}\n", description);
    const int gemmSize = quick ? 2048 : 8192;
    PAGODA_ASSIGN_OR_RETURN(const double gemmTflops, probeOps->measureGemmTflopsSync(gemmSize, quick ? 5 : 20));
    fmt::print("bandwidth:   {:.1f} GB/s device-to-device copy (read + write): the decode roofline\n", copyGBs);
    fmt::print("tensor:      {:.1f} TFLOP/s f16 GEMM {}^3 (cuBLAS, f32 accumulate): the prefill roofline\n", gemmTflops,
               gemmSize);

    std::vector<AttentionRow> attention;
    for (int c : attentionContexts) {
        PAGODA_ASSIGN_OR_RETURN(std::vector<AttentionRow> rows, timeAttention(*probeOps, c, quick ? 2 : 5));
        attention.insert(attention.end(), rows.begin(), rows.end());
    }
    probeOps.reset();
    fmt::print("\nprefill attention, 32 heads x 128, causal, f16 KV\n{:>8} {:>6} {:>10} {:>9} {:>8}\n", "context",
               "path", "ms", "TFLOP/s", "of GEMM");
    for (const AttentionRow& r : attention) {
        if (!r.note.empty()) {
            fmt::print("{:>8} {:>6} {}\n", r.context, r.algorithm, r.note);
        } else {
            fmt::print("{:>8} {:>6} {:>10.3f} {:>9.2f} {:>7.1f}%\n", r.context, r.algorithm, r.ms, r.tflops,
                       100 * r.tflops / gemmTflops);
        }
    }

    std::vector<PrefillRow> prefill;
    std::vector<DecodeRow> decode;
    std::vector<std::string> opTables;  // --op-times 1
    for (const std::string& preset : presets) {
        PAGODA_ASSIGN_OR_RETURN(const std::filesystem::path path, presetModel(preset, dtype));
        PAGODA_ASSIGN_OR_RETURN(auto model, Model::load(path));
        // A backend per model, so that the previous model's memory is returned.
        PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<CudaOps> cuda, openCuda(device));
        int lastPercent = -1;
        PAGODA_RETURN_IF_ERROR(cuda->uploadModel(*model, [&](uint64_t done, uint64_t total) {
            const int percent = total ? int(done * 100 / total) : 100;
            if (percent != lastPercent) fmt::print(stderr, "\ruploading {}: {:3d}%", preset, lastPercent = percent);
        }));
        fmt::print(stderr, "\n");
        cuda->setInt8Matmul(int8Matmul != 0 ? Int8Matmul::On : Int8Matmul::Off);
        cuda->setDependentLaunch(dependentLaunch != 0);
        auto timed = timePrefill(*model, *cuda, preset, prefillTokens, quick ? 2 : 5);
        if (timed) {
            prefill.push_back(*timed);
        } else {
            prefill.push_back(PrefillRow{preset, prefillTokens, 0, 0, timed.error().message});
        }
        for (int batch : batches) {
            for (bool withGraphs : {false, true}) {
                if (withGraphs && graphs == 0) continue;
                auto row = timeDecode(*model, *cuda, preset, batch, context, steps, withGraphs, copyGBs, *kvType);
                if (row) {
                    decode.push_back(*row);
                } else {
                    DecodeRow failed;
                    failed.preset = preset;
                    failed.batch = batch;
                    failed.graphs = withGraphs;
                    failed.error = row.error().message;
                    decode.push_back(failed);
                    if (!withGraphs) return std::unexpected(row.error());
                }
            }
            if (opTimes != 0) {
                TimedOps timed(*cuda);
                PAGODA_RETURN_IF_ERROR(
                    timeDecode(*model, *cuda, preset, batch, context, steps, false, copyGBs, *kvType, &timed));
                opTables.push_back(fmt::format("\n{} batch {}, decode step by operation (each call waited for)\n{}",
                                               preset, batch, timed.table(steps, "step")));
            }
        }
    }
    fmt::print("\nprefill, {} weights, one {}-token prompt per pass\n{:>8} {:>10} {:>9} {:>8}\n", dtypeName(dtype),
               prefillTokens, "model", "tok/s", "TFLOP/s", "of GEMM");
    for (const PrefillRow& r : prefill) {
        if (!r.error.empty()) {
            fmt::print("{:>8} failed: {}\n", r.preset, r.error);
        } else {
            fmt::print("{:>8} {:>10.1f} {:>9.2f} {:>7.1f}%\n", r.preset, r.tokensPerSecond, r.tflops,
                       100 * r.tflops / gemmTflops);
        }
    }
    fmt::print("\ndecode, {} weights, {} KV, context {} + {} steps\n", dtypeName(dtype), dtypeName(*kvType), context,
               steps);
    fmt::print("{:>8} {:>6} {:>7} {:>10} {:>9} {:>12} {:>9} {:>7}\n", "model", "batch", "graphs", "tok/s", "step ms",
               "GB/step", "bound tok/s", "of bound");
    for (const DecodeRow& r : decode) {
        if (!r.error.empty()) {
            fmt::print("{:>8} {:>6} {:>7} failed: {}\n", r.preset, r.batch, r.graphs ? "on" : "off", r.error);
            continue;
        }
        fmt::print("{:>8} {:>6} {:>7} {:>10.1f} {:>9.2f} {:>12.2f} {:>9.1f} {:>6.1f}%\n", r.preset, r.batch,
                   r.graphs ? "on" : "off", r.tokensPerSecond, r.stepMs, r.bytesPerStep / 1e9,
                   r.rooflineTokensPerSecond, 100 * r.tokensPerSecond / r.rooflineTokensPerSecond);
    }
    for (const std::string& table : opTables) fmt::print("{}", table);
    fmt::print("\ndevice memory while decoding (GiB)\n{:>8} {:>6} {:>8} {:>8} {:>11} {:>9} {:>8} {:>8}\n", "model", "batch",
               "weights", "kv", "activations", "workspace", "free", "total");
    for (const DecodeRow& r : decode) {
        if (!r.error.empty() || r.graphs) continue;
        const cuda::MemoryAccounting& m = r.memory;
        fmt::print("{:>8} {:>6} {:>8.2f} {:>8.2f} {:>11.2f} {:>9.2f} {:>8.2f} {:>8.2f}\n", r.preset, r.batch,
                   gib(m.inUseBy(cuda::MemoryUse::Weights)), gib(m.inUseBy(cuda::MemoryUse::KvCache)),
                   gib(m.inUseBy(cuda::MemoryUse::Activations)), gib(m.inUseBy(cuda::MemoryUse::Workspace)),
                   gib(m.deviceFree), gib(m.deviceTotal));
    }

    if (jsonPath) {
        std::ofstream out(*jsonPath);
        out << fmt::format(R"({{"device": {}, "copy_bandwidth_gbs": {:.2f}, "gemm_tflops": {:.2f}, "weights": "{}", )"
                           R"("kv_type": "{}", "context": {}, "steps": {},)",
                           jsonString(description), copyGBs, gemmTflops, dtypeName(dtype), dtypeName(*kvType), context,
                           steps)
            << "\n \"decode\": [";
        for (size_t i = 0; i < decode.size(); ++i) {
            const DecodeRow& r = decode[i];
            out << (i ? ",\n  " : "\n  ")
                << fmt::format(R"({{"preset": "{}", "batch": {}, "graphs": {}, "tok_s": {:.3f}, "step_ms": {:.4f}, )"
                               R"("bytes_per_step": {:.0f}, "roofline_tok_s": {:.3f}, "memory": {}, "error": {}}})",
                               r.preset, r.batch, r.graphs, r.tokensPerSecond, r.stepMs, r.bytesPerStep,
                               r.rooflineTokensPerSecond, memoryJson(r.memory), jsonString(r.error));
        }
        out << "],\n \"prefill\": [";
        for (size_t i = 0; i < prefill.size(); ++i) {
            const PrefillRow& r = prefill[i];
            out << (i ? ",\n  " : "\n  ")
                << fmt::format(R"({{"preset": "{}", "tokens": {}, "tok_s": {:.3f}, "tflops": {:.3f}, "error": {}}})",
                               r.preset, r.tokens, r.tokensPerSecond, r.tflops, jsonString(r.error));
        }
        out << "],\n \"prefill_attention\": [";
        for (size_t i = 0; i < attention.size(); ++i) {
            const AttentionRow& r = attention[i];
            out << (i ? ",\n  " : "\n  ")
                << fmt::format(R"({{"context": {}, "heads": 32, "head_dim": 128, "causal": true, "path": "{}", )"
                               R"("ms": {:.4f}, "tflops": {:.3f}, "note": {}}})",
                               r.context, r.algorithm, r.ms, r.tflops, jsonString(r.note));
        }
        out << "]}\n";
        if (!out) return fail("cannot write '{}'", *jsonPath);
    }
    return {};
}

}  // namespace pagoda

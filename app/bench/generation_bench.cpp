// `pagoda-bench generation`: llama-bench-like measurement of prompt
// processing and generation speed, with the machine's streaming read
// bandwidth measured in the same run so generation can be reported against
// its memory-bound ceiling (bandwidth / bytes of weights read per token).
// With --op-times 1, one more prompt and generation run through TimedOps
// and their time is broken down by operation.

#include "app/bench/generation_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include <fmt/format.h>

#include "app/bench/bench_models.h"
#include "engine/backend/backend_select.h"
#include "engine/backend/cpu_ops.h"
#include "engine/backend/timed_ops.h"
#include "engine/model/model.h"
#include "engine/transformer/transformer.h"
#include "kernels/cpu/bandwidth.h"

namespace pagoda {
namespace {

using Clock = std::chrono::steady_clock;

struct Summary {
    double median = 0, min = 0, max = 0, stddev = 0;
};

Summary summarize(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    Summary s;
    s.min = values.front();
    s.max = values.back();
    const size_t n = values.size();
    s.median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
    const double mean = std::accumulate(values.begin(), values.end(), 0.0) / double(n);
    double var = 0;
    for (double v : values) var += (v - mean) * (v - mean);
    s.stddev = n > 1 ? std::sqrt(var / double(n - 1)) : 0;
    return s;
}

std::string summaryJson(const Summary& s) {
    return fmt::format(R"({{"median": {:.4f}, "min": {:.4f}, "max": {:.4f}, "stddev": {:.4f}}})", s.median, s.min,
                       s.max, s.stddev);
}

}  // namespace

Result<void> runGenerationBench(Args& args) {
    PAGODA_ASSIGN_OR_RETURN(int threads, args.integer("threads", 0, 0, 1024));
    PAGODA_ASSIGN_OR_RETURN(int promptTokens, args.integer("prompt-tokens", 128, 1, 1 << 16));
    PAGODA_ASSIGN_OR_RETURN(int genTokens, args.integer("gen-tokens", 64, 1, 1 << 16));
    PAGODA_ASSIGN_OR_RETURN(int reps, args.integer("reps", 5, 1, 1000));
    PAGODA_ASSIGN_OR_RETURN(int bandwidthMib, args.integer("bandwidth-mib", 512, 64, 1 << 16));
    PAGODA_ASSIGN_OR_RETURN(const int64_t int8Matmul, args.integer("int8-matmul", 0, 0, 1));
    PAGODA_ASSIGN_OR_RETURN(const int64_t opTimes, args.integer("op-times", 0, 0, 1));
    std::optional<cpu::SimdLevel> simd;
    if (auto name = args.value("simd")) {
        simd = cpu::simdLevelFromName(*name);
        if (!simd) return fail("--simd: '{}' (avx2 or avx512)", *name);
    }
    PAGODA_ASSIGN_OR_RETURN(const std::filesystem::path modelPath, benchModelPath(args));
    const std::optional<std::string> jsonPath = args.value("json");
    PAGODA_RETURN_IF_ERROR(args.checkAllUsed());

    PAGODA_ASSIGN_OR_RETURN(auto model, Model::load(modelPath));
    const ModelConfig& c = model->config();
    if (promptTokens + genTokens > c.contextLength) {
        return fail("prompt {} + generation {} tokens exceed the context of {}", promptTokens, genTokens,
                    c.contextLength);
    }
    SelectedBackend host;  // the CPU: the weights copied into memory, as the programs do
    copyWeightsForTheCpu(host, *model);
    CpuOps ops(CpuOpsOptions{threads, simd});
    ops.setInt8Matmul(int8Matmul != 0 ? Int8Matmul::On : Int8Matmul::Off);
    const int maxBatch = std::min(promptTokens, 512);
    Transformer transformer(*model, ops, maxBatch);
    // No prefix caching: every repetition must compute its prompt.
    BlockManagerConfig manager;
    manager.maxContext = c.contextLength;
    manager.prefixCaching = false;
    manager.watermark = 0;
    PAGODA_ASSIGN_OR_RETURN(auto cache,
                            KvCache::create(kvLayoutForTokens(c, promptTokens + genTokens, 16, DType::F16), manager));
    // Runs tokens of seq as one forward pass of `t`.
    auto forwardOn = [&](Transformer& t, SeqId seq, std::span<const int32_t> tokens) -> Result<void> {
        ForwardBatch batch;
        PAGODA_ASSIGN_OR_RETURN(const Alloc status, cache->addChunk(batch, seq, tokens, false));
        if (status == Alloc::NoSpace) return fail("KV cache full");
        PAGODA_RETURN_IF_ERROR(t.forward(batch, *cache));
        return {};
    };
    auto forward = [&](SeqId seq, std::span<const int32_t> tokens) { return forwardOn(transformer, seq, tokens); };

    const double bytesPerToken = double(model->bytesPerDecodeStep());
    const std::vector<int32_t> prompt = benchTokens(promptTokens, c.vocabSize);
    const std::vector<int32_t> decodeIds = benchTokens(genTokens + 1, c.vocabSize);

    // The machine is shared and its bandwidth drifts: every repetition
    // measures streaming bandwidth right before its generation run, and the
    // fraction of the bound is taken per repetition.
    std::vector<double> ppRates, tgRates, bandwidths, fractions;
    for (int r = -1; r < reps; ++r) {  // r == -1: warm-up (page faults, caches)
        PAGODA_ASSIGN_OR_RETURN(Admission admission, cache->admit(prompt));
        auto start = Clock::now();
        for (int done = 0; done < promptTokens;) {
            const int n = std::min(maxBatch, promptTokens - done);
            PAGODA_RETURN_IF_ERROR(forward(admission.seq, std::span(prompt).subspan(done, n)));
            done += n;
        }
        const double ppSeconds = std::chrono::duration<double>(Clock::now() - start).count();
        PAGODA_RETURN_IF_ERROR(cache->release(admission.seq));

        const double bandwidth =
            cpu::measureReadBandwidth(ops.context(), size_t(bandwidthMib) << 20, 3).bytesPerSecond;
        // Generation as llama-bench measures it: decode steps from a short context.
        PAGODA_ASSIGN_OR_RETURN(admission, cache->admit(std::span(decodeIds).first(1)));
        PAGODA_RETURN_IF_ERROR(forward(admission.seq, std::span(decodeIds).first(1)));
        start = Clock::now();
        for (int i = 1; i <= genTokens; ++i) {
            PAGODA_RETURN_IF_ERROR(forward(admission.seq, std::span(decodeIds).subspan(i, 1)));
        }
        const double tgSeconds = std::chrono::duration<double>(Clock::now() - start).count();
        PAGODA_RETURN_IF_ERROR(cache->release(admission.seq));
        if (r >= 0) {
            ppRates.push_back(promptTokens / ppSeconds);
            tgRates.push_back(genTokens / tgSeconds);
            bandwidths.push_back(bandwidth / 1e9);
            fractions.push_back(tgRates.back() / (bandwidth / bytesPerToken));
        }
    }

    const Summary pp = summarize(ppRates);
    const Summary tg = summarize(tgRates);
    const Summary bw = summarize(bandwidths);
    const Summary fraction = summarize(fractions);

    fmt::print("model:       {} ({}, {:.1f} MB read per token)\n", modelPath.filename().string(),
               model->weightTypeName(), bytesPerToken / 1e6);
    fmt::print("backend:     {}{}\n", ops.description(), host.note);
    fmt::print("bandwidth:   {:.2f} GB/s streaming read (min {:.2f}, max {:.2f}; {} MiB before each repetition)\n",
               bw.median, bw.min, bw.max, bandwidthMib);
    fmt::print("pp{}:       {:.2f} tok/s (min {:.2f}, max {:.2f}, sd {:.2f}, {} reps)\n", promptTokens, pp.median,
               pp.min, pp.max, pp.stddev, reps);
    fmt::print("tg{}:        {:.2f} tok/s (min {:.2f}, max {:.2f}, sd {:.2f}, {} reps)\n", genTokens, tg.median,
               tg.min, tg.max, tg.stddev, reps);
    fmt::print("tg / bound:  {:.1f}% (min {:.1f}%, max {:.1f}%): generation tok/s over bandwidth / bytes per token, "
               "per repetition\n",
               100 * fraction.median, 100 * fraction.min, 100 * fraction.max);

    std::string opTimesJson;  // "op_times" in the JSON: the prompt's, then per generated token
    if (opTimes != 0) {
        // Outside the repetitions: timing every call alone slows the pass.
        TimedOps timed(ops);
        Transformer timedTransformer(*model, timed, maxBatch);
        PAGODA_ASSIGN_OR_RETURN(Admission admission, cache->admit(prompt));
        for (int done = 0; done < promptTokens;) {
            const int n = std::min(maxBatch, promptTokens - done);
            PAGODA_RETURN_IF_ERROR(forwardOn(timedTransformer, admission.seq, std::span(prompt).subspan(done, n)));
            done += n;
        }
        fmt::print("\nop times, each call timed alone: the prompt of {} tokens\n{}", promptTokens,
                   timed.table(1, "prompt"));
        opTimesJson = fmt::format(",\n \"op_times\": {{\"prompt\": {}", TimedOps::json(timed.times(), 1, "prompt"));
        PAGODA_RETURN_IF_ERROR(cache->release(admission.seq));
        PAGODA_ASSIGN_OR_RETURN(admission, cache->admit(std::span(decodeIds).first(1)));
        PAGODA_RETURN_IF_ERROR(forwardOn(timedTransformer, admission.seq, std::span(decodeIds).first(1)));
        timed.reset();
        for (int i = 1; i <= genTokens; ++i) {
            PAGODA_RETURN_IF_ERROR(forwardOn(timedTransformer, admission.seq, std::span(decodeIds).subspan(i, 1)));
        }
        fmt::print("\nop times, each call timed alone: {} generated tokens\n{}", genTokens,
                   timed.table(genTokens, "token"));
        opTimesJson += fmt::format(", \"generation\": {}}}", TimedOps::json(timed.times(), genTokens, "token"));
        PAGODA_RETURN_IF_ERROR(cache->release(admission.seq));
    }

    if (jsonPath) {
        std::ofstream out(*jsonPath);
        out << fmt::format(
            R"({{"model": "{}", "weight_type": "{}", "backend": "{}", "threads": {}, "bytes_per_token": {:.0f},
 "bandwidth_gbps": {}, "prompt_tokens": {}, "gen_tokens": {}, "reps": {},
 "pp_tok_s": {}, "tg_tok_s": {}, "tg_fraction_of_bound": {}{}}}
)",
            modelPath.filename().string(), model->weightTypeName(), ops.description(), ops.context().pool->size(),
            bytesPerToken, summaryJson(bw), promptTokens, genTokens, reps, summaryJson(pp), summaryJson(tg),
            summaryJson(fraction), opTimesJson);
        if (!out) return fail("cannot write '{}'", *jsonPath);
    }
    return {};
}

}  // namespace pagoda

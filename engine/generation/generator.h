#pragma once
// Single-sequence generation (prefill in chunks, then decode token by token)
// for the command-line tools and benchmarks. The continuous-batching
// scheduler drives the same Transformer for many sequences.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"
#include "engine/sampling/sampler.h"
#include "engine/transformer/transformer.h"

namespace pagoda {

class Model;
class Ops;

struct GeneratorOptions {
    int maxBatchTokens = 256;  // prefill chunk size
    int blockSize = 16;
    DType kvType = DType::F16;
    bool prefixCaching = true;  // a later prompt reuses the KV of a cached common prefix
    int contextLength = 0;      // the most tokens a sequence holds: 0, the model's; else up to it
    // Gemma's local layers keep a window in pools of their own where the
    // backend has them (OptimizationConfig::localKvPools).
    bool localKvPools = true;
};

struct GenerateRequest {
    std::span<const int32_t> prompt;  // token ids, BOS included when wanted
    int maxTokens = 128;
    SamplingParams sampling;
    bool stopAtEndOfGeneration = true;
};

enum class FinishReason { EndOfGeneration, Length, ContextFull };
std::string_view finishReasonName(FinishReason reason);

struct GenerateStats {
    int promptTokens = 0;
    int reusedTokens = 0;  // prompt tokens whose KV came from the prefix cache
    int generatedTokens = 0;
    double promptSeconds = 0;    // prefill, up to the first sampled token
    double generateSeconds = 0;  // the decode steps after it
    FinishReason finish = FinishReason::Length;

    // Prompt tokens computed (not reused) per second of prefill.
    double promptTokensPerSecond() const {
        return promptSeconds > 0 ? (promptTokens - reusedTokens) / promptSeconds : 0;
    }
    // Decode throughput over the tokens produced by decode steps.
    double generateTokensPerSecond() const {
        return generateSeconds > 0 ? (generatedTokens - 1) / generateSeconds : 0;
    }
};

class Generator {
public:
    Generator(const Model& model, Ops& ops, const GeneratorOptions& options = {});

    // Calls onToken for every generated token (the end-of-generation token
    // included). Errors: empty prompt, prompt longer than the context or
    // than the KV cache holds.
    Result<GenerateStats> generate(const GenerateRequest& request, const std::function<void(int32_t)>& onToken);

    // Logits of every prompt position, [prompt.size()][vocab], no sampling.
    Result<std::vector<float>> promptLogits(std::span<const int32_t> prompt);

    // The context in effect: GeneratorOptions::contextLength up to the
    // model's, else the model's.
    int context() const;

private:
    // A cache for the whole context, or what memory allows beside
    // the activations when that is less (Ops::kvMemoryAvailable), made on
    // first use and kept across calls so that later prompts reuse cached
    // prefixes.
    Result<void> prepareCache();

    const Model& m_model;
    Ops& m_ops;
    GeneratorOptions m_options;
    Transformer m_transformer;
    std::unique_ptr<KvCache> m_cache;
    int m_cacheTokens = 0;  // most tokens m_cache holds for one sequence
};

}  // namespace pagoda

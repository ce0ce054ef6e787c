#pragma once
// Every optimization the engine can switch, as one plain struct with two
// named presets: baseline (each optimization off, the way users would
// otherwise run) and optimized (everything on). Engine::reconfigure applies
// a new config at the next step boundary.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/backend/backend_select.h"
#include "engine/backend/ops.h"
#include "engine/cache/block_manager.h"
#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"
#include "kernels/cpu/attention.h"
#include "kernels/dtype.h"

namespace pagoda {
struct ModelConfig;
}

namespace pagoda::runtime {

enum class BatchingMode {
    Continuous,  // sequences join and leave the running batch at every step
    Static,      // form a batch, run it to completion, then form the next
    Sequential,  // one request at a time
};

std::string_view batchingModeName(BatchingMode mode);  // "continuous", "static", "sequential"
std::string_view int8MatmulName(Int8Matmul mode);      // "off", "cpu", "on"
std::optional<Int8Matmul> int8MatmulFromName(std::string_view name);

// OptimizationConfig::kvBudgetBytes: sized when the cache is made, for
// kAutoKvContexts sequences at the context in effect (contextFor) or what
// the backend's memory allows (kv_budget.h autoKvBudget, Ops::kvMemoryAvailable).
constexpr uint64_t kAutoKvBudget = 0;
// OptimizationConfig::contextLength: the model's own (its GGUF's context_length).
constexpr int kModelContext = 0;

struct OptimizationConfig {
    BatchingMode batching = BatchingMode::Continuous;
    KvAllocation kvAllocation = KvAllocation::Paged;
    cpu::AttentionAlgorithm attention = cpu::AttentionAlgorithm::Flash;
    bool groupedKv = true;      // false: K/V expanded to one head per query head (GQA off)
    bool prefixCaching = true;  // paged only
    // Paged, on the CPU backend: the local layers of a model with local and
    // global ones (Gemma 2, 3) keep K/V in pools of their own, of about
    // maxBatch windows, instead of the whole context (llama.cpp's iSWA
    // cache). The same results in less memory. Off: every layer keeps
    // every position.
    bool localKvPools = true;
    bool decodeGraphs = true;   // CUDA graphs for decode steps; no effect on the CPU backend
    // Products with quantized weights (every quantized type) on int8 dot
    // products over activations rounded to 8 bits, as llama.cpp's CPU
    // always does: on the CPU every such product, prefill and decode, each
    // token the same bits alone and in a batch; on CUDA the decode matvecs
    // only, so there a decode row differs slightly from the same row in a
    // prefill batch. The logits move by a few percent of their RMS against
    // the float products. Optimized: the CPU only (CUDA's is not yet
    // measured on a device); baseline: off.
    Int8Matmul int8Matmul = Int8Matmul::Cpu;
    // CUDA, compute capability 9.0 and newer: each decode-step kernel starts
    // while the one before it finishes (programmatic dependent launch). The
    // same results; off in both presets until it is measured on a device.
    bool dependentLaunch = false;
    EvictionPolicyKind eviction = EvictionPolicyKind::Lru;
    int blockSize = 16;                   // tokens per KV block: 8, 16 or 32
    int maxBatch = 16;                    // running sequences at most
    int maxBatchTokens = 256;             // tokens per step (decode tokens + prefill chunks), >= maxBatch
    uint64_t kvBudgetBytes = kAutoKvBudget;  // K and V of every layer
    int slidingWindow = -1;               // < 0: the model's; 0: full attention; W: the last W positions
    DType kvType = DType::F16;            // F16, F32 (CPU only) or Q8_0 (a head dim that is a multiple of 32)
    // The most tokens one sequence may hold: kModelContext, or a count,
    // which the model's context caps (llama.cpp's --ctx-size, Ollama's
    // num_ctx). Not an optimization: the app's presets keep it, as they
    // keep the budget.
    int contextLength = kModelContext;

    // Sequential batching, contiguous KV, naive attention, expanded KV, no
    // prefix cache, no decode graphs, no local-layer pools.
    static OptimizationConfig baseline();
    // Continuous batching, paged KV, flash attention, grouped KV, prefix
    // cache (LRU), decode graphs, local-layer pools.
    static OptimizationConfig optimized();

    bool operator==(const OptimizationConfig&) const = default;
};

// Whether going from `from` to `to` needs a new KV cache for `model`
// (layout, budget, block manager policy; more tokens per step with an
// automatic budget, whose pool leaves room for their activations; the batch
// limits that size local-layer pools): the engine then preempts every
// running sequence and recomputes it in the new cache.
bool needsCacheRebuild(const OptimizationConfig& from, const OptimizationConfig& to, const ModelConfig& model);
// Whether `config` gives `model`'s local layers pools of their own:
// localKvPools, paged, a model with local and global layers, and no
// sliding window at or below the local one (every layer then has it).
bool localKvPoolsFor(const OptimizationConfig& config, const ModelConfig& model);

// The attention window in effect: the override, else the model's.
int slidingWindowFor(const OptimizationConfig& config, const ModelConfig& model);
// The context in effect: config.contextLength up to the model's, else the model's.
int contextFor(const OptimizationConfig& config, const ModelConfig& model);
// What the automatic GPU layers leave room for when a model loads to run
// under `config` (its context, KV precision and tokens per step).
GpuRoom gpuRoomFor(const OptimizationConfig& config);
// The budget of a KV cache for `config` in bytes: config.kvBudgetBytes, or
// the automatic budget within availableBytes.
struct KvBudgetChoice {
    uint64_t bytes = 0;
    bool automatic = false;
    bool limitedByMemory = false;  // automatic, and less than kAutoKvContexts full contexts
    uint64_t availableBytes = 0;   // what the automatic budget was bounded by
};
KvBudgetChoice kvBudgetFor(const OptimizationConfig& config, const ModelConfig& model, uint64_t availableBytes);
// "auto: 4 contexts of 8192 tokens, 4.00 GiB", "auto: 2.10 GiB, what memory
// allows (2.11 GiB available; 4 contexts of 8192 tokens need 4.00 GiB)",
// "set: 256.00 MiB".
std::string describeKvBudget(const KvBudgetChoice& budget, const OptimizationConfig& config, const ModelConfig& model);
// Pool geometry (the most blocks of config.blockSize budgetBytes holds) and
// block manager settings of a KV cache for `config`; errors when the budget
// holds no block.
Result<KvLayout> kvLayoutFor(const OptimizationConfig& config, const ModelConfig& model, uint64_t budgetBytes);
BlockManagerConfig blockManagerConfigFor(const OptimizationConfig& config, const ModelConfig& model);

// Errors name the offending field and value (block size, batch limits,
// prefix caching with contiguous KV, a negative context, a budget that
// holds no sequence). An
// automatic budget is checked at its aim; the memory it gets is known only
// when the cache is made.
Result<void> validateConfig(const OptimizationConfig& config, const ModelConfig& model);

// "preset[:key=value]...", preset baseline or optimized; keys: batching
// (continuous|static|sequential), kv (paged|contiguous), attention
// (flash|naive), gqa (grouped|expanded), prefix (on|off), decode-graphs
// (on|off), int8-matmul (on|off), dependent-launch (on|off), eviction
// (lru|fifo), block-size, max-batch, max-batch-tokens, kv-budget-mib (N|auto),
// window, kv-type (f16|f32|q8_0), context (N|model), local-kv (on|off). Example:
// "optimized:batching=static:prefix=off".
Result<OptimizationConfig> parseOptimizationConfig(std::string_view spec);
// The same syntax, every key spelled out (parses back to `config`; the
// budget in whole MiB).
std::string formatOptimizationConfig(const OptimizationConfig& config);

}  // namespace pagoda::runtime

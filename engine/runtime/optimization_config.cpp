#include "engine/runtime/optimization_config.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <initializer_list>
#include <limits>

#include <fmt/format.h>

#include "engine/cache/kv_budget.h"
#include "engine/model/model_config.h"
#include "kernels/format_bytes.h"

namespace pagoda::runtime {
namespace {

Result<int64_t> parseInteger(std::string_view key, std::string_view value) {
    int64_t parsed = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (ec != std::errc() || end != value.data() + value.size()) {
        return fail("config key '{}': '{}' is not an integer", key, value);
    }
    return parsed;
}

// Picks the option whose name is `value` among `names` (index into it).
Result<int> choose(std::string_view key, std::string_view value, std::initializer_list<std::string_view> names) {
    std::string options;
    int i = 0;
    for (std::string_view name : names) {
        if (value == name) return i;
        options += fmt::format("{}{}", i++ ? "|" : "", name);
    }
    return fail("config key '{}': '{}' is not one of {}", key, value, options);
}

Result<void> applyKey(OptimizationConfig& c, std::string_view key, std::string_view value) {
    if (key == "batching") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"continuous", "static", "sequential"}));
        c.batching = BatchingMode(i);
    } else if (key == "kv") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"paged", "contiguous"}));
        c.kvAllocation = i == 0 ? KvAllocation::Paged : KvAllocation::Contiguous;
    } else if (key == "attention") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"flash", "naive"}));
        c.attention = i == 0 ? cpu::AttentionAlgorithm::Flash : cpu::AttentionAlgorithm::Naive;
    } else if (key == "gqa") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"grouped", "expanded"}));
        c.groupedKv = i == 0;
    } else if (key == "prefix") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"on", "off"}));
        c.prefixCaching = i == 0;
    } else if (key == "decode-graphs") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"on", "off"}));
        c.decodeGraphs = i == 0;
    } else if (key == "int8-matmul" || key == "int8-decode") {  // its name until 2026-11-29, in saved settings
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"off", "cpu", "on"}));
        c.int8Matmul = Int8Matmul(i);
    } else if (key == "local-kv") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"on", "off"}));
        c.localKvPools = i == 0;
    } else if (key == "dependent-launch") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"on", "off"}));
        c.dependentLaunch = i == 0;
    } else if (key == "eviction") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"lru", "fifo"}));
        c.eviction = i == 0 ? EvictionPolicyKind::Lru : EvictionPolicyKind::Fifo;
    } else if (key == "kv-type") {
        PAGODA_ASSIGN_OR_RETURN(const int i, choose(key, value, {"f16", "f32", "q8_0"}));
        c.kvType = std::array{DType::F16, DType::F32, DType::Q8_0}[size_t(i)];
    } else if (key == "kv-budget-mib" && value == "auto") {
        c.kvBudgetBytes = kAutoKvBudget;
    } else if (key == "context" && value == "model") {
        c.contextLength = kModelContext;
    } else {
        PAGODA_ASSIGN_OR_RETURN(const int64_t n, parseInteger(key, value));
        if (n < -1 || n > (int64_t(1) << 30)) return fail("config key '{}': {} out of range", key, n);
        if (key == "block-size") {
            c.blockSize = int(n);
        } else if (key == "max-batch") {
            c.maxBatch = int(n);
        } else if (key == "max-batch-tokens") {
            c.maxBatchTokens = int(n);
        } else if (key == "kv-budget-mib") {
            if (n < 1 || n > (int64_t(1) << 24)) return fail("config key 'kv-budget-mib': {} outside [1, 2^24]", n);
            c.kvBudgetBytes = uint64_t(n) << 20;
        } else if (key == "window") {
            c.slidingWindow = int(n);
        } else if (key == "context") {
            if (n < 1) return fail("config key 'context': {} tokens (a count of at least 1, or 'model')", n);
            c.contextLength = int(n);
        } else {
            return fail("unknown config key '{}'", key);
        }
    }
    return {};
}

}  // namespace

std::string_view batchingModeName(BatchingMode mode) {
    switch (mode) {
    case BatchingMode::Continuous:
        return "continuous";
    case BatchingMode::Static:
        return "static";
    case BatchingMode::Sequential:
        return "sequential";
    }
    return "unknown";
}

std::string_view int8MatmulName(Int8Matmul mode) {
    switch (mode) {
    case Int8Matmul::Off:
        return "off";
    case Int8Matmul::Cpu:
        return "cpu";
    case Int8Matmul::On:
        return "on";
    }
    return "unknown";
}

std::optional<Int8Matmul> int8MatmulFromName(std::string_view name) {
    for (const Int8Matmul mode : {Int8Matmul::Off, Int8Matmul::Cpu, Int8Matmul::On}) {
        if (name == int8MatmulName(mode)) return mode;
    }
    return std::nullopt;
}

OptimizationConfig OptimizationConfig::baseline() {
    OptimizationConfig c;
    c.batching = BatchingMode::Sequential;
    c.kvAllocation = KvAllocation::Contiguous;
    c.attention = cpu::AttentionAlgorithm::Naive;
    c.groupedKv = false;
    c.prefixCaching = false;
    c.decodeGraphs = false;
    c.localKvPools = false;
    c.int8Matmul = Int8Matmul::Off;
    return c;
}

OptimizationConfig OptimizationConfig::optimized() { return OptimizationConfig{}; }

bool needsCacheRebuild(const OptimizationConfig& from, const OptimizationConfig& to, const ModelConfig& model) {
    const bool local = localKvPoolsFor(to, model);
    return from.kvAllocation != to.kvAllocation || from.prefixCaching != to.prefixCaching ||
           from.eviction != to.eviction || from.blockSize != to.blockSize || from.kvBudgetBytes != to.kvBudgetBytes ||
           from.slidingWindow != to.slidingWindow || from.kvType != to.kvType ||
           from.contextLength != to.contextLength ||
           (to.kvBudgetBytes == kAutoKvBudget && to.maxBatchTokens > from.maxBatchTokens) ||
           local != localKvPoolsFor(from, model) ||
           (local && (from.maxBatch != to.maxBatch || from.maxBatchTokens != to.maxBatchTokens));
}

bool localKvPoolsFor(const OptimizationConfig& config, const ModelConfig& model) {
    return config.localKvPools && config.kvAllocation == KvAllocation::Paged &&
           localLayerPoolsFit(model, slidingWindowFor(config, model));
}

int slidingWindowFor(const OptimizationConfig& config, const ModelConfig& model) {
    return config.slidingWindow >= 0 ? config.slidingWindow : model.slidingWindow;
}

int contextFor(const OptimizationConfig& config, const ModelConfig& model) {
    return model.contextWithin(config.contextLength);
}

namespace {

KvLayout kvDims(const OptimizationConfig& config, const ModelConfig& model) {
    KvLayout dims;
    dims.nLayers = model.nLayers;
    dims.nKvHeads = model.nKvHeads;
    dims.headDim = model.headDim;
    dims.blockSize = config.blockSize;
    dims.type = config.kvType;
    return localKvPoolsFor(config, model) ? withLocalLayerPools(dims, model, config.maxBatch, config.maxBatchTokens)
                                          : dims;
}

}  // namespace

GpuRoom gpuRoomFor(const OptimizationConfig& config) {
    return {config.contextLength, config.kvType, config.maxBatchTokens};
}

KvBudgetChoice kvBudgetFor(const OptimizationConfig& config, const ModelConfig& model, uint64_t availableBytes) {
    if (config.kvBudgetBytes != kAutoKvBudget) return {config.kvBudgetBytes, false, false};
    const AutoKvBudget budget = autoKvBudget(kvDims(config, model), contextFor(config, model), availableBytes);
    return {budget.bytes, true, budget.limitedByMemory, availableBytes};
}

std::string describeKvBudget(const KvBudgetChoice& budget, const OptimizationConfig& config,
                             const ModelConfig& model) {
    if (!budget.automatic) return "set: " + formatBytes(budget.bytes);
    const std::string contexts = fmt::format("{} contexts of {} tokens", kAutoKvContexts, contextFor(config, model));
    if (!budget.limitedByMemory) return fmt::format("auto: {}, {}", contexts, formatBytes(budget.bytes));
    const uint64_t wanted = kvBudgetFor(config, model, std::numeric_limits<uint64_t>::max()).bytes;
    return fmt::format("auto: {}, what memory allows ({} available; {} need {})", formatBytes(budget.bytes),
                       formatBytes(budget.availableBytes), contexts, formatBytes(wanted));
}

Result<KvLayout> kvLayoutFor(const OptimizationConfig& config, const ModelConfig& model, uint64_t budgetBytes) {
    return kvLayoutForBudget(kvDims(config, model), budgetBytes);
}

BlockManagerConfig blockManagerConfigFor(const OptimizationConfig& config, const ModelConfig& model) {
    BlockManagerConfig manager;
    manager.blockSize = config.blockSize;
    manager.maxContext = contextFor(config, model);
    manager.allocation = config.kvAllocation;
    manager.prefixCaching = config.prefixCaching && config.kvAllocation == KvAllocation::Paged;
    manager.eviction = config.eviction;
    manager.slidingWindow = config.kvAllocation == KvAllocation::Paged ? slidingWindowFor(config, model) : 0;
    return manager;
}

Result<void> validateConfig(const OptimizationConfig& config, const ModelConfig& model) {
    if (config.maxBatch < 1) return fail("max batch {}: at least one sequence", config.maxBatch);
    if (config.maxBatchTokens < config.maxBatch) {
        return fail("max batch tokens {}: must be at least max batch ({}), one decode token each",
                    config.maxBatchTokens, config.maxBatch);
    }
    if (config.slidingWindow < -1) return fail("sliding window {}: -1 (model's), 0 (off) or positive", config.slidingWindow);
    if (config.contextLength < 0) return fail("context of {} tokens: 0 (the model's) or more", config.contextLength);
    if (config.prefixCaching && config.kvAllocation == KvAllocation::Contiguous) {
        return fail("prefix caching needs paged KV allocation, not contiguous");
    }
    const KvBudgetChoice budget = kvBudgetFor(config, model, std::numeric_limits<uint64_t>::max());
    PAGODA_ASSIGN_OR_RETURN(const KvLayout layout, kvLayoutFor(config, model, budget.bytes));
    BlockManagerConfig manager = blockManagerConfigFor(config, model);
    manager.numBlocks = layout.numBlocks;
    PAGODA_RETURN_IF_ERROR(BlockManager::create(manager));
    return {};
}

Result<OptimizationConfig> parseOptimizationConfig(std::string_view spec) {
    const size_t colon = spec.find(':');
    const std::string_view preset = spec.substr(0, colon);
    OptimizationConfig config;
    if (preset == "baseline") {
        config = OptimizationConfig::baseline();
    } else if (preset != "optimized") {
        return fail("config '{}': starts with an unknown preset '{}' (baseline or optimized)", spec, preset);
    }
    std::string_view rest = colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
    while (!rest.empty()) {
        const size_t next = rest.find(':');
        const std::string_view item = rest.substr(0, next);
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos) return fail("config '{}': '{}' is not key=value", spec, item);
        if (auto applied = applyKey(config, item.substr(0, eq), item.substr(eq + 1)); !applied) {
            return std::unexpected(withContext(fmt::format("config '{}'", spec), applied.error()));
        }
        rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    }
    return config;
}

std::string formatOptimizationConfig(const OptimizationConfig& c) {
    const bool paged = c.kvAllocation == KvAllocation::Paged;
    const bool flash = c.attention == cpu::AttentionAlgorithm::Flash;
    return fmt::format(
        "optimized:batching={}:kv={}:attention={}:gqa={}:prefix={}:decode-graphs={}:int8-matmul={}:"
        "dependent-launch={}:eviction={}:block-size={}:max-batch={}:max-batch-tokens={}:kv-budget-mib={}:window={}:"
        "kv-type={}:context={}:local-kv={}",
        batchingModeName(c.batching), paged ? "paged" : "contiguous", flash ? "flash" : "naive",
        c.groupedKv ? "grouped" : "expanded", c.prefixCaching ? "on" : "off", c.decodeGraphs ? "on" : "off",
        int8MatmulName(c.int8Matmul), c.dependentLaunch ? "on" : "off", evictionPolicyName(c.eviction), c.blockSize,
        c.maxBatch, c.maxBatchTokens,
        c.kvBudgetBytes == kAutoKvBudget ? std::string("auto") : std::to_string(c.kvBudgetBytes >> 20),
        c.slidingWindow, dtypeName(c.kvType),
        c.contextLength == kModelContext ? std::string("model") : std::to_string(c.contextLength),
        c.localKvPools ? "on" : "off");
}

}  // namespace pagoda::runtime

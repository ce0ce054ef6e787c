#pragma once
// Geometry of the paged KV pool from a memory budget: how many blocks of a
// model's K and V (every layer) fit in a number of bytes, or in a fraction
// of the host memory available now (/proc/meminfo MemAvailable); and the
// automatic budget, sized from the model and the memory available.

#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"

namespace pagoda {

struct KvBudget {
    uint64_t bytes = 0;                // explicit budget; 0: use fractionOfAvailable
    double fractionOfAvailable = 0.5;  // of MemAvailable, in (0, 1]
};

// `dims` with numBlocks = floor(budgetBytes / dims.bytesPerBlock()). With
// local-layer pools (KvLayout::local), those take dims.numLocalBlocks and
// the other layers the rest; a budget holding fewer blocks of every layer
// than that gives every layer that many.
// Errors on bad dims (layers, KV heads, head dim positive; block size 8, 16
// or 32; F16, F32 or Q8_0) and when the budget holds no block.
Result<KvLayout> kvLayoutForBudget(KvLayout dims, uint64_t budgetBytes);

// The automatic budget aims at room for this many sequences at the model's
// full context (a few chats, each able to reach the model's limit).
constexpr int kAutoKvContexts = 4;

struct AutoKvBudget {
    uint64_t bytes = 0;
    bool limitedByMemory = false;  // availableBytes, not the contexts, set the size
};

// The bytes of `dims` with whole blocks for kAutoKvContexts x contextLength
// tokens (local-layer pools: dims.numLocalBlocks, at most as many), or of
// kvLayoutForBudget(dims, availableBytes) when that is less.
AutoKvBudget autoKvBudget(const KvLayout& dims, int contextLength, uint64_t availableBytes);

// PAGODA_KV_MEMORY_MIB: the most memory an automatic KV budget takes, on
// any backend (a host or GPU shared with other work); none when unset.
// Errors name a value that is not a positive number of MiB.
Result<std::optional<uint64_t>> kvMemoryLimitFromEnvironment();

// budget.bytes, or budget.fractionOfAvailable of availableHostMemory().
Result<uint64_t> resolveKvBudget(const KvBudget& budget);

// MemAvailable of this host in bytes, read from /proc/meminfo.
Result<uint64_t> availableHostMemory();
// MemAvailable in bytes from the text of /proc/meminfo ("MemAvailable: 123 kB").
Result<uint64_t> parseMemAvailable(std::string_view meminfo);

}  // namespace pagoda

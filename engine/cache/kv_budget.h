#pragma once
// Geometry of the paged KV pool from a memory budget: how many blocks of a
// model's K and V (every layer) fit in a number of bytes, or in a fraction
// of the host memory available now (/proc/meminfo MemAvailable).

#include <cstdint>
#include <string_view>

#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"

namespace pagoda {

struct KvBudget {
    uint64_t bytes = 0;                // explicit budget; 0: use fractionOfAvailable
    double fractionOfAvailable = 0.5;  // of MemAvailable, in (0, 1]
};

// `dims` with numBlocks = floor(budgetBytes / dims.bytesPerBlock()).
// Errors on bad dims (layers, KV heads, head dim positive; block size 8, 16
// or 32; F16 or F32) and when the budget holds no block.
Result<KvLayout> kvLayoutForBudget(KvLayout dims, uint64_t budgetBytes);

// budget.bytes, or budget.fractionOfAvailable of availableHostMemory().
Result<uint64_t> resolveKvBudget(const KvBudget& budget);

// MemAvailable of this host in bytes, read from /proc/meminfo.
Result<uint64_t> availableHostMemory();
// MemAvailable in bytes from the text of /proc/meminfo ("MemAvailable: 123 kB").
Result<uint64_t> parseMemAvailable(std::string_view meminfo);

}  // namespace pagoda

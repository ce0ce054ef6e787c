#pragma once
// Helpers shared by the block manager tests.

#include <numeric>
#include <stdexcept>
#include <vector>

#include "engine/cache/block_manager.h"

namespace pagoda::test {

// A manager for `config`; throws (failing the test) when create() errors.
inline BlockManager makeManager(BlockManagerConfig config) {
    if (config.hashSeed == 0) config.hashSeed = 0x5eed;
    auto manager = BlockManager::create(config);
    if (!manager) throw std::runtime_error(manager.error().message);
    return std::move(*manager);
}

// Token ids first, first + 1, ...
inline std::vector<int32_t> iota(int n, int32_t first = 1) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    std::iota(ids.begin(), ids.end(), first);
    return ids;
}

inline std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace pagoda::test

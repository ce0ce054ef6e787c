#pragma once
// The batch-size buckets of the decode-step CUDA graphs: a decode batch is
// padded up to its bucket, so that every step of that bucket replays the
// same kernels with the same launch shapes. Pure and header-only: the
// engine picks buckets without linking CUDA.

#include <algorithm>
#include <vector>

namespace pagoda::cuda {

// 1, 2, 4, 8, then steps of 8 up to 32, then of 16 up to maxBatch (at
// least 1); the last bucket is maxBatch itself.
inline std::vector<int> defaultGraphBuckets(int maxBatch) {
    maxBatch = std::max(1, maxBatch);
    std::vector<int> buckets;
    for (int b : {1, 2, 4, 8}) {
        if (b < maxBatch) buckets.push_back(b);
    }
    for (int b = 16; b < std::min(maxBatch, 33); b += 8) buckets.push_back(b);
    for (int b = 48; b < maxBatch; b += 16) buckets.push_back(b);
    buckets.push_back(maxBatch);
    return buckets;
}

// The smallest bucket holding nTokens decode tokens, or -1 when nTokens is
// below 1 or above the largest bucket. `buckets` ascending.
inline int graphBucketFor(int nTokens, const std::vector<int>& buckets) {
    if (nTokens < 1) return -1;
    const auto bucket = std::lower_bound(buckets.begin(), buckets.end(), nTokens);
    return bucket == buckets.end() ? -1 : *bucket;
}

}  // namespace pagoda::cuda

#pragma once
// Streaming read bandwidth of this machine, measured the way a decode step
// reads weights: every thread sums its own contiguous share of a buffer far
// larger than the caches.

#include <cstddef>

#include "kernels/cpu/cpu_context.h"

namespace pagoda::cpu {

struct BandwidthSample {
    double bytesPerSecond = 0;
    double seconds = 0;
};

// Reads `bytes` (rounded down to 64-byte lines) once per repetition after a
// warm-up pass; returns the median repetition.
BandwidthSample measureReadBandwidth(const CpuContext& ctx, size_t bytes, int repetitions);

}  // namespace pagoda::cpu

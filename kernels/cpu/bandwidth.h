#pragma once
// The machine's streaming read bandwidth, measured the way decode reads
// weights: every thread of the pool sums its share of one large buffer.
// The ceiling against which matvec GB/s and generation speed are judged.

#include <cstddef>

#include "kernels/cpu/cpu_context.h"

namespace pagoda::cpu {

struct BandwidthSample {
    double bytesPerSecond = 0.0;  // median over the repetitions
    size_t bytes = 0;             // read per repetition
    int repetitions = 0;
};

// Allocates and touches `bytes` (rounded down to whole cache lines, at least
// one), reads it once to warm up, then times `repetitions` (>= 1) full reads
// on all of ctx.pool's threads (the caller alone when it is null).
BandwidthSample measureReadBandwidth(const CpuContext& ctx, size_t bytes, int repetitions);

}  // namespace pagoda::cpu

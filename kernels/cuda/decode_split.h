#pragma once
// How a decode row's context is cut into splits (flash-decoding): the
// planner (attention_plan.cpp) fixes the number of splits for a launch, and
// the decode kernel cuts each row's own context over them with this very
// function, so that a row shorter than the planned context (every row of a
// CUDA graph planned for the model's whole context, the shorter rows of a
// mixed batch) still spreads over all the splits rather than leaving most
// of them empty behind one long first split.

#include "kernels/cuda/host_device.h"

namespace pagoda::cuda {

constexpr int kMinSplitTokens = 64;  // a split streams at least this much context, unless the context is shorter
constexpr int kMaxSplits = 32;

// Positions per split for a row that sees `context` positions over
// `nSplits` splits: an even share, at least kMinSplitTokens, rounded up to
// a whole number of blocks. nSplits of them always cover the context.
PAGODA_HD int decodeSplitTokens(int context, int nSplits, int blockSize) {
    const int even = (context + nSplits - 1) / nSplits;
    const int atLeast = even > kMinSplitTokens ? even : kMinSplitTokens;
    return (atLeast + blockSize - 1) / blockSize * blockSize;
}

}  // namespace pagoda::cuda

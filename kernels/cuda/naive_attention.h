#pragma once
// The baseline attention that materializes scores: for every query row and
// head, the full score row over its context is written to memory, then
// softmaxed, then multiplied with V. What the flash kernels are measured
// against; any even head dim up to 256.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// rows: device [nRows][kRowDescInts] (every query row of the call);
// scores: device [nRows][nHeads][context] floats, context = the plan's
// naiveContext.
Status naiveAttention(cudaStream_t stream, const AttentionArgs& args, const int32_t* rows, int nRows, int context,
                      float* scores);

}  // namespace pagoda::cuda

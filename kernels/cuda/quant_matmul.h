#pragma once
// Products with Q8_0 and Q4_0 weight matrices read in place (no dequantized
// copy): a warp-per-row matrix-vector kernel for decode batches of up to
// kQuantMatvecMaxTokens tokens, and a shared-memory tiled kernel beyond.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

constexpr int64_t kQuantMatvecMaxTokens = 8;

// y[t][r] = sum_c W[r][c] * x[t][c]. w: Q8_0 or Q4_0; x: device
// [nTokens][w.cols] f32 (16-byte aligned); y: device [nTokens][w.rows] f32.
Status quantMatmul(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens);

}  // namespace pagoda::cuda

#pragma once
// Products with block-quantized weight matrices (Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: isCudaQuantType) read in place, no
// dequantized copy: matvec (matvec.h) for decode batches of up to
// kQuantMatvecMaxTokens tokens (one read of the weights), and a
// shared-memory tiled kernel beyond, which walks rows in 32-element chunks
// decoded by quant_blocks.h.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

constexpr int64_t kQuantMatvecMaxTokens = 8;

// y[t][r] = sum_c W[r][c] * x[t][c]. w: a block-quantized type, w.cols a
// multiple of its block size (32, or 256 for the K-quants); x: device
// [nTokens][w.cols] f32 (16-byte aligned); y: device [nTokens][w.rows] f32.
Status quantMatmul(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens);

}  // namespace pagoda::cuda

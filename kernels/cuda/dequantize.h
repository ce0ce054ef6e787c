#pragma once
// A block-quantized weight matrix expanded to f16, so that products with
// many tokens (prefill) run on tensor cores through cuBLAS instead of
// quantMatmul's f32 tiles.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// out[r][c] = W[r][c] rounded to f16, for rows [rowBegin, rowEnd) of w
// (isCudaQuantType). out: device [rowEnd - rowBegin][w.cols] f16, 16-byte
// aligned. Values beyond the f16 range (65504) become infinities; weights
// of real models are orders of magnitude smaller.
Status dequantizeToF16(cudaStream_t stream, const DeviceWeight& w, int64_t rowBegin, int64_t rowEnd, void* out);

// y[t][r] = sum_c W[r][c] * x[t][c] for a block-quantized w, panelRows rows
// of W at a time: each panel dequantized to f16 into `panel` (device,
// [panelRows][w.cols] f16, 16-byte aligned), multiplied by cuBLASLt (gemm(),
// its `gemmScratch` sized by gemmScratchBytes for an F16 panel), into y
// directly when one panel holds W, else into `product` (device, [nTokens]
// [panelRows] f32) and copied to its columns of y.
Status dequantizedGemm(const BlasHandles& handles, cudaStream_t stream, const DeviceWeight& w, const float* x,
                       float* y, int64_t nTokens, int64_t panelRows, void* panel, float* product, void* gemmScratch);

}  // namespace pagoda::cuda

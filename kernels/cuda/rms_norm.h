#pragma once
// RMSNorm of f32 rows.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight. x, y: device [nRows][n]
// (y may alias x); weight: device [n].
Status rmsNorm(cudaStream_t stream, const float* x, const float* weight, float* y, int64_t nRows, int64_t n,
               float eps);

}  // namespace pagoda::cuda

#pragma once
// RMSNorm of f32 rows, alone or fused with the residual add before it.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight. x, y: device [nRows][n]
// (y may alias x); weight: device [n].
Status rmsNorm(const LaunchStream& stream, const float* x, const float* weight, float* y, int64_t nRows, int64_t n,
               float eps);

// x[r] += delta[r], then y[r] = rmsNorm(x[r]): one kernel where add() and
// rmsNorm() take two (a launch and a read of x fewer), the same bits.
// x, delta, y: device [nRows][n] (y must not alias x or delta); weight:
// device [n].
Status addRmsNorm(const LaunchStream& stream, float* x, const float* delta, const float* weight, float* y,
                  int64_t nRows, int64_t n, float eps);

}  // namespace pagoda::cuda

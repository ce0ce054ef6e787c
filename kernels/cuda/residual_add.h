#pragma once
// Residual additions: y += x, and a bias added to every row.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// y[i] += x[i]; device [n] each.
Status add(const LaunchStream& stream, float* y, const float* x, int64_t n);

// y[r][i] += bias[i] for every row r. y: device [nRows][n]; bias: device [n].
Status addBias(const LaunchStream& stream, float* y, const float* bias, int64_t nRows, int64_t n);

}  // namespace pagoda::cuda

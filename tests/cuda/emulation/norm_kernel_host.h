#pragma once
// The RMSNorm kernels of kernels/cuda/rms_norm_kernel.cuh, compiled as host
// C++ and run by the CTA emulator in the launch shape rms_norm.cu gives
// them: a CTA of norm::kThreads per row.

#include <cstdint>

#include "tests/cuda/emulation/cta_emulator.h"

namespace pagoda::cuda::emulation {

// rmsNormKernel. x, y: [nRows][n]; weight: [n] (host memory).
Findings runRmsNormKernel(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps,
                          LaunchConfig config);

// addRmsNormKernel: x += delta, then y = RMSNorm(x).
Findings runAddRmsNormKernel(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                             float eps, LaunchConfig config);

}  // namespace pagoda::cuda::emulation

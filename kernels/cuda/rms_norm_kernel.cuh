#pragma once
// The RMSNorm kernels, launched by rms_norm.cu: the norm alone, and fused
// with the residual add before it. A header of their own so that a host
// emulation can compile this very source without nvcc.

#include <cmath>
#include <cstdint>

#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda::norm {

constexpr int kThreads = 512;

// Row blockIdx.x: y = x * weight / sqrt(mean(x^2) + eps). Thread i takes
// elements i, i + kThreads, ... in both passes. x, y: [nRows][n]; weight: [n]
__global__ void __launch_bounds__(kThreads)
    rmsNormKernel(const float* x, const float* weight, float* y, int64_t n, float eps) {
    awaitPrecedingKernel();
    __shared__ float scratch[32];
    const float* xr = x + int64_t(blockIdx.x) * n;
    float* yr = y + int64_t(blockIdx.x) * n;
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) sum = fmaf(xr[c], xr[c], sum);
    sum = blockSum(sum, scratch);
    const float scale = 1.0f / sqrtf(sum / float(n) + eps);
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = xr[c] * scale * weight[c];
}

// x += delta, then y = RMSNorm(x) as rmsNormKernel computes it, in one
// pass over x and delta: each thread reads back only what it wrote. The
// same bits as the add kernel followed by rmsNormKernel.
__global__ void __launch_bounds__(kThreads)
    addRmsNormKernel(float* x, const float* delta, const float* weight, float* y, int64_t n, float eps) {
    awaitPrecedingKernel();
    __shared__ float scratch[32];
    float* xr = x + int64_t(blockIdx.x) * n;
    const float* dr = delta + int64_t(blockIdx.x) * n;
    float* yr = y + int64_t(blockIdx.x) * n;
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
        const float v = xr[c] + dr[c];
        xr[c] = v;
        sum = fmaf(v, v, sum);
    }
    sum = blockSum(sum, scratch);
    const float scale = 1.0f / sqrtf(sum / float(n) + eps);
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = xr[c] * scale * weight[c];
}

}  // namespace pagoda::cuda::norm

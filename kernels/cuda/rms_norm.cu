#include "kernels/cuda/rms_norm.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda {
namespace {

constexpr int kThreads = 512;

// grid: nRows; x, y: [nRows][n]; weight: [n]
__global__ void rmsNormKernel(const float* x, const float* weight, float* y, int64_t n, float eps) {
    __shared__ float scratch[32];
    const float* xr = x + int64_t(blockIdx.x) * n;
    float* yr = y + int64_t(blockIdx.x) * n;
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) sum += xr[c] * xr[c];
    sum = blockSum(sum, scratch);
    const float scale = 1.0f / sqrtf(sum / float(n) + eps);
    for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = xr[c] * scale * weight[c];
}

}  // namespace

Status rmsNorm(cudaStream_t stream, const float* x, const float* weight, float* y, int64_t nRows, int64_t n,
               float eps) {
    if (nRows < 0 || n < 1 || !(eps >= 0.0f)) {
        return Status::error("rmsNorm: " + std::to_string(nRows) + " rows of " + std::to_string(n) + ", eps " +
                             std::to_string(eps));
    }
    if (nRows == 0) return {};
    rmsNormKernel<<<unsigned(nRows), kThreads, 0, stream>>>(x, weight, y, n, eps);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

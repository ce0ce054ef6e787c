#include "kernels/cuda/residual_add.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda {
namespace {

// y, x: [n]
__global__ void addKernel(float* y, const float* x, int64_t n) {
    awaitPrecedingKernel();
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        y[i] += x[i];
    }
}

// y: [total / n][n]; bias: [n]
__global__ void addBiasKernel(float* y, const float* bias, int64_t total, int64_t n) {
    awaitPrecedingKernel();
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        y[i] += bias[i % n];
    }
}

int blocksFor(int64_t n) { return int(std::min<int64_t>(ceilDiv(n, 256), 65535)); }

}  // namespace

Status add(const LaunchStream& stream, float* y, const float* x, int64_t n) {
    if (n < 0) return Status::error("add: n = " + std::to_string(n));
    if (n == 0) return {};
    launchKernel(stream, addKernel, blocksFor(n), 256, 0, y, x, n);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

Status addBias(const LaunchStream& stream, float* y, const float* bias, int64_t nRows, int64_t n) {
    if (nRows < 0 || n < 1) {
        return Status::error("addBias: " + std::to_string(nRows) + " rows of " + std::to_string(n));
    }
    if (nRows == 0) return {};
    launchKernel(stream, addBiasKernel, blocksFor(nRows * n), 256, 0, y, bias, nRows * n, n);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

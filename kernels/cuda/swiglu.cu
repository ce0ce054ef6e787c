#include "kernels/cuda/swiglu.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace pagoda::cuda {
namespace {

// gate, up, out: [n]
__global__ void swigluKernel(const float* gate, const float* up, float* out, int64_t n) {
    awaitPrecedingKernel();
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        out[i] = swigluValue(gate[i], up[i]);
    }
}

}  // namespace

Status swiglu(const LaunchStream& stream, const float* gate, const float* up, float* out, int64_t n) {
    if (n < 0) return Status::error("swiglu: n = " + std::to_string(n));
    if (n == 0) return {};
    const int blocks = int(std::min<int64_t>(ceilDiv(n, 256), 65535));
    launchKernel(stream, swigluKernel, blocks, 256, 0, gate, up, out, n);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

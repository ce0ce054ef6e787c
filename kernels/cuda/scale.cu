#include "kernels/cuda/scale.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/activations.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace pagoda::cuda {
namespace {

struct Times {
    float s;
    __device__ float operator()(float x) const { return x * s; }
};

struct Capped {
    float cap;
    __device__ float operator()(float x) const { return softcapValue(x, cap); }
};

// x[i] = f(x[i]); x: [n]
template <class F>
__global__ void mapKernel(float* x, F f, int64_t n) {
    awaitPrecedingKernel();
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        x[i] = f(x[i]);
    }
}

template <class F>
Status map(const LaunchStream& stream, float* x, F f, int64_t n) {
    if (n == 0) return {};
    const int blocks = int(std::min<int64_t>(ceilDiv(n, 256), 65535));
    launchKernel(stream, mapKernel<F>, blocks, 256, 0, x, f, n);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace

Status scale(const LaunchStream& stream, float* x, float s, int64_t n) {
    if (n < 0) return Status::error("scale: n = " + std::to_string(n));
    return map(stream, x, Times{s}, n);
}

Status softcap(const LaunchStream& stream, float* x, float cap, int64_t n) {
    if (n < 0 || !(cap > 0.0f)) {
        return Status::error("softcap: n = " + std::to_string(n) + ", cap " + std::to_string(cap));
    }
    return map(stream, x, Capped{cap}, n);
}

}  // namespace pagoda::cuda

#include "kernels/cuda/swiglu.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/activations.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace pagoda::cuda {
namespace {

struct Silu {
    __device__ float operator()(float g, float u) const { return swigluValue(g, u); }
};

struct Gelu {
    __device__ float operator()(float g, float u) const { return gegluValue(g, u); }
};

// out[i] = Gate{}(gate[i], up[i]); gate, up, out: [n]
template <class Gate>
__global__ void gatedKernel(const float* gate, const float* up, float* out, int64_t n) {
    awaitPrecedingKernel();
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        out[i] = Gate{}(gate[i], up[i]);
    }
}

template <class Gate>
Status gated(const char* name, const LaunchStream& stream, const float* gate, const float* up, float* out,
             int64_t n) {
    if (n < 0) return Status::error(std::string(name) + ": n = " + std::to_string(n));
    if (n == 0) return {};
    const int blocks = int(std::min<int64_t>(ceilDiv(n, 256), 65535));
    launchKernel(stream, gatedKernel<Gate>, blocks, 256, 0, gate, up, out, n);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace

Status swiglu(const LaunchStream& stream, const float* gate, const float* up, float* out, int64_t n) {
    return gated<Silu>("swiglu", stream, gate, up, out, n);
}

Status geglu(const LaunchStream& stream, const float* gate, const float* up, float* out, int64_t n) {
    return gated<Gelu>("geglu", stream, gate, up, out, n);
}

}  // namespace pagoda::cuda

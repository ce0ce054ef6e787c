#include "kernels/cuda/rope.h"

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {
namespace {

// grid: (nTokens, ceil(nHeads * pairs / blockDim.x)); each thread rotates
// one pair of one head, its angle in double (as the CPU). (One thread per
// pair looping over the heads took 9 us per decode token on an H200: the
// heads' loads and stores ran one after another.)
// x: [nTokens][nHeads][headDim]; positions: [nTokens]
__global__ void ropeKernel(float* x, int nHeads, int headDim, int ropeDim, double base, bool neox,
                           const int32_t* positions) {
    const int pairs = ropeDim / 2;
    const int index = blockIdx.y * blockDim.x + threadIdx.x;
    if (index >= nHeads * pairs) return;
    const int h = index / pairs;
    const int i = index % pairs;
    const double position = positions[blockIdx.x];
    double sinTheta;
    double cosTheta;
    sincos(position * pow(base, -2.0 * i / ropeDim), &sinTheta, &cosTheta);
    float* head = x + (int64_t(blockIdx.x) * nHeads + h) * headDim;
    const int i0 = neox ? i : 2 * i;
    const int i1 = neox ? i + pairs : 2 * i + 1;
    const double a = head[i0];
    const double b = head[i1];
    head[i0] = float(a * cosTheta - b * sinTheta);
    head[i1] = float(a * sinTheta + b * cosTheta);
}

}  // namespace

Status rope(cudaStream_t stream, float* x, int nTokens, int nHeads, const int32_t* positions, const RopeShape& shape) {
    if (nTokens < 0 || nHeads < 1 || shape.headDim < 2 || shape.ropeDim < 2 || shape.ropeDim % 2 != 0 ||
        shape.ropeDim > shape.headDim) {
        return Status::error("rope: " + std::to_string(nTokens) + " tokens of " + std::to_string(nHeads) +
                             " heads, head dim " + std::to_string(shape.headDim) + ", rope dim " +
                             std::to_string(shape.ropeDim));
    }
    if (nTokens == 0) return {};
    constexpr int kThreads = 128;
    const dim3 grid(unsigned(nTokens), unsigned((nHeads * (shape.ropeDim / 2) + kThreads - 1) / kThreads));
    ropeKernel<<<grid, kThreads, 0, stream>>>(x, nHeads, shape.headDim, shape.ropeDim, double(shape.base), shape.neox,
                                              positions);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

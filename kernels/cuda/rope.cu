#include "kernels/cuda/rope.h"

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {
namespace {

// grid: nTokens; each thread rotates pair i of every head of one token.
// x: [nTokens][nHeads][headDim]; positions: [nTokens]
__global__ void ropeKernel(float* x, int nHeads, int headDim, int ropeDim, double base, bool neox,
                           const int32_t* positions) {
    const int pairs = ropeDim / 2;
    const double position = positions[blockIdx.x];
    float* token = x + int64_t(blockIdx.x) * nHeads * headDim;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        double sinTheta;
        double cosTheta;
        sincos(position * pow(base, -2.0 * i / ropeDim), &sinTheta, &cosTheta);
        const int i0 = neox ? i : 2 * i;
        const int i1 = neox ? i + pairs : 2 * i + 1;
        for (int h = 0; h < nHeads; ++h) {
            float* head = token + int64_t(h) * headDim;
            const double a = head[i0];
            const double b = head[i1];
            head[i0] = float(a * cosTheta - b * sinTheta);
            head[i1] = float(a * sinTheta + b * cosTheta);
        }
    }
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
    const int threads = shape.ropeDim / 2 < 128 ? 64 : 128;
    ropeKernel<<<nTokens, threads, 0, stream>>>(x, nHeads, shape.headDim, shape.ropeDim, double(shape.base),
                                                shape.neox, positions);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

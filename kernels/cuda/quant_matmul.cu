#include "kernels/cuda/quant_matmul.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/matvec.h"
#include "kernels/cuda/quant_blocks.h"

namespace pagoda::cuda {
namespace {

// Rows are walked in 32-element chunks: chunk c of a row is chunk
// c % kChunksPerBlock of its block c / kChunksPerBlock (1 chunk per block
// for the 32-element types, 8 for the K-quants).
template <DType Q>
constexpr int kChunksPerBlock = QuantTraits<Q>::kElements / 32;

constexpr int kTileRows = 64;
constexpr int kTileTokens = 32;
constexpr int kTileThreads = 256;

// Tiles of 64 rows x 32 tokens, one 32-column chunk per step: the chunk is
// decoded into shared memory (4 threads per row, 8 elements each), each
// thread computes 4 rows x 2 tokens. grid: (ceil(rows / 64), ceil(nTokens / 32)).
// w: [rows][cols / kElements] blocks; x: [nTokens][cols]; y: [nTokens][rows]
template <DType Q>
__global__ void __launch_bounds__(kTileThreads)
    quantMatmulTiledKernel(const typename QuantTraits<Q>::Block* w, const float* x, float* y, int64_t rows,
                           int64_t cols, int64_t nTokens) {
    constexpr int kChunks = kChunksPerBlock<Q>;
    __shared__ __align__(16) float ws[32][kTileRows + 4];    // [k][row]
    __shared__ __align__(16) float xs[32][kTileTokens + 4];  // [k][token]
    const int tid = threadIdx.x;
    const int64_t row0 = int64_t(blockIdx.x) * kTileRows;
    const int64_t t0 = int64_t(blockIdx.y) * kTileTokens;
    const int64_t nChunks = cols / 32;
    const int64_t blocksPerRow = cols / QuantTraits<Q>::kElements;
    const int tr = tid % 16;  // rows tr*4 .. tr*4+3
    const int tc = tid / 16;  // tokens tc*2, tc*2+1
    float acc[4][2] = {};

    for (int64_t c = 0; c < nChunks; ++c) {
        {  // 4 threads per row, 8 weights each
            const int r = tid / 4;
            const int e = tid % 4;
            float v[8];
            if (row0 + r < rows) {
                QuantTraits<Q>::decode8(w[(row0 + r) * blocksPerRow + c / kChunks], int(c % kChunks), e, v);
            } else {
#pragma unroll
                for (int i = 0; i < 8; ++i) v[i] = 0.0f;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) ws[8 * e + i][r] = v[i];
        }
        {  // 8 threads per token, one float4 each
            const int t = tid / 8;
            const int k = (tid % 8) * 4;
            float4 xv = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (t0 + t < nTokens) xv = *reinterpret_cast<const float4*>(x + (t0 + t) * cols + c * 32 + k);
            xs[k][t] = xv.x;
            xs[k + 1][t] = xv.y;
            xs[k + 2][t] = xv.z;
            xs[k + 3][t] = xv.w;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < 32; ++k) {
            const float4 a = *reinterpret_cast<const float4*>(&ws[k][tr * 4]);
            const float2 bv = *reinterpret_cast<const float2*>(&xs[k][tc * 2]);
            acc[0][0] += a.x * bv.x;
            acc[1][0] += a.y * bv.x;
            acc[2][0] += a.z * bv.x;
            acc[3][0] += a.w * bv.x;
            acc[0][1] += a.x * bv.y;
            acc[1][1] += a.y * bv.y;
            acc[2][1] += a.z * bv.y;
            acc[3][1] += a.w * bv.y;
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const int64_t row = row0 + tr * 4 + i;
            const int64_t t = t0 + tc * 2 + j;
            if (row < rows && t < nTokens) y[t * rows + row] = acc[i][j];
        }
    }
}

template <DType Q>
void launchTiled(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    using Block = typename QuantTraits<Q>::Block;
    const dim3 grid(unsigned(ceilDiv(w.rows, kTileRows)), unsigned(ceilDiv(nTokens, kTileTokens)));
    quantMatmulTiledKernel<Q><<<grid, kTileThreads, 0, stream>>>(static_cast<const Block*>(w.data), x, y, w.rows,
                                                                  w.cols, nTokens);
}

}  // namespace

Status quantMatmul(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    if (!isCudaQuantType(w.type)) {
        return Status::error("quantMatmul: weight type " + std::string(dtypeName(w.type)) +
                             " (q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k or q6_k)");
    }
    const int64_t block = dtypeInfo(w.type).blockElements;
    if (nTokens < 0 || w.rows < 1 || w.cols < block || w.cols % block != 0) {
        return Status::error("quantMatmul: " + std::to_string(nTokens) + " tokens through a " +
                             std::to_string(w.rows) + " x " + std::to_string(w.cols) + " " +
                             std::string(dtypeName(w.type)) + " matrix (columns must be a multiple of " +
                             std::to_string(block) + ")");
    }
    if (!quantBlocksAligned(w)) {
        return Status::error("quantMatmul: " + std::string(dtypeName(w.type)) + " blocks misaligned");
    }
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) return Status::error("quantMatmul: x is not 16-byte aligned");
    if (nTokens == 0) return {};
    if (nTokens <= kQuantMatvecMaxTokens) return matvec(stream, w, x, y, nTokens);
    visitQuantType(w.type, [&](auto q) { launchTiled<decltype(q)::value>(stream, w, x, y, nTokens); });
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

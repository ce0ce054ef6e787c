#include "kernels/cuda/quant_matmul.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda {
namespace {

// 32 weights of one block as floats (scale applied by the caller):
// Q8_0 values q, Q4_0 values q - 8. Blocks are 2-byte aligned (34 and 18
// bytes), so they are read 16 bits at a time.
template <DType Q>
struct QuantBlock;

template <>
struct QuantBlock<DType::Q8_0> {
    using Block = BlockQ8_0;
    __device__ static void load(const Block& b, float (&q)[32]) {
        const uint16_t* words = reinterpret_cast<const uint16_t*>(b.qs);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            const uint16_t w = words[i];
            q[2 * i] = float(int8_t(w & 0xff));
            q[2 * i + 1] = float(int8_t(w >> 8));
        }
    }
    // Values 8e..8e+7 of the block.
    __device__ static void loadEighth(const Block& b, int e, float (&q)[8]) {
#pragma unroll
        for (int i = 0; i < 8; ++i) q[i] = float(b.qs[8 * e + i]);
    }
};

template <>
struct QuantBlock<DType::Q4_0> {
    using Block = BlockQ4_0;
    __device__ static void load(const Block& b, float (&q)[32]) {
        const uint16_t* words = reinterpret_cast<const uint16_t*>(b.qs);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint16_t w = words[i];
            q[2 * i] = float(int(w & 0x0f) - 8);
            q[2 * i + 1] = float(int((w >> 8) & 0x0f) - 8);
            q[2 * i + 16] = float(int((w >> 4) & 0x0f) - 8);
            q[2 * i + 17] = float(int(w >> 12) - 8);
        }
    }
    __device__ static void loadEighth(const Block& b, int e, float (&q)[8]) {
        const int first = 8 * (e % 2);  // element i < 16: low nibble of qs[i]; i >= 16: high nibble of qs[i - 16]
        const bool high = e >= 2;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint8_t byte = b.qs[first + i];
            q[i] = float(int(high ? byte >> 4 : byte & 0x0f) - 8);
        }
    }
};

constexpr int kMatvecWarps = 4;

// One warp per weight row, lanes striding over its blocks, NT tokens at a
// time. grid: (ceil(rows / kMatvecWarps), ceil(nTokens / NT)).
// w: [rows][cols / 32] blocks; x: [nTokens][cols]; y: [nTokens][rows]
template <DType Q, int NT>
__global__ void quantMatvecKernel(const typename QuantBlock<Q>::Block* w, const float* x, float* y, int64_t rows,
                                  int64_t cols, int64_t nTokens) {
    const int lane = threadIdx.x % 32;
    const int64_t row = int64_t(blockIdx.x) * kMatvecWarps + threadIdx.x / 32;
    const int64_t t0 = int64_t(blockIdx.y) * NT;
    if (row >= rows) return;
    const int64_t nBlocks = cols / 32;
    const typename QuantBlock<Q>::Block* wRow = w + row * nBlocks;
    float acc[NT] = {};
    for (int64_t b = lane; b < nBlocks; b += 32) {
        float q[32];
        QuantBlock<Q>::load(wRow[b], q);
        const float d = halfBitsToFloat(wRow[b].d);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            if (t0 + t >= nTokens) break;
            const float4* xv = reinterpret_cast<const float4*>(x + (t0 + t) * cols + b * 32);
            float partial = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float4 v = xv[i];
                partial += q[4 * i] * v.x + q[4 * i + 1] * v.y + q[4 * i + 2] * v.z + q[4 * i + 3] * v.w;
            }
            acc[t] += d * partial;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
        const float sum = warpSum(acc[t]);
        if (lane == 0 && t0 + t < nTokens) y[(t0 + t) * rows + row] = sum;
    }
}

constexpr int kTileRows = 64;
constexpr int kTileTokens = 32;
constexpr int kTileThreads = 256;

// Tiles of 64 rows x 32 tokens, one quant block (32 columns) per step:
// the block is dequantized into shared memory, each thread computes 4 rows
// x 2 tokens. grid: (ceil(rows / 64), ceil(nTokens / 32)).
// w: [rows][cols / 32] blocks; x: [nTokens][cols]; y: [nTokens][rows]
template <DType Q>
__global__ void __launch_bounds__(kTileThreads)
    quantMatmulTiledKernel(const typename QuantBlock<Q>::Block* w, const float* x, float* y, int64_t rows,
                           int64_t cols, int64_t nTokens) {
    __shared__ __align__(16) float ws[32][kTileRows + 4];    // [k][row]
    __shared__ __align__(16) float xs[32][kTileTokens + 4];  // [k][token]
    const int tid = threadIdx.x;
    const int64_t row0 = int64_t(blockIdx.x) * kTileRows;
    const int64_t t0 = int64_t(blockIdx.y) * kTileTokens;
    const int64_t nBlocks = cols / 32;
    const int tr = tid % 16;  // rows tr*4 .. tr*4+3
    const int tc = tid / 16;  // tokens tc*2, tc*2+1
    float acc[4][2] = {};

    for (int64_t b = 0; b < nBlocks; ++b) {
        {  // 4 threads per row, 8 weights each
            const int r = tid / 4;
            const int e = tid % 4;
            float q[8];
            float d = 0.0f;
            if (row0 + r < rows) {
                const typename QuantBlock<Q>::Block& block = w[(row0 + r) * nBlocks + b];
                QuantBlock<Q>::loadEighth(block, e, q);
                d = halfBitsToFloat(block.d);
            } else {
#pragma unroll
                for (int i = 0; i < 8; ++i) q[i] = 0.0f;
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) ws[8 * e + i][r] = d * q[i];
        }
        {  // 8 threads per token, one float4 each
            const int t = tid / 8;
            const int k = (tid % 8) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (t0 + t < nTokens) v = *reinterpret_cast<const float4*>(x + (t0 + t) * cols + b * 32 + k);
            xs[k][t] = v.x;
            xs[k + 1][t] = v.y;
            xs[k + 2][t] = v.z;
            xs[k + 3][t] = v.w;
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
void launch(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    using Block = typename QuantBlock<Q>::Block;
    const Block* blocks = static_cast<const Block*>(w.data);
    if (nTokens == 1) {
        const dim3 grid(unsigned(ceilDiv(w.rows, kMatvecWarps)), 1);
        quantMatvecKernel<Q, 1><<<grid, kMatvecWarps * 32, 0, stream>>>(blocks, x, y, w.rows, w.cols, nTokens);
    } else if (nTokens <= kQuantMatvecMaxTokens) {
        const dim3 grid(unsigned(ceilDiv(w.rows, kMatvecWarps)), unsigned(ceilDiv(nTokens, 4)));
        quantMatvecKernel<Q, 4><<<grid, kMatvecWarps * 32, 0, stream>>>(blocks, x, y, w.rows, w.cols, nTokens);
    } else {
        const dim3 grid(unsigned(ceilDiv(w.rows, kTileRows)), unsigned(ceilDiv(nTokens, kTileTokens)));
        quantMatmulTiledKernel<Q><<<grid, kTileThreads, 0, stream>>>(blocks, x, y, w.rows, w.cols, nTokens);
    }
}

}  // namespace

Status quantMatmul(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    if (w.type != DType::Q8_0 && w.type != DType::Q4_0) {
        return Status::error("quantMatmul: weight type " + std::string(dtypeName(w.type)) + " (q8_0 or q4_0)");
    }
    if (nTokens < 0 || w.rows < 1 || w.cols < 32 || w.cols % 32 != 0) {
        return Status::error("quantMatmul: " + std::to_string(nTokens) + " tokens through a " +
                             std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                             " matrix (columns must be a multiple of 32)");
    }
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) return Status::error("quantMatmul: x is not 16-byte aligned");
    if (nTokens == 0) return {};
    if (w.type == DType::Q8_0) {
        launch<DType::Q8_0>(stream, w, x, y, nTokens);
    } else {
        launch<DType::Q4_0>(stream, w, x, y, nTokens);
    }
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

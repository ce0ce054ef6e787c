#pragma once
// The RoPE and K/V store kernels, launched by rope.cu and kv_store.cu: each
// alone, and fused (q and k rotated, then k and v stored, one CTA per
// token, the angles computed once per pair for all heads). A header of
// their own so that a host emulation can compile this very source without
// nvcc.

#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/rope_shape.h"

namespace pagoda::cuda::pos {

constexpr int kThreads = 128;       // ropeKernel
constexpr int kStoreThreads = 256;  // storeKvKernel, ropeStoreKvKernel
constexpr int kMaxPairs = 128;      // rotated pairs per head the fused kernel holds angles for

// sin and cos of pair i's angle at `position`, in double (as the CPU: at
// positions in the tens of thousands a float angle is off by milliradians):
// divided by the pair's frequency factor when there are factors, then
// scaled for the context and its magnitude (RopeShape).
__device__ __forceinline__ void ropeAngle(double position, int i, const RopeShape& shape, double& sinTheta,
                                          double& cosTheta) {
    double theta = position * pow(double(shape.base), -2.0 * i / shape.ropeDim);
    if (shape.freqFactors != nullptr) theta /= double(shape.freqFactors[i]);
    const RopeScaling& s = shape.scaling;
    const double interpolated = double(s.freqScale) * theta;
    if (s.extFactor != 0.0f) {
        const double y = (i - double(s.corrLow)) / fmax(0.001, double(s.corrHigh) - double(s.corrLow));
        const double mix = (1.0 - fmin(1.0, fmax(0.0, y))) * double(s.extFactor);
        theta = interpolated * (1.0 - mix) + theta * mix;
    } else {
        theta = interpolated;
    }
    sincos(theta, &sinTheta, &cosTheta);
    sinTheta *= double(s.mscale);
    cosTheta *= double(s.mscale);
}

// Rotates pair i of a head: (2i, 2i+1), or (i, i + pairs) in the NeoX style.
__device__ __forceinline__ void rotatePair(float* head, int i, int pairs, bool neox, double sinTheta,
                                           double cosTheta) {
    const int i0 = neox ? i : 2 * i;
    const int i1 = neox ? i + pairs : 2 * i + 1;
    const double a = head[i0];
    const double b = head[i1];
    head[i0] = float(a * cosTheta - b * sinTheta);
    head[i1] = float(a * sinTheta + b * cosTheta);
}

// Token t's k and v rows, rounded to f16, into slot `slot` of the pools
// ([numBlocks][nKvHeads][blockSize][headDim]). The CTA's threads stride
// over the row.
__device__ __forceinline__ void storeTokenF16(__half* kPool, __half* vPool, const float* k, const float* v, int t,
                                              int slot, int nKvHeads, int blockSize, int headDim) {
    const int width = nKvHeads * headDim;
    const int64_t block = slot / blockSize;
    const int offset = slot % blockSize;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const int head = i / headDim;
        const int d = i % headDim;
        const int64_t dst = ((block * nKvHeads + head) * blockSize + offset) * headDim + d;
        kPool[dst] = __float2half_rn(k[int64_t(t) * width + i]);
        vPool[dst] = __float2half_rn(v[int64_t(t) * width + i]);
    }
}

// The same as Q8_0 rows, as cpu::quantizeRow writes them: per 32 elements
// the scale d = max |x| / 127 (stored as f16) and each element
// round(x / d), by the float operations the CPU uses, so the bytes are the
// CPU's. A warp takes a block of 32 (the K rows' blocks, then the V rows'):
// kKvQ8Block is the warp size.
__device__ __forceinline__ void storeTokenQ8(uint8_t* kPool, uint8_t* vPool, const float* k, const float* v, int t,
                                             int slot, int nKvHeads, int blockSize, int headDim) {
    static_assert(kKvQ8Block == 32);
    const int width = nKvHeads * headDim;
    const int blocksPerRow = headDim / kKvQ8Block;
    const int rowBytes = blocksPerRow * kKvQ8BlockBytes;
    const int64_t block = slot / blockSize;
    const int offset = slot % blockSize;
    const int lane = threadIdx.x % 32;
    const int blocks = width / kKvQ8Block;  // of K, and as many of V
    for (int b = threadIdx.x / 32; b < 2 * blocks; b += blockDim.x / 32) {
        const bool isV = b >= blocks;
        const int q = isV ? b - blocks : b;  // the block's index in the token's row of every head
        const float x = (isV ? v : k)[int64_t(t) * width + q * kKvQ8Block + lane];
        const float d = warpMax(fabsf(x)) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const int head = q / blocksPerRow;
        uint8_t* dst = (isV ? vPool : kPool) + ((block * nKvHeads + head) * blockSize + offset) * rowBytes +
                       q % blocksPerRow * kKvQ8BlockBytes;
        if (lane == 0) *reinterpret_cast<__half*>(dst) = __float2half_rn(d);
        dst[2 + lane] = uint8_t(int8_t(roundf(x * id)));
    }
}

// Token t's k and v rows into slot `slot` of the pools, f16 or Q8_0; a
// negative slot (a padding token of a CUDA graph bucket) is skipped.
__device__ __forceinline__ void storeToken(void* kPool, void* vPool, bool q8, const float* k, const float* v, int t,
                                           int slot, int nKvHeads, int blockSize, int headDim) {
    if (slot < 0) return;
    if (q8) {
        storeTokenQ8(static_cast<uint8_t*>(kPool), static_cast<uint8_t*>(vPool), k, v, t, slot, nKvHeads, blockSize,
                     headDim);
    } else {
        storeTokenF16(static_cast<__half*>(kPool), static_cast<__half*>(vPool), k, v, t, slot, nKvHeads, blockSize,
                      headDim);
    }
}

// grid: (nTokens, ceil(nHeads * pairs / kThreads)); each thread rotates one
// pair of one head. x: [nTokens][nHeads][headDim]; positions: [nTokens]
__global__ void __launch_bounds__(kThreads) ropeKernel(float* x, int nHeads, RopeShape shape,
                                                       const int32_t* positions) {
    awaitPrecedingKernel();
    const int pairs = shape.ropeDim / 2;
    const int index = blockIdx.y * blockDim.x + threadIdx.x;
    if (index >= nHeads * pairs) return;
    const int h = index / pairs;
    const int i = index % pairs;
    double sinTheta;
    double cosTheta;
    ropeAngle(positions[blockIdx.x], i, shape, sinTheta, cosTheta);
    rotatePair(x + (int64_t(blockIdx.x) * nHeads + h) * shape.headDim, i, pairs, shape.neox, sinTheta, cosTheta);
}

// grid: nTokens; kStoreThreads threads. k, v: [nTokens][nKvHeads][headDim]
__global__ void __launch_bounds__(kStoreThreads)
    storeKvKernel(void* kPool, void* vPool, bool q8, const float* k, const float* v, const int32_t* slots,
                  int nKvHeads, int blockSize, int headDim) {
    awaitPrecedingKernel();
    storeToken(kPool, vPool, q8, k, v, blockIdx.x, slots[blockIdx.x], nKvHeads, blockSize, headDim);
}

// ropeKernel on q and on k, then storeKvKernel, for token blockIdx.x: the
// same bits, one launch, and each pair's angle computed once for all the
// token's heads. grid: nTokens; kStoreThreads threads; pairs <= kMaxPairs.
// q: [nTokens][nHeads][headDim]; k, v: [nTokens][nKvHeads][headDim]
__global__ void __launch_bounds__(kStoreThreads)
    ropeStoreKvKernel(float* q, float* k, const float* v, int nHeads, int nKvHeads, RopeShape shape,
                      const int32_t* positions, const int32_t* slots, void* kPool, void* vPool, bool q8,
                      int blockSize) {
    awaitPrecedingKernel();
    __shared__ double sines[kMaxPairs];
    __shared__ double cosines[kMaxPairs];
    const int t = blockIdx.x;
    const int headDim = shape.headDim;
    const int pairs = shape.ropeDim / 2;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) ropeAngle(positions[t], i, shape, sines[i], cosines[i]);
    __syncthreads();
    for (int index = threadIdx.x; index < (nHeads + nKvHeads) * pairs; index += blockDim.x) {
        const int h = index / pairs;
        const int i = index % pairs;
        float* head = h < nHeads ? q + (int64_t(t) * nHeads + h) * headDim
                                 : k + (int64_t(t) * nKvHeads + h - nHeads) * headDim;
        rotatePair(head, i, pairs, shape.neox, sines[i], cosines[i]);
    }
    __syncthreads();  // the token's rotated k, written above by other threads of the CTA
    storeToken(kPool, vPool, q8, k, v, t, slots[t], nKvHeads, blockSize, headDim);
}

}  // namespace pagoda::cuda::pos

#pragma once
// Device helpers shared by the kernels: warp/block reductions and reading
// one element of a GGUF row (F32, F16, BF16, Q8_0, Q4_0). Included by .cu
// files only.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace pagoda::cuda {

constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

__host__ __device__ constexpr int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

__device__ __forceinline__ float warpSum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}

// Sum over the block; every thread gets the result. blockDim.x is a
// multiple of 32, at most 1024. `scratch` holds 32 floats.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    v = warpSum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    const int nWarps = blockDim.x / 32;
    v = lane < nWarps ? scratch[lane] : 0.0f;
    return warpSum(v);
}

__device__ __forceinline__ float blockMax(float v, float* scratch) {
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    v = warpMax(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    const int nWarps = blockDim.x / 32;
    v = lane < nWarps ? scratch[lane] : -INFINITY;
    return warpMax(v);
}

__device__ __forceinline__ float halfBitsToFloat(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// Element c of a row stored as `type` (one of the five types the CUDA
// backend computes with).
__device__ __forceinline__ float loadElement(DType type, const uint8_t* row, int64_t c) {
    switch (type) {
    case DType::F32: return reinterpret_cast<const float*>(row)[c];
    case DType::F16: return halfBitsToFloat(reinterpret_cast<const uint16_t*>(row)[c]);
    case DType::BF16: return __bfloat162float(__ushort_as_bfloat16(reinterpret_cast<const uint16_t*>(row)[c]));
    case DType::Q8_0: {
        const BlockQ8_0& b = reinterpret_cast<const BlockQ8_0*>(row)[c / kQK8_0];
        return halfBitsToFloat(b.d) * float(b.qs[c % kQK8_0]);
    }
    case DType::Q4_0: {
        const BlockQ4_0& b = reinterpret_cast<const BlockQ4_0*>(row)[c / kQK4_0];
        const int i = int(c % kQK4_0);
        const int q = i < kQK4_0 / 2 ? (b.qs[i] & 0x0f) : (b.qs[i - kQK4_0 / 2] >> 4);
        return halfBitsToFloat(b.d) * float(q - 8);
    }
    default: return 0.0f;
    }
}

}  // namespace pagoda::cuda

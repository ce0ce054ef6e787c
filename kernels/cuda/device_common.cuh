#pragma once
// Device helpers shared by the kernels: warp/block reductions. (Decoding
// weights is quant_blocks.h, which the host tests build too.) Included by
// .cu files only.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace pagoda::cuda {

constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

__host__ __device__ constexpr int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The first statement of every kernel launchKernel (launch.cuh) starts:
// with programmatic dependent launch, blocks until the kernel before it in
// the stream has completed and its writes are visible, then lets the
// kernel after it launch its CTAs (they wait here in turn). Without it, or
// before sm_90 (which has no such launch), nothing.
__device__ __forceinline__ void awaitPrecedingKernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The same after `before()`, which may only read memory no kernel writes
// (the weights): it overlaps the kernel before.
template <class Before>
__device__ __forceinline__ void awaitPrecedingKernel(Before&& before) {
    before();
    awaitPrecedingKernel();
}

// Asks L2 for the line holding p (a hint: nothing is read into registers,
// and the host emulation does nothing).
__device__ __forceinline__ void prefetchL2(const void* p) {
#ifdef __CUDA_ARCH__
    asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
#else
    (void)p;
#endif
}

// silu(g) * u, as every SwiGLU on the device computes it (the swiglu
// kernel and the matvec that fuses it), so that both give the same bits.
__device__ __forceinline__ float swigluValue(float g, float u) { return g * u / (1.0f + expf(-g)); }

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

}  // namespace pagoda::cuda

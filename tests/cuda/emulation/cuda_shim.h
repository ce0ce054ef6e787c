#pragma once
// Just enough of CUDA for the emulated kernels (attention, matvec, RMSNorm,
// RoPE and the K/V store) to compile as host C++: the qualifiers vanish, the vector types are plain
// structs, and the built-ins (thread and block indices and sizes,
// __syncthreads, __shfl_xor_sync) go to the CTA emulator. Included before
// the kernel. shadow/ comes first on the include path: its mma_ops.cuh
// sends the tensor-core and cp.async instructions to the emulator, and its
// empty cuda_fp16.h and cuda_bf16.h stand in for CUDA's, so that the real
// kernels/cuda/device_common.cuh (warpSum, warpMax, blockSum, ...) compiles
// against this file.
//
// `__shared__` arrays a kernel declares in its body are block-scope
// thread_locals: the emulator runs every CTA on a thread of its own and
// fills those arrays with 0xff bytes (NaN as f32 and f16) first, as it
// fills the dynamic shared array (cta_emulator.h). A translation unit whose
// kernel declares `extern __shared__` instead (the dynamic array, which it
// defines and hands to the launch) defines PAGODA_EMULATION_DYNAMIC_SHARED
// before including this file.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>

#include "kernels/half.h"
#include "tests/cuda/emulation/cta_emulator.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#if defined(PAGODA_EMULATION_DYNAMIC_SHARED)
#define __shared__
#else
#define __shared__ static thread_local
#endif
#define __align__(n) __attribute__((aligned(n)))

#define threadIdx (::pagoda::cuda::emulation::threadIndex())
#define blockIdx (::pagoda::cuda::emulation::blockIndex())
#define blockDim (::pagoda::cuda::emulation::blockSize())
#define gridDim (::pagoda::cuda::emulation::gridSize())

struct __half {
    uint16_t x;
};
struct alignas(4) __half2 {
    __half x;
    __half y;
};
struct alignas(8) float2 {
    float x;
    float y;
};
struct alignas(8) uint2 {
    unsigned x;
    unsigned y;
};
struct alignas(16) int4 {
    int x;
    int y;
    int z;
    int w;
};

inline float2 make_float2(float x, float y) { return {x, y}; }
inline __half2 __floats2half2_rn(float lo, float hi) { return {{pagoda::floatToHalf(lo)}, {pagoda::floatToHalf(hi)}}; }
inline __half __float2half_rn(float x) { return {pagoda::floatToHalf(x)}; }
inline float __half2float(__half h) { return pagoda::halfToFloat(h.x); }
inline float2 __half22float2(__half2 h) { return {pagoda::halfToFloat(h.x.x), pagoda::halfToFloat(h.y.x)}; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

inline void __syncthreads(std::source_location caller = std::source_location::current()) {
    ::pagoda::cuda::emulation::syncThreads(caller);
}

// Host reads through a vector type would succeed where the device faults:
// a kernel names its vector accesses with this hook (host_device.h).
#define PAGODA_EXPECT_ALIGNED(p, bytes) \
    ::pagoda::cuda::emulation::expectAligned((p), (bytes), std::source_location::current())

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int laneMask, std::source_location caller = std::source_location::current()) {
    static_assert(sizeof(T) <= sizeof(uint64_t));
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    bits = ::pagoda::cuda::emulation::shuffleXor(bits, mask, laneMask, caller);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

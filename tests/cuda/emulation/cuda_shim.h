#pragma once
// Just enough of CUDA for the prefill attention kernel to compile as host
// C++: the qualifiers vanish, the vector types are plain structs, and the
// built-ins (thread and block indices, __syncthreads, __shfl_xor_sync) go
// to the CTA emulator. Included before the kernel; the shadow headers
// (shadow/kernels/cuda/) do the same for mma_ops.cuh and device_common.cuh.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>

#include "kernels/half.h"
#include "tests/cuda/emulation/cta_emulator.h"

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
#define __align__(n) __attribute__((aligned(n)))

#define threadIdx (::pagoda::cuda::emulation::threadIndex())
#define blockIdx (::pagoda::cuda::emulation::blockIndex())
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
struct alignas(16) int4 {
    int x;
    int y;
    int z;
    int w;
};

inline float2 make_float2(float x, float y) { return {x, y}; }
inline __half2 __floats2half2_rn(float lo, float hi) { return {{pagoda::floatToHalf(lo)}, {pagoda::floatToHalf(hi)}}; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

inline void __syncthreads(std::source_location caller = std::source_location::current()) {
    ::pagoda::cuda::emulation::syncThreads(caller);
}

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

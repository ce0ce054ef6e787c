#pragma once
// Host shadow of kernels/cuda/mma_ops.cuh for the emulated kernels:
// the same functions, sending the tensor-core and cp.async instructions to
// the CTA emulator with the caller's source line. This directory comes
// before the project root on test_cuda_emulation's include path;
// PAGODA_EMULATION_SHADOW_MMA_OPS lets the kernel's translation unit check
// that this file, not the real one, was found.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>

#include "tests/cuda/emulation/cta_emulator.h"

#define PAGODA_EMULATION_SHADOW_MMA_OPS 1

namespace pagoda::cuda {

inline void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                     std::source_location caller = std::source_location::current()) {
    emulation::mma16816(d, a, b0, b1, caller);
}

inline void ldmatrixX4(uint32_t (&r)[4], const __half* p,
                       std::source_location caller = std::source_location::current()) {
    emulation::ldmatrixX4(r, p, false, caller);
}

inline void ldmatrixX4Trans(uint32_t (&r)[4], const __half* p,
                            std::source_location caller = std::source_location::current()) {
    emulation::ldmatrixX4(r, p, true, caller);
}

inline void copyAsync16(__half* dst, const __half* src, bool valid,
                        std::source_location caller = std::source_location::current()) {
    emulation::copyAsync16(dst, src, valid, caller);
}

inline void copyAsyncCommit() { emulation::copyAsyncCommit(); }

inline void copyAsyncWaitAll(std::source_location caller = std::source_location::current()) {
    emulation::copyAsyncWaitAll(caller);
}

// ex2.approx.ftz: the device's result is within about 2 ulp of this one;
// subnormal results are flushed to zero as there.
inline float exp2Approx(float x) {
    const float y = std::exp2(x);
    return std::fpclassify(y) == FP_SUBNORMAL ? 0.0f : y;
}

inline uint32_t packHalf2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    uint32_t bits;
    std::memcpy(&bits, &h, sizeof bits);
    return bits;
}

}  // namespace pagoda::cuda

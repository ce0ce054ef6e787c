#pragma once
// What every CPU kernel needs from its caller: threads and the SIMD level.
// Owned by the CPU backend; no globals.

#include "kernels/cpu/simd.h"
#include "kernels/cpu/thread_pool.h"

namespace pagoda::cpu {

struct CpuContext {
    ThreadPool* pool = nullptr;
    SimdLevel simd = SimdLevel::Avx2;
    // Decode (nTokens == 1) with block-quantized weights
    // quantizes x to 8 bits and runs on integer dot products (matmul.h):
    // faster, but x carries up to max|x| / 254 of error per element, so a
    // decode row no longer equals the same row computed in a batch. The
    // engine's `int8-decode` optimization (off by default).
    bool quantizedDecode = false;
};

}  // namespace pagoda::cpu

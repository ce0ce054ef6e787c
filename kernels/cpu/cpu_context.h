#pragma once
// What every CPU kernel needs from its caller: threads and the SIMD level.
// Owned by the CPU backend; no globals.

#include "kernels/cpu/simd.h"
#include "kernels/cpu/thread_pool.h"

namespace pagoda::cpu {

struct CpuContext {
    ThreadPool* pool = nullptr;
    SimdLevel simd = SimdLevel::Avx2;
    // Products with block-quantized weights quantize x to 8 bits and run on
    // integer dot products (matmul.h): faster, but x carries up to
    // max|x| / 254 of error per element. Each token's outputs are the same
    // bits alone and in a batch. The engine's `int8-matmul` optimization
    // (on for the CPU in its optimized preset).
    bool int8Matmul = false;
    // The integer products take VNNI's multiply-adds where the CPU has them
    // (AVX-512 VNNI at SimdLevel::Avx512, AVX-VNNI at Avx2; the same bits
    // as AVX2's at Avx2). false: AVX2's vpmaddubsw at either level.
    bool vnni = true;
};

}  // namespace pagoda::cpu

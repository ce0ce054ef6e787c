#pragma once
// What every CPU kernel needs from its caller: threads and the SIMD level.
// Owned by the CPU backend; no globals.

#include "kernels/cpu/simd.h"
#include "kernels/cpu/thread_pool.h"

namespace pagoda::cpu {

struct CpuContext {
    ThreadPool* pool = nullptr;
    SimdLevel simd = SimdLevel::Avx2;
};

}  // namespace pagoda::cpu

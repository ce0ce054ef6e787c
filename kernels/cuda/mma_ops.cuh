#pragma once
// The tensor-core, asynchronous-copy and special-function instructions of
// the prefill attention kernel, as inline PTX (sm_80 and newer). Included
// by .cu files only.

#include <cuda_fp16.h>

#include <cstdint>

namespace pagoda::cuda {

// D[16x8] += A[16x16] · B[16x8], f16 inputs, f32 accumulators. Fragment
// layouts (PTX ISA, mma.m16n8k16): with g = lane / 4 and c = lane % 4,
// a0 = A[g][2c..2c+1], a1 = A[g+8][2c..], a2 = A[g][2c+8..], a3 = A[g+8][2c+8..];
// b0 = B[2c..2c+1][g], b1 = B[2c+8..2c+9][g];
// d0, d1 = D[g][2c..2c+1], d2, d3 = D[g+8][2c..2c+1].
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t sharedAddress(const void* p) {
    return uint32_t(__cvta_generic_to_shared(p));
}

// Four 8x8 matrices of f16 from shared memory (kernels/cuda/mma_fragments.h
// says which row each lane names).
__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const __half* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
}

__device__ __forceinline__ void ldmatrixX4Trans(uint32_t (&r)[4], const __half* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sharedAddress(p)));
}

// 16 bytes global -> shared without passing through registers; with
// `valid` false the destination is zero-filled and nothing is read.
__device__ __forceinline__ void copyAsync16(__half* dst, const __half* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void copyAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }

__device__ __forceinline__ void copyAsyncWaitAll() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// 2^x by the special-function unit alone (ex2.approx.ftz: about 2 ulp,
// subnormal results flushed to zero, 2^-inf = 0). exp2f adds instructions
// around the same unit to keep subnormal results.
__device__ __forceinline__ float exp2Approx(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t packHalf2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

}  // namespace pagoda::cuda

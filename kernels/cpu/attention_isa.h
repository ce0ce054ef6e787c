#pragma once
// Private to the CPU attention: the inner loops, one table per instruction
// set (attention_avx2.cpp, attention_avx512.cpp). The drivers in
// attention_flash.cpp and attention_naive.cpp are plain C++ that call
// through the table once per tile row or KV chunk. attention_avx512.cpp is
// compiled with AVX-512 enabled, so this header declares only plain data
// and functions.

#include <cstddef>
#include <cstdint>

namespace pagoda::cpu::detail {

struct AttentionKernels {
    // s[r * ldS + j] = scale * dot(q[r], k[j]) for r < m, j < n.
    // q: m row pointers, k: n row pointers, each headDim floats.
    void (*scores)(const float* const* q, int m, const float* const* k, int n, int headDim, float scale, float* s,
                   int ldS);
    // o[r * ldO + i] += sum_j p[r * ldP + j] * v[j][i] for r < m, i < headDim.
    // v: n row pointers of headDim floats.
    void (*accumulatePv)(const float* p, int ldP, int m, const float* const* v, int n, int headDim, float* o,
                         int ldO);
    // The same with K and V rows in fp16, converted as they are loaded.
    void (*scoresHalf)(const float* const* q, int m, const uint16_t* const* k, int n, int headDim, float scale,
                       float* s, int ldS);
    void (*accumulatePvHalf)(const float* p, int ldP, int m, const uint16_t* const* v, int n, int headDim, float* o,
                             int ldO);
    // max of x[0, n), n >= 1.
    float (*rowMax)(const float* x, int n);
    // x[i] = 2^(x[i] - shift) for i < n; returns their sum. Results below
    // 2^-126 become 0; -inf gives 0; NaN stays NaN.
    float (*exp2Sum)(float* x, int n, float shift);
    // x[i] *= factor for i < n.
    void (*scale)(float* x, int n, float factor);
    // dst[r * cols + i] = src[r * srcStride + i] (IEEE fp16) as f32, exact,
    // for r < rows, i < cols.
    void (*halfRowsToFloat)(const uint16_t* src, size_t srcStride, int rows, int cols, float* dst);
    // The same for Q8_0 rows (cols a multiple of 32): each block's fp16
    // scale times its 32 int8, exact.
    void (*q8RowsToFloat)(const std::byte* src, size_t srcStride, int rows, int cols, float* dst);
};

const AttentionKernels& attentionKernelsAvx2();
const AttentionKernels& attentionKernelsAvx512();

}  // namespace pagoda::cpu::detail

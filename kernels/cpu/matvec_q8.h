#pragma once
// Private to the CPU matmul: products with integer dot products
// (CpuContext::int8Matmul). matmul() quantizes each token's x once per
// call to 8-bit integers with a float scale per block
// (quantizeActivations), and every weight row's dot product with it runs on
// integer multiply-adds, scaled once per block in f32. Like matmul_isa.h,
// only plain data and functions: the AVX-512 file must not share inline
// code with the baseline ones.

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_isa.h"
#include "kernels/dtype.h"

namespace pagoda::cpu::detail {

// x quantized for weights in blocks of 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1):
// x[i] ~ d * qs[i], qs = x * fl(1 / d) rounded, d = max |x| / 127 over the
// block, then rounded to f16, as llama.cpp's reference Q8_0 quantizer
// (its AVX2 ones multiply by 127 / max |x|, at most an ulp apart; with Q8_0
// weights a prompt's logits are its to 2.0e-7, tests/peer); sum = sum of
// qs, for the offsets (Q4_0's -8, Q5_0's -16, Q4_1's and Q5_1's m).
struct XBlockQ8_32 {
    float d;
    int32_t sum;
    int8_t qs[kQK8_0];
};

// x quantized for K-quant weights (blocks of 256), as llama.cpp's Q8_K:
// qs[i] = x[i] * s rounded to nearest even, s = 127 / max |x|, d = 1 / s
// (within an ulp of max |x| / 127; with K-quant weights its products and
// ours are equal, tests/peer); sums[k] = sum of qs[16k .. 16k + 15], for the
// K-quants' offsets (q - 32, -dmin * m_j), which multiply sums of x.
struct XBlockQ8_256 {
    float d;
    int16_t sums[kQK_K / 16];
    int8_t qs[kQK_K];
};

// Whether products with weights of `type` can take the integer path.
bool hasInt8Kernel(DType type);

// Bytes quantizeActivations writes for `cols` elements (a multiple of
// type's block size).
size_t q8ActivationBytes(DType type, int64_t cols);

// out: [cols / block] XBlockQ8_32 or XBlockQ8_256, whichever `type` reads.
// A block holding inf or NaN gets a non-finite d, so the outputs it
// touches come out non-finite too.
void quantizeActivations(DType type, const float* x, int64_t cols, uint8_t* out);

// y for output rows [rowBegin, rowEnd) and every token of a task whose task.xq
// quantizeActivations filled. AvxVnni needs AVX-VNNI (detectAvxVnni()) and
// gives AVX2's bits; Avx512Vnni needs AVX-512 VNNI (detectAvx512Vnni()).
void matmulQ8RowsAvx2(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd);
void matmulQ8RowsAvxVnni(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd);
void matmulQ8RowsAvx512Vnni(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd);

}  // namespace pagoda::cpu::detail

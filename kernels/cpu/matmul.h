#pragma once
// Weight-matrix products that read F32/F16/BF16 and GGUF block-quantized
// rows (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)
// directly (no dequantized copy of the weights), multi-threaded over output
// rows.

#include <cstdint>
#include <string_view>

#include "kernels/cpu/cpu_context.h"
#include "kernels/dtype.h"

namespace pagoda::cpu {

// A row-major weight matrix as stored in GGUF: `rows` rows (output
// features), each of `cols` elements (input features) encoded in `type`,
// rowBytes(type, cols) bytes per row. cols is a multiple of the block size.
struct WeightMatrix {
    DType type = DType::F32;
    const void* data = nullptr;  // [rows][rowBytes(type, cols)]
    int64_t rows = 0;
    int64_t cols = 0;
};

// y[t][r] = sum_c W[r][c] * x[t][c] for every token t < nTokens.
// x: [nTokens][cols] f32, y: [nTokens][rows] f32 (y must not alias x).
// nTokens == 1 is the decode (matrix-vector) case. With
// ctx.int8Matmul and block-quantized weights, each token's x is first
// rounded to d * q, q an int8, d = max|x| / 127 per block of 32 (Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1; d then rounded to f16) or d = 1 / (127 / max|x|) per
// block of 256 (K-quants) elements, as llama.cpp's CPU rounds x: each x_c
// moves by at most (1/2 + 2^-14) d; the rest is as exact as the float
// kernels, and a token's outputs are the same bits whatever nTokens is.
// Other types ignore ctx.int8Matmul.
void matmul(const CpuContext& ctx, const WeightMatrix& w, const float* x, float* y, int64_t nTokens);

// The integer products' instruction set (ctx.int8Matmul): vpmaddubsw pairs
// on 256-bit vectors (AVX2), the VNNI multiply-adds on 256-bit ones
// (AVX-VNNI; AVX2's bits), or AVX-512 VNNI on 512-bit vectors (Q4_K and
// the blocks of 32 sum in another order, so other bits; the other K-quants
// give AVX2's). Which one ctx picks on this CPU (CpuContext::vnni,
// CpuContext::simd).
enum class Int8Kernel { Avx2, AvxVnni, Avx512Vnni };
Int8Kernel int8Kernel(const CpuContext& ctx);
std::string_view int8KernelName(Int8Kernel kernel);  // "avx2", "avx-vnni", "avx512-vnni"

// out[cols] = row `row` of W as f32: exact, or correctly rounded where a
// value scale * q + offset (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) doesn't fit in f32.
void dequantizeRow(const WeightMatrix& w, int64_t row, float* out);

// Encodes n finite floats (n a multiple of the block size) as `type` into
// out (rowBytes(type, n) bytes). Block types follow ggml's reference
// quantizers (quantize_row_*_ref; Q2_K and Q3_K with other sub-block
// searches, see quantize.cpp).
void quantizeRow(DType type, const float* x, void* out, int64_t n);

}  // namespace pagoda::cpu

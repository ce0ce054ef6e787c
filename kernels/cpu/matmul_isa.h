#pragma once
// Private to the CPU matmul: the per-instruction-set entry points behind
// matmul() and dequantizeRow(). matmul_avx512.cpp is compiled with AVX-512
// enabled, so this header declares only plain data and functions: nothing
// inline that both instruction sets could instantiate and the linker merge.

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

namespace pagoda::cpu::detail {

// One matmul call, as the kernels see it.
struct MatmulTask {
    DType type = DType::F32;
    const uint8_t* w = nullptr;  // [rows][wStride] bytes
    size_t wStride = 0;          // rowBytes(type, cols)
    int64_t rows = 0;
    int64_t cols = 0;
    const float* x = nullptr;  // [nTokens][cols]
    float* y = nullptr;        // [nTokens][rows]
    int64_t nTokens = 0;
    const uint8_t* xq = nullptr;  // integer path only: every token's x as quantizeActivations (matvec_q8.h) wrote it
};

// Up to this many tokens, matmul streams the weights once for all of them
// (small-batch kernel); more go through the tiled prefill kernel.
constexpr int64_t kBatchMaxTokens = 16;

// Computes y for output rows [rowBegin, rowEnd) and every token.
using MatmulRowsFn = void (*)(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd);
void matmulRowsAvx2(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd);
void matmulRowsAvx512(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd);

// out[cols] = one row of `type` as f32. row: rowBytes(type, cols) bytes.
void dequantizeRowAvx2(DType type, const uint8_t* row, int64_t cols, float* out);

}  // namespace pagoda::cpu::detail

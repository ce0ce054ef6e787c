#pragma once
// The matmul kernels, written once against an instruction-set traits class V
// (Avx2 in matmul_avx2.cpp, Avx512 in matmul_avx512.cpp) and included only
// by those two files. Everything here has internal linkage and uses nothing
// inline from other headers, so the two copies, compiled with different
// flags, can never be merged by the linker.
//
// V provides: Vec, kWidth (floats per Vec), kTileRows/kTileTokens (prefill
// register tile), zero, load, loadPartial (first n lanes, rest 0), store,
// storePartial, set1, add, mul, fma, hsum, loadF16, loadF16Partial, loadBf16,
// loadBf16Partial, and per Q8_0 / Q4_0 block: q8Dot / q4Dot (add the block's
// products with x, given as 32 / kWidth vectors, into two accumulators) and
// q8Dequant / q4Dequant (write its 32 values as f32).

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_isa.h"

namespace pagoda::cpu::detail {
namespace {

// Decode: rows per step of the matrix-vector kernel. They share every load
// of x and keep that many independent weight streams in flight.
constexpr int kDecodeRows = 4;
// Prefill: W is cut into tiles of kTileRows rows x kPanelCols columns,
// converted to f32 in an L1 scratch (F32 too: the copy is contiguous and
// unaliased, the matrix rows are neither) and reused across kPanelTokens tokens, whose
// x panel (kPanelTokens x kPanelCols floats, 256 KiB) stays in L2.
constexpr int64_t kPanelCols = 1024;  // a multiple of the 32-element block
constexpr int64_t kPanelTokens = 64;
// Scratch rows 4 KiB apart would all map to the same L1 sets.
constexpr int64_t kScratchStride = kPanelCols + 16;
constexpr int kBlock = 32;  // elements per Q8_0 / Q4_0 block
static_assert(kQK8_0 == kBlock && kQK4_0 == kBlock && kPanelCols % kBlock == 0);

constexpr int kLineBytes = 64;

int64_t minOf(int64_t a, int64_t b) { return a < b ? a : b; }

// Decode prefetches the next row group at the column it is reading now:
// every cache line once, one group ahead. The hardware prefetcher alone
// restarts at each row, which costs short (F16, Q8_0, Q4_0) rows dearly.
// Prefetching past the end of the matrix is harmless (prefetches never fault).
void prefetchLine(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

// Row formats. Float formats load kWidth consecutive weights as f32; block
// formats hand whole blocks to the instruction set, which knows the
// cheapest way to apply each block's fp16 scale.
template <class V>
struct F32Format {
    using Elem = float;
    static typename V::Vec load(const float* p) { return V::load(p); }
    static typename V::Vec loadPartial(const float* p, int n) { return V::loadPartial(p, n); }
};

template <class V>
struct F16Format {
    using Elem = uint16_t;
    static typename V::Vec load(const uint16_t* p) { return V::loadF16(p); }
    static typename V::Vec loadPartial(const uint16_t* p, int n) { return V::loadF16Partial(p, n); }
};

template <class V>
struct Bf16Format {
    using Elem = uint16_t;
    static typename V::Vec load(const uint16_t* p) { return V::loadBf16(p); }
    static typename V::Vec loadPartial(const uint16_t* p, int n) { return V::loadBf16Partial(p, n); }
};

template <class V>
struct Q8Format {
    using Block = BlockQ8_0;
    static void dot(const Block& b, const typename V::Vec* x, typename V::Vec* acc) { V::q8Dot(b, x, acc); }
    static void dequant(const Block& b, float* out) { V::q8Dequant(b, out); }
};

template <class V>
struct Q4Format {
    using Block = BlockQ4_0;
    static void dot(const Block& b, const typename V::Vec* x, typename V::Vec* acc) { V::q4Dot(b, x, acc); }
    static void dequant(const Block& b, float* out) { V::q4Dequant(b, out); }
};

template <class Fmt>
constexpr bool kIsBlockFormat = requires { typename Fmt::Block; };

// y[r] = dot(row r, x) for R consecutive rows of a float format.
// w: [R][stride] bytes, x: [cols], y: [R].
template <class V, class Fmt, int R>
void dotFloatRows(const uint8_t* w, size_t stride, int64_t cols, const float* x, float* y) {
    using Vec = typename V::Vec;
    using Elem = typename Fmt::Elem;
    constexpr int64_t kW = V::kWidth;
    const Elem* rows[R];
    Vec acc0[R];
    Vec acc1[R];
    for (int r = 0; r < R; ++r) {
        rows[r] = reinterpret_cast<const Elem*>(w + size_t(r) * stride);
        acc0[r] = V::zero();
        acc1[r] = V::zero();
    }
    const size_t ahead = R * stride;  // bytes to the same column of the next group
    constexpr int64_t kStepBytes = 2 * kW * int64_t(sizeof(Elem));
    int64_t c = 0;
    for (; c + 2 * kW <= cols; c += 2 * kW) {
        const Vec x0 = V::load(x + c);
        const Vec x1 = V::load(x + c + kW);
        for (int r = 0; r < R; ++r) {
            const auto* next = reinterpret_cast<const uint8_t*>(rows[r] + c) + ahead;
            for (int64_t b = 0; b < kStepBytes; b += kLineBytes) prefetchLine(next + b);
            acc0[r] = V::fma(Fmt::load(rows[r] + c), x0, acc0[r]);
            acc1[r] = V::fma(Fmt::load(rows[r] + c + kW), x1, acc1[r]);
        }
    }
    if (c + kW <= cols) {
        const Vec x0 = V::load(x + c);
        for (int r = 0; r < R; ++r) acc0[r] = V::fma(Fmt::load(rows[r] + c), x0, acc0[r]);
        c += kW;
    }
    if (c < cols) {
        const int n = int(cols - c);
        const Vec x0 = V::loadPartial(x + c, n);
        for (int r = 0; r < R; ++r) acc1[r] = V::fma(Fmt::loadPartial(rows[r] + c, n), x0, acc1[r]);
    }
    for (int r = 0; r < R; ++r) y[r] = V::hsum(V::add(acc0[r], acc1[r]));
}

// Same for a block format, one block of every row per step.
template <class V, class Fmt, int R>
void dotBlockRows(const uint8_t* w, size_t stride, int64_t cols, const float* x, float* y) {
    using Vec = typename V::Vec;
    using Block = typename Fmt::Block;
    constexpr int kParts = kBlock / V::kWidth;
    const Block* rows[R];
    Vec acc[R][2];
    for (int r = 0; r < R; ++r) {
        rows[r] = reinterpret_cast<const Block*>(w + size_t(r) * stride);
        acc[r][0] = V::zero();
        acc[r][1] = V::zero();
    }
    const int64_t nBlocks = cols / kBlock;
    for (int64_t b = 0; b < nBlocks; ++b) {
        Vec xv[kParts];
        for (int i = 0; i < kParts; ++i) xv[i] = V::load(x + b * kBlock + i * V::kWidth);
        for (int r = 0; r < R; ++r) {
            prefetchLine(reinterpret_cast<const uint8_t*>(rows[r] + b) + R * stride);
            Fmt::dot(rows[r][b], xv, acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) y[r] = V::hsum(V::add(acc[r][0], acc[r][1]));
}

template <class V, class Fmt, int R>
void dotRows(const MatmulTask& task, int64_t row) {
    const uint8_t* w = task.w + size_t(row) * task.wStride;
    if constexpr (kIsBlockFormat<Fmt>) {
        dotBlockRows<V, Fmt, R>(w, task.wStride, task.cols, task.x, task.y + row);
    } else {
        dotFloatRows<V, Fmt, R>(w, task.wStride, task.cols, task.x, task.y + row);
    }
}

template <class V, class Fmt>
void matvecRows(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    int64_t row = rowBegin;
    for (; row + kDecodeRows <= rowEnd; row += kDecodeRows) dotRows<V, Fmt, kDecodeRows>(task, row);
    for (; row < rowEnd; ++row) dotRows<V, Fmt, 1>(task, row);
}

// dst[n] = columns [c0, c0 + n) of one row as f32. For block formats c0 and
// n are multiples of the block size.
template <class V, class Fmt>
void dequantRange(const uint8_t* row, int64_t c0, int64_t n, float* dst) {
    constexpr int64_t kW = V::kWidth;
    if constexpr (kIsBlockFormat<Fmt>) {
        const auto* blocks = reinterpret_cast<const typename Fmt::Block*>(row) + c0 / kBlock;
        for (int64_t b = 0; b < n / kBlock; ++b) Fmt::dequant(blocks[b], dst + b * kBlock);
    } else {
        const auto* src = reinterpret_cast<const typename Fmt::Elem*>(row) + c0;
        int64_t c = 0;
        for (; c + kW <= n; c += kW) V::store(dst + c, Fmt::load(src + c));
        if (c < n) V::storePartial(dst + c, Fmt::loadPartial(src + c, int(n - c)), int(n - c));
    }
}

// One register tile of the prefill product.
struct Tile {
    const float* w = nullptr;  // [rows][wStride]
    int64_t wStride = 0;
    const float* x = nullptr;  // [tokens][xStride]
    int64_t xStride = 0;
    int64_t n = 0;             // columns to reduce over
    float* y = nullptr;        // [tokens][yStride]
    int64_t yStride = 0;
    bool accumulate = false;   // add to y instead of overwriting it
};

// y[t][r] (+)= dot(w[r][0, n), x[t][0, n)) for R rows and T tokens, with
// R * T accumulators held in registers.
template <class V, int R, int T>
void tileKernel(const Tile& tile) {
    using Vec = typename V::Vec;
    constexpr int64_t kW = V::kWidth;
    Vec acc[R][T];
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t] = V::zero();
    }
    int64_t c = 0;
    for (; c + kW <= tile.n; c += kW) {
        Vec wv[R];
        for (int r = 0; r < R; ++r) wv[r] = V::load(tile.w + r * tile.wStride + c);
        for (int t = 0; t < T; ++t) {
            const Vec xv = V::load(tile.x + t * tile.xStride + c);
            for (int r = 0; r < R; ++r) acc[r][t] = V::fma(wv[r], xv, acc[r][t]);
        }
    }
    if (c < tile.n) {
        const int n = int(tile.n - c);
        Vec wv[R];
        for (int r = 0; r < R; ++r) wv[r] = V::loadPartial(tile.w + r * tile.wStride + c, n);
        for (int t = 0; t < T; ++t) {
            const Vec xv = V::loadPartial(tile.x + t * tile.xStride + c, n);
            for (int r = 0; r < R; ++r) acc[r][t] = V::fma(wv[r], xv, acc[r][t]);
        }
    }
    for (int t = 0; t < T; ++t) {
        float* y = tile.y + t * tile.yStride;
        for (int r = 0; r < R; ++r) {
            const float sum = V::hsum(acc[r][t]);
            y[r] = tile.accumulate ? y[r] + sum : sum;
        }
    }
}

// tileKernel for rCount <= R rows and tCount <= T tokens (edge tiles).
template <class V, int R, int T>
void tileKernelUpTo(int rCount, int tCount, const Tile& tile) {
    if constexpr (T > 1) {
        if (tCount < T) return tileKernelUpTo<V, R, T - 1>(rCount, tCount, tile);
    }
    if constexpr (R > 1) {
        if (rCount < R) return tileKernelUpTo<V, R - 1, T>(rCount, tCount, tile);
    }
    tileKernel<V, R, T>(tile);
}

template <class V, class Fmt>
void matmulTiled(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    constexpr int kRows = V::kTileRows;
    constexpr int kTokens = V::kTileTokens;
    alignas(64) float scratch[kRows * kScratchStride];  // [kRows][kScratchStride]
    for (int64_t t0 = 0; t0 < task.nTokens; t0 += kPanelTokens) {
        const int64_t tEnd = minOf(task.nTokens, t0 + kPanelTokens);
        for (int64_t k0 = 0; k0 < task.cols; k0 += kPanelCols) {
            Tile tile;
            tile.w = scratch;
            tile.wStride = kScratchStride;
            tile.n = minOf(kPanelCols, task.cols - k0);
            tile.xStride = task.cols;
            tile.yStride = task.rows;
            tile.accumulate = k0 > 0;
            for (int64_t r0 = rowBegin; r0 < rowEnd; r0 += kRows) {
                const int rCount = int(minOf(kRows, rowEnd - r0));
                for (int r = 0; r < rCount; ++r) {
                    dequantRange<V, Fmt>(task.w + size_t(r0 + r) * task.wStride, k0, tile.n,
                                         scratch + r * kScratchStride);
                }
                for (int64_t t = t0; t < tEnd; t += kTokens) {
                    tile.x = task.x + t * task.cols + k0;
                    tile.y = task.y + t * task.rows + r0;
                    tileKernelUpTo<V, kRows, kTokens>(rCount, int(minOf(kTokens, tEnd - t)), tile);
                }
            }
        }
    }
}

template <class V, class Fmt>
void matmulRowsAs(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    if (task.nTokens == 1) {
        matvecRows<V, Fmt>(task, rowBegin, rowEnd);
    } else {
        matmulTiled<V, Fmt>(task, rowBegin, rowEnd);
    }
}

// matmul() has already rejected types other than these five.
template <class V>
void matmulRowsFor(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    switch (task.type) {
    case DType::F32:
        return matmulRowsAs<V, F32Format<V>>(task, rowBegin, rowEnd);
    case DType::F16:
        return matmulRowsAs<V, F16Format<V>>(task, rowBegin, rowEnd);
    case DType::BF16:
        return matmulRowsAs<V, Bf16Format<V>>(task, rowBegin, rowEnd);
    case DType::Q8_0:
        return matmulRowsAs<V, Q8Format<V>>(task, rowBegin, rowEnd);
    case DType::Q4_0:
        return matmulRowsAs<V, Q4Format<V>>(task, rowBegin, rowEnd);
    default:
        return;
    }
}

template <class V>
void dequantizeRowFor(DType type, const uint8_t* row, int64_t cols, float* out) {
    switch (type) {
    case DType::F32:
        return dequantRange<V, F32Format<V>>(row, 0, cols, out);
    case DType::F16:
        return dequantRange<V, F16Format<V>>(row, 0, cols, out);
    case DType::BF16:
        return dequantRange<V, Bf16Format<V>>(row, 0, cols, out);
    case DType::Q8_0:
        return dequantRange<V, Q8Format<V>>(row, 0, cols, out);
    case DType::Q4_0:
        return dequantRange<V, Q4Format<V>>(row, 0, cols, out);
    default:
        return;
    }
}

}  // namespace
}  // namespace pagoda::cpu::detail

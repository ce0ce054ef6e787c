#pragma once
// The matmul kernels, written once against an instruction-set traits class V
// (Avx2 in matmul_avx2.cpp, Avx512 in matmul_avx512.cpp) and included only
// by those two files. Everything here has internal linkage and uses nothing
// inline from other headers, so the two copies, compiled with different
// flags, can never be merged by the linker.
//
// V provides: Vec, kWidth (floats per Vec), kBatchRows/kBatchTokens (small
// batch register tile), kTileRows/kTileTokens (prefill register tile), zero, load, loadPartial (first n lanes, rest 0), store,
// storePartial, set1, add, mul, fma, hsum, loadF16, loadF16Partial, loadBf16,
// loadBf16Partial, and one nested struct per block type (V::Q8_0, V::Q4_0,
// V::Q4_1, V::Q5_0, V::Q5_1, V::Q2_K, V::Q3_K, V::Q4_K, V::Q5_K, V::Q6_K),
// each with:
//   Block, kElements, kSteps   the GGUF block, the elements it holds, and
//                              the steps dot takes through them;
//   X share(const float* x)    what the rows of a decode group share for one
//                              block's activations (loaded vectors, sums),
//                              computed once per group;
//   Prep prepare(block)        what one row's block decodes first (scales);
//   dot(block, prep, X, step, Vec acc[2])  add step `step`'s products with
//                              x to the two accumulators (their lane sum is
//                              what counts);
//   dequant(block, float* out) write its kElements values as f32.

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kquant_scales_impl.h"
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
constexpr int64_t kPanelCols = 1024;  // a multiple of every block size
constexpr int64_t kPanelTokens = 64;
// Scratch rows 4 KiB apart would all map to the same L1 sets.
constexpr int64_t kScratchStride = kPanelCols + 16;
static_assert(kPanelCols % kQK_K == 0 && kQK_K % kQK8_0 == 0);

constexpr int kLineBytes = 64;

int64_t minOf(int64_t a, int64_t b) { return a < b ? a : b; }

// Decode prefetches the next row group at the column it is reading now:
// every cache line once, one group ahead. The hardware prefetcher alone
// restarts at each row, which costs short (F16, Q8_0, Q4_0) rows dearly.
// Prefetching past the end of the matrix is harmless (prefetches never fault).
void prefetchLine(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
void prefetchLines(const void* p, size_t bytes) {
    for (size_t b = 0; b < bytes; b += kLineBytes) prefetchLine(static_cast<const uint8_t*>(p) + b);
}

// Float row formats load kWidth consecutive weights as f32. Block formats
// are V's nested structs (see the top of this file): the instruction set
// knows the cheapest way to decode each.
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
    constexpr size_t kStepBytes = 2 * kW * sizeof(Elem);
    int64_t c = 0;
    for (; c + 2 * kW <= cols; c += 2 * kW) {
        const Vec x0 = V::load(x + c);
        const Vec x1 = V::load(x + c + kW);
        for (int r = 0; r < R; ++r) {
            prefetchLines(reinterpret_cast<const uint8_t*>(rows[r] + c) + ahead, kStepBytes);
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
    const Block* rows[R];
    Vec acc[R][2];
    for (int r = 0; r < R; ++r) {
        rows[r] = reinterpret_cast<const Block*>(w + size_t(r) * stride);
        acc[r][0] = V::zero();
        acc[r][1] = V::zero();
    }
    // The rows take each step in turn: R independent chains of work, where
    // one row's whole block would be a long chain from its scales on.
    const int64_t nBlocks = cols / Fmt::kElements;
    for (int64_t b = 0; b < nBlocks; ++b) {
        const typename Fmt::X xb = Fmt::share(x + b * Fmt::kElements);
        typename Fmt::Prep prep[R];
        for (int r = 0; r < R; ++r) {
            prefetchLines(reinterpret_cast<const uint8_t*>(rows[r] + b) + R * stride, sizeof(Block));
            prep[r] = Fmt::prepare(rows[r][b]);
        }
        for (int step = 0; step < Fmt::kSteps; ++step) {
            for (int r = 0; r < R; ++r) Fmt::dot(rows[r][b], prep[r], xb, step, acc[r]);
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

// Small batches (2 <= nTokens <= kBatchMaxTokens). One pass takes R rows
// and T tokens, R * T accumulators in registers: each weight is loaded
// (block formats: a block at a time decoded into L1) once and multiplied
// with all T tokens' x, which every row of the group shares. So the step
// of a few sequences streams the weights once, as decode does.
struct BatchPass {
    const uint8_t* w = nullptr;  // [R][stride] bytes: the group's rows
    size_t stride = 0;
    size_t ahead = 0;            // bytes to the same column of the next group, to prefetch; 0: none
    int64_t cols = 0;
    int rCount = 0;              // rows that exist (<= R); the others repeat the last
    const float* x = nullptr;    // [T][xStride]
    int64_t xStride = 0;
    float* y = nullptr;          // [T][yStride]
    int64_t yStride = 0;
    bool accumulate = false;     // add to y instead of overwriting it
};

template <class V, class Fmt, int R, int T>
void dotBatch(const BatchPass& pass) {
    using Vec = typename V::Vec;
    constexpr int64_t kW = V::kWidth;
    const uint8_t* rows[R];
    Vec acc[R][T];
    for (int r = 0; r < R; ++r) {
        rows[r] = pass.w + size_t(r < pass.rCount ? r : pass.rCount - 1) * pass.stride;
        for (int t = 0; t < T; ++t) acc[r][t] = V::zero();
    }
    // acc[r][t] += wv[r] * x[t][c, c + n): x loaded once for all rows.
    const auto fmaColumn = [&](const Vec* wv, int64_t c, int n) {
        for (int t = 0; t < T; ++t) {
            const float* xt = pass.x + t * pass.xStride + c;
            Vec xv = n == kW ? V::load(xt) : V::loadPartial(xt, n);
            // Keep x in a register: GCC would fold the load into each of the
            // R multiply-adds, loading it R times (~10% slower).
            asm("" : "+v"(xv));
            for (int r = 0; r < R; ++r) acc[r][t] = V::fma(wv[r], xv, acc[r][t]);
        }
    };
    if constexpr (kIsBlockFormat<Fmt>) {
        using Block = typename Fmt::Block;
        // A K-quant block's products with 8 tokens are longer than the
        // out-of-order window, which then can't overlap them with decoding
        // the next block: decode one block ahead (Q6_K on AVX-512 took 0.7x
        // the time; 32-element blocks were 1.03-1.3x slower with it).
        constexpr int kLead = Fmt::kElements >= kQK_K ? 1 : 0;
        alignas(64) float values[kLead + 1][R][Fmt::kElements];
        const auto decode = [&](int64_t b) {
            for (int r = 0; r < R; ++r) {
                const Block* block = reinterpret_cast<const Block*>(rows[r]) + b;
                prefetchLines(reinterpret_cast<const uint8_t*>(block) + pass.ahead, sizeof(Block));
                Fmt::dequant(*block, values[b % (kLead + 1)][r]);
            }
        };
        const int64_t nBlocks = pass.cols / Fmt::kElements;
        for (int64_t b = 0; b < kLead && b < nBlocks; ++b) decode(b);
        for (int64_t b = 0; b < nBlocks; ++b) {
            if (b + kLead < nBlocks) decode(b + kLead);
            const float (*current)[Fmt::kElements] = values[b % (kLead + 1)];
            for (int64_t i = 0; i < Fmt::kElements; i += kW) {
                Vec wv[R];
                for (int r = 0; r < R; ++r) wv[r] = V::load(current[r] + i);
                fmaColumn(wv, b * Fmt::kElements + i, kW);
            }
        }
    } else {
        using Elem = typename Fmt::Elem;
        // One prefetch per cache line: a step is a line of weights, or a
        // vector where that is longer.
        constexpr int64_t kLineElems = kLineBytes / int64_t(sizeof(Elem));
        constexpr int64_t kStep = kLineElems > kW ? kLineElems : kW;
        const auto loadWeights = [&](int64_t c, int n, Vec* wv) {
            for (int r = 0; r < R; ++r) {
                const Elem* p = reinterpret_cast<const Elem*>(rows[r]) + c;
                wv[r] = n == kW ? Fmt::load(p) : Fmt::loadPartial(p, n);
            }
        };
        int64_t c = 0;
        for (; c + kStep <= pass.cols; c += kStep) {
            if (pass.ahead != 0) {
                for (int r = 0; r < R; ++r) prefetchLine(rows[r] + c * int64_t(sizeof(Elem)) + pass.ahead);
            }
            for (int64_t i = 0; i < kStep; i += kW) {
                Vec wv[R];
                loadWeights(c + i, kW, wv);
                fmaColumn(wv, c + i, kW);
            }
        }
        for (; c < pass.cols; c += kW) {
            const int n = int(minOf(kW, pass.cols - c));
            Vec wv[R];
            loadWeights(c, n, wv);
            fmaColumn(wv, c, n);
        }
    }
    for (int t = 0; t < T; ++t) {
        for (int r = 0; r < pass.rCount; ++r) {
            float& y = pass.y[t * pass.yStride + r];
            y = pass.accumulate ? y + V::hsum(acc[r][t]) : V::hsum(acc[r][t]);
        }
    }
}

// dotBatch for tCount <= T tokens.
template <class V, class Fmt, int R, int T>
void dotBatchUpTo(int tCount, const BatchPass& pass) {
    if constexpr (T > 1) {
        if (tCount < T) return dotBatchUpTo<V, Fmt, R, T - 1>(tCount, pass);
    }
    dotBatch<V, Fmt, R, T>(pass);
}

// More tokens than a pass holds take several passes of near-equal size over
// each row group. Float formats read the group's rows again (from L1 or
// L2). Block formats decode a panel of the rows once into L1 for all passes:
// decoding a K-quant block again for each pass made 16 tokens slower than
// the prefill kernel.
template <class V, class Fmt>
void batchRows(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    constexpr int R = V::kBatchRows;
    constexpr int T = V::kBatchTokens;
    const int64_t nPasses = (task.nTokens + T - 1) / T;
    const auto passes = [&]<class PassFmt>(const BatchPass& group) {
        for (int64_t p = 0; p < nPasses; ++p) {
            const int64_t t0 = p * task.nTokens / nPasses;
            const int64_t t1 = (p + 1) * task.nTokens / nPasses;
            BatchPass pass = group;
            pass.x += t0 * pass.xStride;
            pass.y += t0 * pass.yStride;
            dotBatchUpTo<V, PassFmt, R, T>(int(t1 - t0), pass);
        }
    };
    for (int64_t r0 = rowBegin; r0 < rowEnd; r0 += R) {
        const uint8_t* w = task.w + size_t(r0) * task.wStride;
        BatchPass group;
        group.rCount = int(minOf(R, rowEnd - r0));
        group.xStride = task.cols;
        group.y = task.y + r0;
        group.yStride = task.rows;
        if constexpr (kIsBlockFormat<Fmt>) {
            if (nPasses > 1) {
                using Block = typename Fmt::Block;
                alignas(64) float panel[R * kScratchStride];  // [R][kScratchStride]
                group.w = reinterpret_cast<const uint8_t*>(panel);
                group.stride = kScratchStride * sizeof(float);
                for (int64_t k0 = 0; k0 < task.cols; k0 += kPanelCols) {
                    group.cols = minOf(kPanelCols, task.cols - k0);
                    for (int64_t b = 0; b < group.cols / Fmt::kElements; ++b) {
                        for (int r = 0; r < group.rCount; ++r) {
                            const Block* block =
                                reinterpret_cast<const Block*>(w + size_t(r) * task.wStride) + k0 / Fmt::kElements + b;
                            prefetchLines(reinterpret_cast<const uint8_t*>(block) + R * task.wStride, sizeof(Block));
                            Fmt::dequant(*block, panel + r * kScratchStride + b * Fmt::kElements);
                        }
                    }
                    group.x = task.x + k0;
                    group.accumulate = k0 > 0;
                    passes.template operator()<F32Format<V>>(group);
                }
                continue;
            }
        }
        group.w = w;
        group.stride = task.wStride;
        group.ahead = R * task.wStride;
        group.cols = task.cols;
        group.x = task.x;
        passes.template operator()<Fmt>(group);
    }
}

// dst[n] = columns [c0, c0 + n) of one row as f32. For block formats c0 and
// n are multiples of the block size.
template <class V, class Fmt>
void dequantRange(const uint8_t* row, int64_t c0, int64_t n, float* dst) {
    constexpr int64_t kW = V::kWidth;
    if constexpr (kIsBlockFormat<Fmt>) {
        const auto* blocks = reinterpret_cast<const typename Fmt::Block*>(row) + c0 / Fmt::kElements;
        for (int64_t b = 0; b < n / Fmt::kElements; ++b) Fmt::dequant(blocks[b], dst + b * Fmt::kElements);
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
    } else if (task.nTokens <= kBatchMaxTokens) {
        batchRows<V, Fmt>(task, rowBegin, rowEnd);
    } else {
        matmulTiled<V, Fmt>(task, rowBegin, rowEnd);
    }
}

// Calls f.template operator()<Fmt>() with the row format of `type`; does
// nothing for a type without one (matmul() and dequantizeRow() reject those).
template <class V, class F>
void withFormat(DType type, F&& f) {
    switch (type) {
    case DType::F32: f.template operator()<F32Format<V>>(); return;
    case DType::F16: f.template operator()<F16Format<V>>(); return;
    case DType::BF16: f.template operator()<Bf16Format<V>>(); return;
    case DType::Q8_0: f.template operator()<typename V::Q8_0>(); return;
    case DType::Q4_0: f.template operator()<typename V::Q4_0>(); return;
    case DType::Q4_1: f.template operator()<typename V::Q4_1>(); return;
    case DType::Q5_0: f.template operator()<typename V::Q5_0>(); return;
    case DType::Q5_1: f.template operator()<typename V::Q5_1>(); return;
    case DType::Q2_K: f.template operator()<typename V::Q2_K>(); return;
    case DType::Q3_K: f.template operator()<typename V::Q3_K>(); return;
    case DType::Q4_K: f.template operator()<typename V::Q4_K>(); return;
    case DType::Q5_K: f.template operator()<typename V::Q5_K>(); return;
    case DType::Q6_K: f.template operator()<typename V::Q6_K>(); return;
    default: return;
    }
}

template <class V>
void matmulRowsFor(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    withFormat<V>(task.type, [&]<class Fmt>() { matmulRowsAs<V, Fmt>(task, rowBegin, rowEnd); });
}

template <class V>
void dequantizeRowFor(DType type, const uint8_t* row, int64_t cols, float* out) {
    withFormat<V>(type, [&]<class Fmt>() { dequantRange<V, Fmt>(row, 0, cols, out); });
}

}  // namespace
}  // namespace pagoda::cpu::detail

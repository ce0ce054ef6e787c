#pragma once
// The attention inner loops, written once against an instruction-set traits
// class V (Avx2 in attention_avx2.cpp, Avx512 in attention_avx512.cpp) and
// included only by those two files. Everything here has internal linkage and
// uses nothing inline from other headers (see docs/KERNELS.md, Dispatch).
//
// V provides: Vec, kWidth (floats per Vec), kScoreRows (query rows per
// score tile; the tile is kScoreRows x 4 keys of accumulators), kPvRows and
// kPvVecs (output rows x vectors of headDim per P·V tile), zero, load,
// loadPartial (first n lanes, rest 0), store, storePartial, keepFirst (zero
// lanes >= n), set1, add, sub, mul, fma, max, min (both return the second
// operand when either is NaN), roundNearest, pow2i (2^n for integral n in
// [-127, 127], 0 for -127), hsum, hmax, reduce4 (four vectors to the
// __m128 of their sums), loadHalf and loadHalfPartial (fp16 as f32),
// loadInt8 (kWidth int8 as f32).

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/attention_isa.h"

namespace pagoda::cpu::detail {
namespace {

template <class V>
struct AttentionImpl {
    using Vec = typename V::Vec;
    static constexpr int kW = V::kWidth;

    // 2^x for every lane: x = n + f with n integral and |f| <= 1/2, 2^f from
    // Cephes' exp2f polynomial (relative error < 2e-7), 2^n from the bits.
    static Vec exp2(Vec x) {
        x = V::max(V::set1(-127.0f), x);
        x = V::min(V::set1(127.0f), x);
        const Vec n = V::roundNearest(x);
        const Vec f = V::sub(x, n);
        Vec p = V::set1(1.535336188319500e-4f);
        p = V::fma(p, f, V::set1(1.339887440266574e-3f));
        p = V::fma(p, f, V::set1(9.618437357674640e-3f));
        p = V::fma(p, f, V::set1(5.550332471162809e-2f));
        p = V::fma(p, f, V::set1(2.402264791363012e-1f));
        p = V::fma(p, f, V::set1(6.931472028550421e-1f));
        p = V::fma(p, f, V::set1(1.0f));
        return V::mul(p, V::pow2i(n));
    }

    // K and V rows are f32, or fp16 converted as they are loaded.
    static Vec load(const float* p) { return V::load(p); }
    static Vec load(const uint16_t* p) { return V::loadHalf(p); }
    static Vec loadPartial(const float* p, int n) { return V::loadPartial(p, n); }
    static Vec loadPartial(const uint16_t* p, int n) { return V::loadHalfPartial(p, n); }

    // R query rows x all n keys, C keys (a multiple of 4: one reduce4 each)
    // at a time. Each step of the headDim loop loads C key vectors and R
    // query vectors for C·R FMAs into as many independent accumulators; with
    // fewer than 8 the FMA latency, not its throughput, would set the pace.
    template <int R, int C, class T>
    static void scoreRows(const float* const* q, const T* const* k, int n, int headDim, float scale, float* s,
                          int ldS) {
        static_assert(C % 4 == 0);
        const int full = headDim / kW * kW;
        const int tail = headDim - full;
        const __m128 scale4 = _mm_set1_ps(scale);
        int j = 0;
        for (; j + C <= n; j += C) {
            Vec acc[R][C];
            for (int r = 0; r < R; ++r) {
                for (int c = 0; c < C; ++c) acc[r][c] = V::zero();
            }
            for (int d = 0; d < full; d += kW) {
                Vec kv[C];
                for (int c = 0; c < C; ++c) kv[c] = load(k[j + c] + d);
                for (int r = 0; r < R; ++r) {
                    const Vec qv = V::load(q[r] + d);
                    for (int c = 0; c < C; ++c) acc[r][c] = V::fma(qv, kv[c], acc[r][c]);
                }
            }
            if (tail > 0) {
                Vec kv[C];
                for (int c = 0; c < C; ++c) kv[c] = loadPartial(k[j + c] + full, tail);
                for (int r = 0; r < R; ++r) {
                    const Vec qv = V::loadPartial(q[r] + full, tail);
                    for (int c = 0; c < C; ++c) acc[r][c] = V::fma(qv, kv[c], acc[r][c]);
                }
            }
            for (int r = 0; r < R; ++r) {
                for (int c = 0; c < C; c += 4) {
                    const __m128 sums = V::reduce4(acc[r][c], acc[r][c + 1], acc[r][c + 2], acc[r][c + 3]);
                    _mm_storeu_ps(s + size_t(r) * ldS + j + c, _mm_mul_ps(sums, scale4));
                }
            }
        }
        if (C > 4 && j + 4 <= n) {
            scoreRows<R, 4>(q, k + j, n - j, headDim, scale, s + j, ldS);
            return;
        }
        for (; j < n; ++j) {
            Vec acc[R];
            for (int r = 0; r < R; ++r) acc[r] = V::zero();
            for (int d = 0; d < full; d += kW) {
                const Vec kv = load(k[j] + d);
                for (int r = 0; r < R; ++r) acc[r] = V::fma(V::load(q[r] + d), kv, acc[r]);
            }
            if (tail > 0) {
                const Vec kv = loadPartial(k[j] + full, tail);
                for (int r = 0; r < R; ++r) acc[r] = V::fma(V::loadPartial(q[r] + full, tail), kv, acc[r]);
            }
            for (int r = 0; r < R; ++r) s[size_t(r) * ldS + j] = V::hsum(acc[r]) * scale;
        }
    }

    template <class T>
    static void scores(const float* const* q, int m, const T* const* k, int n, int headDim, float scale, float* s,
                       int ldS) {
        constexpr int R = V::kScoreRows;
        int r = 0;
        for (; r + R <= m; r += R) scoreRows<R, 4>(q + r, k, n, headDim, scale, s + size_t(r) * ldS, ldS);
        for (; r + 2 <= m; r += 2) scoreRows<2, 4>(q + r, k, n, headDim, scale, s + size_t(r) * ldS, ldS);
        if (r < m) scoreRows<1, 8>(q + r, k, n, headDim, scale, s + size_t(r) * ldS, ldS);
    }

    // R output rows x D vectors of headDim starting at d0, over all n keys:
    // each key loads D vectors of V and R weights for R·D FMAs. U keys at a
    // time go to separate accumulators (added up at the end) so that a
    // single row still has 8 independent FMA chains. Lanes past `last` (a
    // partial final vector, D == 1) are neither loaded nor stored.
    template <int R, int D, int U, bool kPartial, class T>
    static void pvTile(const float* p, int ldP, const T* const* v, int n, int d0, int last, float* o, int ldO) {
        Vec acc[U][R][D];
        for (int r = 0; r < R; ++r) {
            for (int c = 0; c < D; ++c) {
                float* dst = o + size_t(r) * ldO + d0 + c * kW;
                acc[0][r][c] = kPartial ? V::loadPartial(dst, last) : V::load(dst);
                for (int u = 1; u < U; ++u) acc[u][r][c] = V::zero();
            }
        }
        const auto step = [&](int j, Vec(&a)[R][D]) {
            Vec vv[D];
            for (int c = 0; c < D; ++c) {
                const T* src = v[j] + d0 + c * kW;
                vv[c] = kPartial ? loadPartial(src, last) : load(src);
            }
            for (int r = 0; r < R; ++r) {
                const Vec w = V::set1(p[size_t(r) * ldP + j]);
                for (int c = 0; c < D; ++c) a[r][c] = V::fma(w, vv[c], a[r][c]);
            }
        };
        int j = 0;
        for (; j + U <= n; j += U) {
            for (int u = 0; u < U; ++u) step(j + u, acc[u]);
        }
        for (; j < n; ++j) step(j, acc[0]);
        for (int r = 0; r < R; ++r) {
            for (int c = 0; c < D; ++c) {
                for (int u = 1; u < U; ++u) acc[0][r][c] = V::add(acc[0][r][c], acc[u][r][c]);
                float* dst = o + size_t(r) * ldO + d0 + c * kW;
                if (kPartial) {
                    V::storePartial(dst, acc[0][r][c], last);
                } else {
                    V::store(dst, acc[0][r][c]);
                }
            }
        }
    }

    template <int R, class T>
    static void pvRows(const float* p, int ldP, const T* const* v, int n, int headDim, float* o, int ldO) {
        constexpr int D = V::kPvVecs;
        constexpr int U = R * D >= 8 ? 1 : 8 / (R * D);
        int d = 0;
        for (; d + D * kW <= headDim; d += D * kW) pvTile<R, D, U, false, T>(p, ldP, v, n, d, kW, o, ldO);
        for (; d + kW <= headDim; d += kW) pvTile<R, 1, 1, false, T>(p, ldP, v, n, d, kW, o, ldO);
        if (d < headDim) pvTile<R, 1, 1, true, T>(p, ldP, v, n, d, headDim - d, o, ldO);
    }

    template <class T>
    static void accumulatePv(const float* p, int ldP, int m, const T* const* v, int n, int headDim, float* o,
                             int ldO) {
        constexpr int R = V::kPvRows;
        int r = 0;
        for (; r + R <= m; r += R) pvRows<R>(p + size_t(r) * ldP, ldP, v, n, headDim, o + size_t(r) * ldO, ldO);
        for (; r + 2 <= m; r += 2) pvRows<2>(p + size_t(r) * ldP, ldP, v, n, headDim, o + size_t(r) * ldO, ldO);
        if (r < m) pvRows<1>(p + size_t(r) * ldP, ldP, v, n, headDim, o + size_t(r) * ldO, ldO);
    }

    static float rowMax(const float* x, int n) {
        int i = 0;
        float result = x[0];
        if (n >= kW) {
            Vec m = V::load(x);
            for (i = kW; i + kW <= n; i += kW) m = V::max(m, V::load(x + i));
            result = V::hmax(m);
        }
        for (; i < n; ++i) result = result > x[i] ? result : x[i];
        return result;
    }

    static float exp2Sum(float* x, int n, float shift) {
        const Vec s = V::set1(shift);
        Vec sum = V::zero();
        int i = 0;
        for (; i + kW <= n; i += kW) {
            const Vec e = exp2(V::sub(V::load(x + i), s));
            V::store(x + i, e);
            sum = V::add(sum, e);
        }
        if (i < n) {
            const Vec e = V::keepFirst(exp2(V::sub(V::loadPartial(x + i, n - i), s)), n - i);
            V::storePartial(x + i, e, n - i);
            sum = V::add(sum, e);
        }
        return V::hsum(sum);
    }

    static void scale(float* x, int n, float factor) {
        const Vec f = V::set1(factor);
        int i = 0;
        for (; i + kW <= n; i += kW) V::store(x + i, V::mul(V::load(x + i), f));
        if (i < n) V::storePartial(x + i, V::mul(V::loadPartial(x + i, n - i), f), n - i);
    }

    static void halfToFloat(const uint16_t* src, float* dst, size_t n) {
        size_t i = 0;
        for (; i + kW <= n; i += kW) V::store(dst + i, V::loadHalf(src + i));
        for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
    }

    static void halfRowsToFloat(const uint16_t* src, size_t srcStride, int rows, int cols, float* dst) {
        if (srcStride == size_t(cols)) {
            halfToFloat(src, dst, size_t(rows) * cols);
            return;
        }
        for (int r = 0; r < rows; ++r) halfToFloat(src + r * srcStride, dst + size_t(r) * cols, size_t(cols));
    }

    // Q8_0 rows: per block of 32, an fp16 d (2 bytes) then 32 int8; each
    // value d * q is exact in f32 (11 by 8 bits).
    static void q8RowsToFloat(const std::byte* src, size_t srcStride, int rows, int cols, float* dst) {
        constexpr int kBlock = 32;
        constexpr size_t kBlockBytes = 2 + kBlock;
        for (int r = 0; r < rows; ++r) {
            const std::byte* row = src + size_t(r) * srcStride;
            float* out = dst + size_t(r) * cols;
            for (int b = 0; b < cols / kBlock; ++b) {
                const std::byte* block = row + size_t(b) * kBlockBytes;
                uint16_t d;
                __builtin_memcpy(&d, block, sizeof d);
                const Vec scale = V::set1(_cvtsh_ss(d));
                const auto* q = reinterpret_cast<const int8_t*>(block + sizeof d);
                for (int j = 0; j < kBlock; j += kW) V::store(out + b * kBlock + j, V::mul(V::loadInt8(q + j), scale));
            }
        }
    }

    static constexpr AttentionKernels kTable = {scores<float>,       accumulatePv<float>, scores<uint16_t>,
                                                accumulatePv<uint16_t>, rowMax,              exp2Sum,
                                                scale,                  halfRowsToFloat,     q8RowsToFloat};
};

}  // namespace
}  // namespace pagoda::cpu::detail

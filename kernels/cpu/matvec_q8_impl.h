#pragma once
// The integer decode kernels (matvec_q8.h), written once against a traits
// class T (Avx2Q8 in matvec_q8_avx2.cpp, Avx512VnniQ8 in
// matvec_q8_avx512.cpp) that supplies the two integer multiply-adds:
//   dotU8S8(acc, u, s)          acc[i] += sum of 4 products u8 * s8, 8 int32 lanes;
//   dotScaled(acc, u, s, scale) acc[i] += the u8 * s8 pair sums (int16) times
//                               the int16 lanes of scale, summed in pairs.
// Both work on 256-bit vectors: decode is bound by memory, and 32-byte
// steps match the 32-element sub-blocks. Internal linkage throughout, for
// the reason matmul_isa_impl.h gives.
//
// Every weight block's dot product with x is exact in int32 (largest: Q6_K,
// 16 sub-blocks * 128 * 16 * 32 * 127 < 2^28); the pair sums stay below
// int16 saturation (2 * 128 * 127 for Q8_0, less for the others: the
// K-quants' integers are unsigned, their offsets taken from the sums of x). f32
// applies the scales: per block and row one product d_w * d_x, one
// conversion of the integer sum and one multiply-add into an accumulator.

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kquant_scales_impl.h"
#include "kernels/cpu/matvec_q8.h"

namespace pagoda::cpu::detail {
namespace {

// Rows per step, as the float decode kernel: they share every load of x
// and keep that many independent weight streams in flight.
constexpr int kQ8Rows = 4;
constexpr int kQ8LineBytes = 64;

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
__m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
__m256i bytes(int v) { return _mm256_set1_epi8(char(v)); }
float halfToFloat(uint16_t h) { return _cvtsh_ss(h); }

// Every int16 lane takes lane j of the same 128-bit half of v.
__m256i broadcastI16(__m256i v, int j) { return _mm256_shuffle_epi8(v, _mm256_set1_epi16(short(0x0202 * j + 0x0100))); }
// Lanes 0-7 take int16 lane j, lanes 8-15 lane k, of a v whose halves are equal.
__m256i broadcastI16Pair(__m256i v, int j, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(_mm_set1_epi16(short(0x0202 * k + 0x0100)),
                                                   _mm_set1_epi16(short(0x0202 * j + 0x0100))));
}

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void prefetchBlock(const void* p, size_t bytes) {
    for (size_t b = 0; b < bytes; b += kQ8LineBytes) {
        _mm_prefetch(static_cast<const char*>(p) + b, _MM_HINT_T0);
    }
}

// A format (below) whose row group shares x itself.
template <class B, class XB>
struct SharesX {
    using Block = B;
    using XBlock = XB;
    using X = const XBlock*;
    static X share(const XBlock& x) { return &x; }
};

// One format: Block, XBlock (its quantized x), X share(xblock) (what the
// rows of a group share), dot(block, X, __m256 acc[2]) (adds the block's
// contribution; the lane sum of both accumulators is what counts).
template <class T>
struct Formats {
    // Q8_0: signed integers. vpmaddubsw / vpdpbusd multiply unsigned by
    // signed bytes: |w| times x with w's sign.
    struct Q8_0 : SharesX<BlockQ8_0, XBlockQ8_32> {
        static void dot(const Block& b, X x, __m256* acc) {
            const __m256i w = load32(b.qs);
            const __m256i isum =
                T::dotU8S8(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(load32(x->qs), w));
            acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(halfToFloat(b.d) * x->d), _mm256_cvtepi32_ps(isum), acc[0]);
        }
    };

    // The 32-element blocks with 4- or 5-bit unsigned q (Q4_0, Q4_1, Q5_0,
    // Q5_1): byte i of the vector is element i, the low nibbles of qs
    // (elements 0..15) then the high ones, and Q5's bit 4 is bit i of qh.
    template <class B, bool kFiveBits>
    static __m256i legacyQuants(const B& b) {
        const __m128i raw = load16(b.qs);
        const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), bytes(0x0f));
        if constexpr (!kFiveBits) {
            return q;
        } else {
            uint32_t qh;
            std::memcpy(&qh, b.qh, sizeof qh);
            // Byte i takes byte i / 8 of qh, then tests bit i % 8 of it.
            const __m256i spread = _mm256_shuffle_epi8(
                _mm256_set1_epi32(int(qh)), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                              0x0101010101010101, 0x0000000000000000));
            const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
            return _mm256_or_si256(q, _mm256_and_si256(set, bytes(0x10)));
        }
    }

    // Q4_0, Q5_0: sum (q - z) x = sum q x - z sum x, so the integer sum
    // starts at -z sum x (shared by the group) and needs no sign fix-up.
    struct XZero {
        const XBlockQ8_32* x;
        __m256i start;  // lane 0: -z * x.sum
    };
    template <class B, int kZero, bool kFiveBits>
    struct ZeroPoint {
        using Block = B;
        using XBlock = XBlockQ8_32;
        using X = XZero;
        static X share(const XBlock& x) { return {&x, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-kZero * x.sum))}; }
        static void dot(const Block& b, const X& x, __m256* acc) {
            const __m256i isum = T::dotU8S8(x.start, legacyQuants<B, kFiveBits>(b), load32(x.x->qs));
            acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(halfToFloat(b.d) * x.x->d), _mm256_cvtepi32_ps(isum), acc[0]);
        }
    };
    using Q4_0 = ZeroPoint<BlockQ4_0, 8, false>;
    using Q5_0 = ZeroPoint<BlockQ5_0, 16, true>;

    // Q4_1, Q5_1: sum (d q + m) x = d sum q x + m sum x, the second term in
    // lane 0 of the other accumulator (sum x = d_x * sum of x's ints, once
    // for the group).
    struct XOffset {
        const XBlockQ8_32* x;
        __m256 sum;  // lane 0: d_x * x.sum
    };
    template <class B, bool kFiveBits>
    struct Offset {
        using Block = B;
        using XBlock = XBlockQ8_32;
        using X = XOffset;
        static X share(const XBlock& x) { return {&x, _mm256_zextps128_ps256(_mm_set_ss(x.d * float(x.sum)))}; }
        static void dot(const Block& b, const X& x, __m256* acc) {
            static_assert(offsetof(B, m) == offsetof(B, d) + 2);
            const __m256i isum = T::dotU8S8(_mm256_setzero_si256(), legacyQuants<B, kFiveBits>(b), load32(x.x->qs));
            // d and m in one conversion.
            uint32_t bits;
            std::memcpy(&bits, &b.d, sizeof bits);
            const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(int(bits)));
            acc[0] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_mul_ss(dm, _mm_set_ss(x.x->d))),
                                     _mm256_cvtepi32_ps(isum), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dm)), x.sum, acc[1]);
        }
    };
    using Q4_1 = Offset<BlockQ4_1, false>;
    using Q5_1 = Offset<BlockQ5_1, true>;

    // Q4_K / Q5_K share x and its sums over each sub-block of 32.
    struct XK {
        const XBlockQ8_256* x;
        __m128i sums32;  // 8 int16
    };
    static XK shareK(const XBlockQ8_256& x) {
        return {&x, _mm_hadd_epi16(load16(x.sums), load16(x.sums + 8))};
    }
    // d * sum_j sc_j (q . x)_j - dmin * sum_j m_j (sum of x)_j, where
    // chunk(c) gives the unsigned integers of chunk c (64 elements) as two
    // vectors: sub-blocks 2c and 2c + 1.
    template <class B, class Chunk>
    static void dotK(const B& b, const XK& x, __m256* acc, Chunk&& chunk) {
        const KScales k = unpackKScales(b.scales);
        // Lanes 0-7: sc_j; 8-15: m_j.
        const __m256i scalesMins = _mm256_cvtepu8_epi16(_mm_set_epi64x(int64_t(k.mins), int64_t(k.scales)));
        const __m256i scales = _mm256_permute2x128_si256(scalesMins, scalesMins, 0x00);
        const __m128i minSums = _mm_madd_epi16(_mm256_extracti128_si256(scalesMins, 1), x.sums32);
        // Two chains: vpdpwssd's latency would otherwise bound the block.
        __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int c = 0; c < 4; ++c) {
            __m256i q[2];
            chunk(c, q);
            isum[0] = T::dotScaled(isum[0], q[0], load32(x.x->qs + 64 * c), broadcastI16(scales, 2 * c));
            isum[1] = T::dotScaled(isum[1], q[1], load32(x.x->qs + 64 * c + 32), broadcastI16(scales, 2 * c + 1));
        }
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(halfToFloat(b.d) * x.x->d),
                                 _mm256_cvtepi32_ps(_mm256_add_epi32(isum[0], isum[1])), acc[0]);
        acc[1] = _mm256_fmadd_ps(_mm256_set1_ps(-halfToFloat(b.dmin) * x.x->d),
                                 _mm256_zextps128_ps256(_mm_cvtepi32_ps(minSums)), acc[1]);
    }

    struct Q4_K {
        using Block = BlockQ4_K;
        using XBlock = XBlockQ8_256;
        using X = XK;
        static X share(const XBlock& x) { return shareK(x); }
        static void dot(const Block& b, const X& x, __m256* acc) {
            dotK(b, x, acc, [&](int c, __m256i* q) {
                const __m256i raw = load32(b.qs + 32 * c);
                q[0] = _mm256_and_si256(raw, bytes(0x0f));
                q[1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes(0x0f));
            });
        }
    };

    struct Q5_K {
        using Block = BlockQ5_K;
        using XBlock = XBlockQ8_256;
        using X = XK;
        static X share(const XBlock& x) { return shareK(x); }
        static void dot(const Block& b, const X& x, __m256* acc) {
            const __m256i qh = load32(b.qh);
            dotK(b, x, acc, [&](int c, __m256i* q) {
                const __m256i raw = load32(b.qs + 32 * c);
                // Bits 2c and 2c + 1 of each qh byte, moved to bit 4. 16-bit
                // shifts: bits crossing into the other byte are masked off.
                const __m256i high = _mm256_srli_epi16(qh, 2 * c);
                q[0] = _mm256_or_si256(_mm256_and_si256(raw, bytes(0x0f)),
                                       _mm256_and_si256(_mm256_slli_epi16(high, 4), bytes(0x10)));
                q[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes(0x0f)),
                                       _mm256_and_si256(_mm256_slli_epi16(high, 3), bytes(0x10)));
            });
        }
    };

    // Q2_K / Q3_K / Q6_K, 16 sub-blocks of 16: sum_j sc_j (q . x)_j, sc_j
    // the int16 lanes of scales16 and halfBytes(h, q) the unsigned integers
    // of half h (q[g]: elements 128h + 32g .. + 31).
    template <class HalfBytes>
    static __m256i dot16(__m256i scales16, const XBlockQ8_256& x, HalfBytes&& halfBytes) {
        // Half h's 8 scales in both 128-bit halves.
        const __m256i halfScales[2] = {_mm256_permute2x128_si256(scales16, scales16, 0x00),
                                       _mm256_permute2x128_si256(scales16, scales16, 0x11)};
        // Two chains: vpdpwssd's latency would otherwise bound the block.
        __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int h = 0; h < 2; ++h) {
            __m256i q[4];
            halfBytes(h, q);
            for (int g = 0; g < 4; ++g) {
                isum[g % 2] = T::dotScaled(isum[g % 2], q[g], load32(x.qs + 128 * h + 32 * g),
                                           broadcastI16Pair(halfScales[h], 2 * g, 2 * g + 1));
            }
        }
        return _mm256_add_epi32(isum[0], isum[1]);
    }
    // d * sum_j sc_j ((q . x)_j - 2^shift (sum of x)_j): Q3_K's and Q6_K's
    // signed scales and offset integers.
    template <int shift, class HalfBytes>
    static void dot16Offset(__m256i scales16, float d, const XBlockQ8_256& x, __m256* acc, HalfBytes&& halfBytes) {
        const __m256i offsets = _mm256_madd_epi16(scales16, load32(x.sums));
        const __m256i total = _mm256_sub_epi32(dot16(scales16, x, halfBytes), _mm256_slli_epi32(offsets, shift));
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d), _mm256_cvtepi32_ps(total), acc[0]);
    }

    // Q2_K: d * sum_j sc_j (q . x)_j - dmin * sum_j m_j (sum of x)_j, the
    // two sums in separate accumulators as dotK's.
    struct Q2_K : SharesX<BlockQ2_K, XBlockQ8_256> {
        static void dot(const Block& b, X x, __m256* acc) {
            const __m256i raw = _mm256_cvtepu8_epi16(load16(b.scales));
            const __m256i low = _mm256_set1_epi16(0x0f);
            const __m256i minSums = _mm256_madd_epi16(_mm256_srli_epi16(raw, 4), load32(x->sums));
            const __m256i isum =
                dot16(_mm256_and_si256(raw, low), *x, [&](int h, __m256i* q) { unpackTwoBitHalf(b.qs, h, q); });
            acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(halfToFloat(b.d) * x->d), _mm256_cvtepi32_ps(isum), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_set1_ps(-halfToFloat(b.dmin) * x->d), _mm256_cvtepi32_ps(minSums),
                                     acc[1]);
        }
    };

    // Q3_K: d * sum_j (sc_j - 32) ((q . x)_j - 4 (sum of x)_j).
    struct Q3_K : SharesX<BlockQ3_K, XBlockQ8_256> {
        static void dot(const Block& b, X x, __m256* acc) {
            const __m256i scales16 =
                _mm256_cvtepi8_epi16(_mm_sub_epi8(unpackQ3KScales(b.scales), _mm_set1_epi8(32)));
            dot16Offset<2>(scales16, halfToFloat(b.d), *x, acc, [&](int h, __m256i* q) { unpackQ3KHalf(b, h, q); });
        }
    };

    // Q6_K: d * sum_j sc_j ((q . x)_j - 32 (sum of x)_j).
    struct Q6_K : SharesX<BlockQ6_K, XBlockQ8_256> {
        static void dot(const Block& b, X x, __m256* acc) {
            dot16Offset<5>(_mm256_cvtepi8_epi16(load16(b.scales)), halfToFloat(b.d), *x, acc,
                           [&](int h, __m256i* q) { unpackQ6KHalf(b, h, q); });
        }
    };
};

// y[r] = dot(row r, x) for R consecutive rows. w: [R][stride] bytes,
// x: [nBlocks] quantized blocks, y: [R].
template <class F, int R>
void dotQ8Rows(const uint8_t* w, size_t stride, int64_t nBlocks, const typename F::XBlock* x, float* y) {
    using Block = typename F::Block;
    const Block* rows[R];
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r) {
        rows[r] = reinterpret_cast<const Block*>(w + size_t(r) * stride);
        acc[r][0] = _mm256_setzero_ps();
        acc[r][1] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nBlocks; ++b) {
        const typename F::X xs = F::share(x[b]);
        // Prefetch the next group's block at this column: every line once,
        // one group ahead (see matmul_isa_impl.h).
        for (int r = 0; r < R; ++r) prefetchBlock(reinterpret_cast<const uint8_t*>(rows[r] + b) + R * stride, sizeof(Block));
        for (int r = 0; r < R; ++r) F::dot(rows[r][b], xs, acc[r]);
    }
    for (int r = 0; r < R; ++r) y[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
}

template <class F>
void matvecQ8As(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    const int64_t nBlocks = task.cols / int64_t(sizeof(F::XBlock::qs));
    const auto* x = reinterpret_cast<const typename F::XBlock*>(task.xq);
    int64_t row = rowBegin;
    for (; row + kQ8Rows <= rowEnd; row += kQ8Rows) {
        dotQ8Rows<F, kQ8Rows>(task.w + size_t(row) * task.wStride, task.wStride, nBlocks, x, task.y + row);
    }
    for (; row < rowEnd; ++row) dotQ8Rows<F, 1>(task.w + size_t(row) * task.wStride, task.wStride, nBlocks, x, task.y + row);
}

// Types without an integer kernel do nothing (matmul() sends only hasQ8Matvec types here).
template <class T>
void matvecQ8RowsFor(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    using Fs = Formats<T>;
    switch (task.type) {
    case DType::Q8_0: return matvecQ8As<typename Fs::Q8_0>(task, rowBegin, rowEnd);
    case DType::Q4_0: return matvecQ8As<typename Fs::Q4_0>(task, rowBegin, rowEnd);
    case DType::Q4_1: return matvecQ8As<typename Fs::Q4_1>(task, rowBegin, rowEnd);
    case DType::Q5_0: return matvecQ8As<typename Fs::Q5_0>(task, rowBegin, rowEnd);
    case DType::Q5_1: return matvecQ8As<typename Fs::Q5_1>(task, rowBegin, rowEnd);
    case DType::Q2_K: return matvecQ8As<typename Fs::Q2_K>(task, rowBegin, rowEnd);
    case DType::Q3_K: return matvecQ8As<typename Fs::Q3_K>(task, rowBegin, rowEnd);
    case DType::Q4_K:
        // A traits class may bring a Q4_K of its own (Avx512VnniQ8's, on 512-bit vectors).
        if constexpr (requires { typename T::Q4_K; }) {
            return matvecQ8As<typename T::Q4_K>(task, rowBegin, rowEnd);
        } else {
            return matvecQ8As<typename Fs::Q4_K>(task, rowBegin, rowEnd);
        }
    case DType::Q5_K: return matvecQ8As<typename Fs::Q5_K>(task, rowBegin, rowEnd);
    case DType::Q6_K: return matvecQ8As<typename Fs::Q6_K>(task, rowBegin, rowEnd);
    default: return;
    }
}

}  // namespace
}  // namespace pagoda::cpu::detail

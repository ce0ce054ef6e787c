#pragma once
// The integer kernels (matvec_q8.h), written once against a traits
// class T (Avx2Q8 in matvec_q8_avx2.cpp, Avx512VnniQ8 in
// matvec_q8_avx512.cpp) that supplies the two integer multiply-adds:
//   dotU8S8(acc, u, s)          acc[i] += sum of 4 products u8 * s8, 8 int32 lanes;
//   dotScaled(acc, u, s, scale) acc[i] += the u8 * s8 pair sums (int16) times
//                               the int16 lanes of scale, summed in pairs.
// Both work on 256-bit vectors: 32-byte steps match the 32-element
// sub-blocks (a traits class may bring formats of its own on wider ones).
// Internal linkage throughout, for the reason matmul_isa_impl.h gives.
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
// Tokens per step of several: each row's unpacked block is shared by them.
constexpr int kQ8Tokens = 4;
// Tokens whose quantized x (4096 columns: about 4.5 KiB each) a chunk of rows
// goes through before the next ones.
constexpr int64_t kQ8PanelTokens = 64;
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

// The accumulators of one row and token: two of 8 lanes (a format on
// 512-bit vectors brings its own); the sum of all lanes is the dot product.
struct Acc256 {
    __m256 v[2];
};
float total(const Acc256& acc) { return hsum(_mm256_add_ps(acc.v[0], acc.v[1])); }

// A format that takes one block a step (share(const XBlock&),
// unpack(const Block&)) into an Acc256. A format may instead take
// kBlocksPerStep blocks (share(const XBlock*, n), unpack(const Block*, n),
// n of them present at a row's end) into an Acc of its own.
struct OneBlock {
    static constexpr int kBlocksPerStep = 1;
    using Acc = Acc256;
};

// A format (below) whose row group shares x itself.
template <class B, class XB>
struct SharesX : OneBlock {
    using Block = B;
    using XBlock = XB;
    using X = const XBlock*;
    static X share(const XBlock& x) { return &x; }
    static const XBlock& quants(X x) { return *x; }
};

// One format: Block, XBlock (its quantized x), kBlocksPerStep and Acc
// (OneBlock's), X share(xblock) (what the rows of a tile share for one
// token's block), W unpack(block) (what the tokens of a tile share for one
// row's block), dot(W, X, __m256 acc[2]) (adds the block's contribution to
// the Acc's vectors). A block's float operations are the same whatever else
// the tile holds.
template <class T>
struct Formats {
    // Q8_0: signed integers. vpmaddubsw / vpdpbusd multiply unsigned by
    // signed bytes: |w| times x with w's sign.
    struct Q8_0 : SharesX<BlockQ8_0, XBlockQ8_32> {
        struct W {
            __m256i magnitude, sign;
            float d;
        };
        static W unpack(const Block& b) {
            const __m256i w = load32(b.qs);
            return {_mm256_abs_epi8(w), w, halfToFloat(b.d)};
        }
        static void dot(const W& w, X x, __m256* acc) {
            const __m256i isum =
                T::dotU8S8(_mm256_setzero_si256(), w.magnitude, _mm256_sign_epi8(load32(x->qs), w.sign));
            acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x->d), _mm256_cvtepi32_ps(isum), acc[0]);
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
    // starts at -z sum x (shared by the tile's rows) and needs no sign fix-up.
    struct XZero {
        const XBlockQ8_32* x;
        __m256i start;  // lane 0: -z * x.sum
    };
    template <class B, int kZero, bool kFiveBits>
    struct ZeroPoint : OneBlock {
        using Block = B;
        using XBlock = XBlockQ8_32;
        using X = XZero;
        struct W {
            __m256i q;
            float d;
        };
        static X share(const XBlock& x) { return {&x, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-kZero * x.sum))}; }
        static W unpack(const Block& b) { return {legacyQuants<B, kFiveBits>(b), halfToFloat(b.d)}; }
        static void dot(const W& w, const X& x, __m256* acc) {
            const __m256i isum = T::dotU8S8(x.start, w.q, load32(x.x->qs));
            acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x.x->d), _mm256_cvtepi32_ps(isum), acc[0]);
        }
    };
    using Q4_0 = ZeroPoint<BlockQ4_0, 8, false>;
    using Q5_0 = ZeroPoint<BlockQ5_0, 16, true>;

    // Q4_1, Q5_1: sum (d q + m) x = d sum q x + m sum x, the second term in
    // lane 0 of the other accumulator (sum x = d_x * sum of x's ints, once
    // for the tile's rows).
    struct XOffset {
        const XBlockQ8_32* x;
        __m256 sum;  // lane 0: d_x * x.sum
    };
    template <class B, bool kFiveBits>
    struct Offset : OneBlock {
        using Block = B;
        using XBlock = XBlockQ8_32;
        using X = XOffset;
        struct W {
            __m256i q;
            __m128 dm;  // lanes 0, 1: d, m
        };
        static X share(const XBlock& x) { return {&x, _mm256_zextps128_ps256(_mm_set_ss(x.d * float(x.sum)))}; }
        static W unpack(const Block& b) {
            static_assert(offsetof(B, m) == offsetof(B, d) + 2);
            // d and m in one conversion.
            uint32_t bits;
            std::memcpy(&bits, &b.d, sizeof bits);
            return {legacyQuants<B, kFiveBits>(b), _mm_cvtph_ps(_mm_cvtsi32_si128(int(bits)))};
        }
        static void dot(const W& w, const X& x, __m256* acc) {
            const __m256i isum = T::dotU8S8(_mm256_setzero_si256(), w.q, load32(x.x->qs));
            acc[0] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_mul_ss(w.dm, _mm_set_ss(x.x->d))),
                                     _mm256_cvtepi32_ps(isum), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(w.dm)), x.sum, acc[1]);
        }
    };
    using Q4_1 = Offset<BlockQ4_1, false>;
    using Q5_1 = Offset<BlockQ5_1, true>;

    // The K-quants' W (WK, W16) share a shape: q[i] are the unsigned
    // integers of x's bytes 32i .. 32i + 31, and pairScales[i] the int16
    // multipliers of their pair sums (vpmaddubsw's). Their dot is
    // finish(w, x, products(w, quants(x)), acc): products sums sc * (q . x)
    // over the block in int32 lanes, finish applies the rest. A traits class
    // may take the products on wider vectors (Avx512VnniQ8's Wide): the
    // integer sums, and so the results, are the same.
    template <class W>
    static __m256i products(const W& w, const XBlockQ8_256& x) {
        // Two chains: vpdpwssd's latency would otherwise bound the block.
        __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int i = 0; i < 8; ++i) {
            isum[i % 2] = T::dotScaled(isum[i % 2], w.q[i], load32(x.qs + 32 * i), w.pairScales[i]);
        }
        return _mm256_add_epi32(isum[0], isum[1]);
    }
    // A K-quant format F's dot, from its quants and finish.
    template <class F>
    struct ThenFinish {
        template <class W, class X>
        static void dot(const W& w, const X& x, __m256* acc) {
            F::finish(w, x, products(w, F::quants(x)), acc);
        }
    };

    // Q4_K / Q5_K: sub-blocks of 32; x with its sums over each.
    struct XK {
        const XBlockQ8_256* x;
        __m128i sums32;  // 8 int16
    };
    static XK shareK(const XBlockQ8_256& x) {
        return {&x, _mm_hadd_epi16(load16(x.sums), load16(x.sums + 8))};
    }
    struct WK {
        __m256i q[8];           // the unsigned integers of sub-block j
        __m256i pairScales[8];  // sc_j in every int16 lane
        __m128i mins;           // m_j in int16 lane j
        float d, dmin;
    };
    // chunk(c, q) gives the unsigned integers of chunk c (64 elements) as
    // two vectors: sub-blocks 2c and 2c + 1.
    template <class B, class Chunk>
    static WK unpackK(const B& b, Chunk&& chunk) {
        const KScales k = unpackKScales(b.scales);
        // Lanes 0-7: sc_j; 8-15: m_j.
        const __m256i scalesMins = _mm256_cvtepu8_epi16(_mm_set_epi64x(int64_t(k.mins), int64_t(k.scales)));
        const __m256i scales = _mm256_permute2x128_si256(scalesMins, scalesMins, 0x00);
        WK w;
        for (int c = 0; c < 4; ++c) chunk(c, w.q + 2 * c);
        for (int j = 0; j < 8; ++j) w.pairScales[j] = broadcastI16(scales, j);
        w.mins = _mm256_extracti128_si256(scalesMins, 1);
        w.d = halfToFloat(b.d);
        w.dmin = halfToFloat(b.dmin);
        return w;
    }
    // d * products - dmin * sum_j m_j (sum of x)_j.
    static void finishK(const WK& w, const XK& x, __m256i products, __m256* acc) {
        const __m128i minSums = _mm_madd_epi16(w.mins, x.sums32);
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x.x->d), _mm256_cvtepi32_ps(products), acc[0]);
        acc[1] = _mm256_fmadd_ps(_mm256_set1_ps(-w.dmin * x.x->d), _mm256_zextps128_ps256(_mm_cvtepi32_ps(minSums)),
                                 acc[1]);
    }

    struct Q4_K : OneBlock, ThenFinish<Q4_K> {
        using Block = BlockQ4_K;
        using XBlock = XBlockQ8_256;
        using X = XK;
        using W = WK;
        static X share(const XBlock& x) { return shareK(x); }
        static const XBlock& quants(const X& x) { return *x.x; }
        static void finish(const W& w, const X& x, __m256i products, __m256* acc) { finishK(w, x, products, acc); }
        static W unpack(const Block& b) {
            return unpackK(b, [&](int c, __m256i* q) {
                const __m256i raw = load32(b.qs + 32 * c);
                q[0] = _mm256_and_si256(raw, bytes(0x0f));
                q[1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes(0x0f));
            });
        }
    };

    struct Q5_K : OneBlock, ThenFinish<Q5_K> {
        using Block = BlockQ5_K;
        using XBlock = XBlockQ8_256;
        using X = XK;
        using W = WK;
        static X share(const XBlock& x) { return shareK(x); }
        static const XBlock& quants(const X& x) { return *x.x; }
        static void finish(const W& w, const X& x, __m256i products, __m256* acc) { finishK(w, x, products, acc); }
        static W unpack(const Block& b) {
            const __m256i qh = load32(b.qh);
            return unpackK(b, [&](int c, __m256i* q) {
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

    // Q2_K / Q3_K / Q6_K, 16 sub-blocks of 16.
    struct W16 {
        __m256i q[8];           // [4h + g]: the unsigned integers of elements 128h + 32g .. + 31
        __m256i pairScales[8];  // [4h + g]: sc of those elements' two sub-blocks, in int16 lanes 0-7 and 8-15
        __m256i sumScales;      // int16 lane j: what multiplies (sum of x)_j: Q2_K's m_j, Q3_K's and Q6_K's sc_j
        float d, dmin;
    };
    // sc_j the int16 lanes of scales16 and halfBytes(h, q) the unsigned
    // integers of half h (q[g]: elements 128h + 32g .. + 31).
    template <class HalfBytes>
    static void unpack16(W16& w, __m256i scales16, HalfBytes&& halfBytes) {
        // Half h's 8 scales in both 128-bit halves.
        const __m256i halfScales[2] = {_mm256_permute2x128_si256(scales16, scales16, 0x00),
                                       _mm256_permute2x128_si256(scales16, scales16, 0x11)};
        for (int h = 0; h < 2; ++h) {
            halfBytes(h, w.q + 4 * h);
            for (int g = 0; g < 4; ++g) w.pairScales[4 * h + g] = broadcastI16Pair(halfScales[h], 2 * g, 2 * g + 1);
        }
    }
    // d * (products - 2^shift sum_j sc_j (sum of x)_j): Q3_K's and Q6_K's
    // signed scales and offset integers.
    template <int shift>
    static void finishOffset(const W16& w, const XBlockQ8_256* x, __m256i products, __m256* acc) {
        const __m256i offsets = _mm256_madd_epi16(w.sumScales, load32(x->sums));
        const __m256i total = _mm256_sub_epi32(products, _mm256_slli_epi32(offsets, shift));
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x->d), _mm256_cvtepi32_ps(total), acc[0]);
    }

    // Q2_K: d * products - dmin * sum_j m_j (sum of x)_j, the two sums in
    // separate accumulators as Q4_K's.
    struct Q2_K : SharesX<BlockQ2_K, XBlockQ8_256>, ThenFinish<Q2_K> {
        using W = W16;
        static W unpack(const Block& b) {
            const __m256i raw = _mm256_cvtepu8_epi16(load16(b.scales));
            W w;
            unpack16(w, _mm256_and_si256(raw, _mm256_set1_epi16(0x0f)),
                     [&](int h, __m256i* q) { unpackTwoBitHalf(b.qs, h, q); });
            w.sumScales = _mm256_srli_epi16(raw, 4);
            w.d = halfToFloat(b.d);
            w.dmin = halfToFloat(b.dmin);
            return w;
        }
        static void finish(const W& w, X x, __m256i products, __m256* acc) {
            const __m256i minSums = _mm256_madd_epi16(w.sumScales, load32(x->sums));
            acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x->d), _mm256_cvtepi32_ps(products), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_set1_ps(-w.dmin * x->d), _mm256_cvtepi32_ps(minSums), acc[1]);
        }
    };

    // Q3_K: d * sum_j (sc_j - 32) ((q . x)_j - 4 (sum of x)_j).
    struct Q3_K : SharesX<BlockQ3_K, XBlockQ8_256>, ThenFinish<Q3_K> {
        using W = W16;
        static W unpack(const Block& b) {
            W w;
            w.sumScales = _mm256_cvtepi8_epi16(_mm_sub_epi8(unpackQ3KScales(b.scales), _mm_set1_epi8(32)));
            unpack16(w, w.sumScales, [&](int h, __m256i* q) { unpackQ3KHalf(b, h, q); });
            w.d = halfToFloat(b.d);
            return w;
        }
        static void finish(const W& w, X x, __m256i products, __m256* acc) { finishOffset<2>(w, x, products, acc); }
    };

    // Q6_K: d * sum_j sc_j ((q . x)_j - 32 (sum of x)_j).
    struct Q6_K : SharesX<BlockQ6_K, XBlockQ8_256>, ThenFinish<Q6_K> {
        using W = W16;
        static W unpack(const Block& b) {
            W w;
            w.sumScales = _mm256_cvtepi8_epi16(load16(b.scales));
            unpack16(w, w.sumScales, [&](int h, __m256i* q) { unpackQ6KHalf(b, h, q); });
            w.d = halfToFloat(b.d);
            return w;
        }
        static void finish(const W& w, X x, __m256i products, __m256* acc) { finishOffset<5>(w, x, products, acc); }
    };
};

template <class F>
typename F::X shareStep(const typename F::XBlock* x, int n) {
    if constexpr (F::kBlocksPerStep == 1) {
        return F::share(*x);
    } else {
        return F::share(x, n);
    }
}
template <class F>
typename F::W unpackStep(const typename F::Block* b, int n) {
    if constexpr (F::kBlocksPerStep == 1) {
        return F::unpack(*b);
    } else {
        return F::unpack(b, n);
    }
}

// y[t * yStride + r] = dot(row r, token t's x) for R consecutive rows and T
// tokens. w: [R][stride] bytes; x: token t's nBlocks quantized blocks at
// x + t * nBlocks. Each row's block is unpacked once for the T tokens and
// each token's block shared once by the R rows, and every (row, token)
// pair takes the same float operations in the same order whatever R and T
// are: a token's outputs are the same bits alone and in a batch.
template <class F, int R, int T>
void dotQ8Tile(const uint8_t* w, size_t stride, int64_t nBlocks, const typename F::XBlock* x, float* y,
               int64_t yStride) {
    using Block = typename F::Block;
    constexpr int kStep = F::kBlocksPerStep;
    const Block* rows[R];
    typename F::Acc acc[R][T] = {};
    for (int r = 0; r < R; ++r) rows[r] = reinterpret_cast<const Block*>(w + size_t(r) * stride);
    for (int64_t b = 0; b < nBlocks; b += kStep) {
        const int n = nBlocks - b < kStep ? int(nBlocks - b) : kStep;
        typename F::X xs[T];
        for (int t = 0; t < T; ++t) xs[t] = shareStep<F>(x + t * nBlocks + b, n);
        // Prefetch the next row group's blocks at this column: every line
        // once, one group ahead (see matmul_isa_impl.h).
        for (int r = 0; r < R; ++r) {
            prefetchBlock(reinterpret_cast<const uint8_t*>(rows[r] + b) + R * stride, sizeof(Block) * size_t(n));
        }
        for (int r = 0; r < R; ++r) {
            const typename F::W unpacked = unpackStep<F>(rows[r] + b, n);
            for (int t = 0; t < T; ++t) F::dot(unpacked, xs[t], acc[r][t].v);
        }
    }
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) y[t * yStride + r] = total(acc[r][t]);
    }
}

// Rows [row, row + R) for tokens [t0, t1): groups of kQ8Tokens, then one
// at a time.
template <class F, int R>
void dotQ8RowGroup(const MatmulTask& task, int64_t row, int64_t t0, int64_t t1) {
    const int64_t nBlocks = task.cols / int64_t(sizeof(F::XBlock::qs));
    const auto* x = reinterpret_cast<const typename F::XBlock*>(task.xq);
    const uint8_t* w = task.w + size_t(row) * task.wStride;
    int64_t t = t0;
    for (; t + kQ8Tokens <= t1; t += kQ8Tokens) {
        dotQ8Tile<F, R, kQ8Tokens>(w, task.wStride, nBlocks, x + t * nBlocks, task.y + t * task.rows + row, task.rows);
    }
    for (; t < t1; ++t) dotQ8Tile<F, R, 1>(w, task.wStride, nBlocks, x + t * nBlocks, task.y + t * task.rows + row, 0);
}

// Tokens in panels of kQ8PanelTokens, whose quantized x stays in L2 while
// the chunk's rows go through it.
template <class F>
void matmulQ8As(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    for (int64_t t0 = 0; t0 < task.nTokens; t0 += kQ8PanelTokens) {
        const int64_t t1 = t0 + kQ8PanelTokens < task.nTokens ? t0 + kQ8PanelTokens : task.nTokens;
        int64_t row = rowBegin;
        for (; row + kQ8Rows <= rowEnd; row += kQ8Rows) dotQ8RowGroup<F, kQ8Rows>(task, row, t0, t1);
        for (; row < rowEnd; ++row) dotQ8RowGroup<F, 1>(task, row, t0, t1);
    }
}

// Types without an integer kernel do nothing (matmul() sends only
// hasInt8Kernel types here). T::Own<Formats<T>> is the traits class's set
// of formats: Formats<T> itself, or with some replaced by its own
// (Avx512VnniQ8's, on 512-bit vectors).
template <class T>
void matmulQ8RowsFor(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    using Fs = typename T::template Own<Formats<T>>;
    switch (task.type) {
    case DType::Q8_0: return matmulQ8As<typename Fs::Q8_0>(task, rowBegin, rowEnd);
    case DType::Q4_0: return matmulQ8As<typename Fs::Q4_0>(task, rowBegin, rowEnd);
    case DType::Q4_1: return matmulQ8As<typename Fs::Q4_1>(task, rowBegin, rowEnd);
    case DType::Q5_0: return matmulQ8As<typename Fs::Q5_0>(task, rowBegin, rowEnd);
    case DType::Q5_1: return matmulQ8As<typename Fs::Q5_1>(task, rowBegin, rowEnd);
    case DType::Q2_K: return matmulQ8As<typename Fs::Q2_K>(task, rowBegin, rowEnd);
    case DType::Q3_K: return matmulQ8As<typename Fs::Q3_K>(task, rowBegin, rowEnd);
    case DType::Q4_K: return matmulQ8As<typename Fs::Q4_K>(task, rowBegin, rowEnd);
    case DType::Q5_K: return matmulQ8As<typename Fs::Q5_K>(task, rowBegin, rowEnd);
    case DType::Q6_K: return matmulQ8As<typename Fs::Q6_K>(task, rowBegin, rowEnd);
    default: return;
    }
}

}  // namespace
}  // namespace pagoda::cpu::detail

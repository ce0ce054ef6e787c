// The AVX-512 VNNI integer kernels. Compiled with PAGODA_AVX512_FLAGS
// plus VNNI; entered only when int8Kernel(ctx) picks them (CpuContext::simd
// is Avx512 and detectAvx512Vnni() holds). Q4_K and the blocks of 32, whose
// loops are bound by instructions rather than memory, have 512-bit formats
// of their own; the other K-quants take the shared formats' products on
// 512-bit vectors (Wide); the shared multiply-adds run on the 256-bit (VL)
// forms (Own, below).

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/matvec_q8_impl.h"

namespace pagoda::cpu::detail {
namespace {

// Lanes 0-15 take int16 lane j of v, lanes 16-31 lane k.
__m512i broadcastI16Pair512(__m512i v, int j, int k) {
    const __m512i index =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(short(j))), _mm256_set1_epi16(short(k)), 1);
    return _mm512_permutexvar_epi16(index, v);
}

__m512i join(const int8_t* low, const int8_t* high) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load32(low)), load32(high), 1);
}

// Lanes 0-7 low, 8-15 high.
__m512 halves(float low, float high) {
    return _mm512_insertf32x8(_mm512_set1_ps(low), _mm256_set1_ps(high), 1);
}

// Acc256's two accumulators as the halves of one vector: one conversion
// and one multiply-add a block update both, and the total is Acc256's.
struct AccHalves {
    __m512 v[1];
};
float total(const AccHalves& acc) {
    return hsum(_mm256_add_ps(_mm512_castps512_ps256(acc.v[0]), _mm512_extractf32x8_ps(acc.v[0], 1)));
}

// Q4_K on 512-bit vectors: its integer loop is bound by instructions, not
// by memory (4096 x 4096 at 2 threads: 29 GB/s where Q8_0 reads 41), and a
// 64-byte load of qs is two chunks of 64 elements. Its low nibbles are
// sub-blocks 4p and 4p + 2, its high ones 4p + 1 and 4p + 3, so x is
// shared (once for the row group) in that order.
struct Q4K512 : OneBlock {
    using Block = BlockQ4_K;
    using XBlock = XBlockQ8_256;
    using Acc = AccHalves;
    struct X {
        __m512 d;
        __m128i sums32;           // 8 int16: the sums of x over each sub-block of 32
        __m512i low[2], high[2];  // [p]: x of sub-blocks 4p, 4p + 2; 4p + 1, 4p + 3
    };
    static X share(const XBlock& x) {
        X s{_mm512_set1_ps(x.d), _mm_hadd_epi16(load16(x.sums), load16(x.sums + 8)), {}, {}};
        for (int p = 0; p < 2; ++p) {
            s.low[p] = join(x.qs + 128 * p, x.qs + 128 * p + 64);
            s.high[p] = join(x.qs + 128 * p + 32, x.qs + 128 * p + 96);
        }
        return s;
    }
    struct W {
        __m512i low[2], high[2];  // [p]: the nibbles of sub-blocks 4p, 4p + 2; 4p + 1, 4p + 3
        __m512i lowScales[2];     // [p]: sc of sub-block 4p in int16 lanes 0-15, of 4p + 2 in lanes 16-31
        __m512i highScales[2];    // [p]: as lowScales, sub-blocks 4p + 1 and 4p + 3
        __m128i mins;             // m_j in int16 lane j
        __m512 scales;            // d in lanes 0-7, -dmin in lanes 8-15
    };
    static W unpack(const Block& b) {
        const KScales k = unpackKScales(b.scales);
        const __m512i scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(k.scales))));
        const __m512i nibble = _mm512_set1_epi8(0x0f);
        W w;
        for (int p = 0; p < 2; ++p) {
            const __m512i raw = _mm512_loadu_si512(b.qs + 64 * p);
            w.low[p] = _mm512_and_si512(raw, nibble);
            w.high[p] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), nibble);
            w.lowScales[p] = broadcastI16Pair512(scales, 4 * p, 4 * p + 2);
            w.highScales[p] = broadcastI16Pair512(scales, 4 * p + 1, 4 * p + 3);
        }
        w.mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(k.mins)));
        w.scales = halves(halfToFloat(b.d), -halfToFloat(b.dmin));
        return w;
    }
    // d * sum_j sc_j (q . x)_j - dmin * sum_j m_j (sum of x)_j, as dotK's:
    // the integer sums in lanes 0-7, the offsets' in lanes 8-11.
    static void dot(const W& w, const X& x, __m512* acc) {
        const __m128i minSums = _mm_madd_epi16(w.mins, x.sums32);
        __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int p = 0; p < 2; ++p) {
            isum[0] = _mm512_dpwssd_epi32(isum[0], _mm512_maddubs_epi16(w.low[p], x.low[p]), w.lowScales[p]);
            isum[1] = _mm512_dpwssd_epi32(isum[1], _mm512_maddubs_epi16(w.high[p], x.high[p]), w.highScales[p]);
        }
        const __m512i total = _mm512_add_epi32(isum[0], isum[1]);
        const __m256i sum = _mm256_add_epi32(_mm512_castsi512_si256(total), _mm512_extracti64x4_epi64(total, 1));
        const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(sum), _mm256_zextsi128_si256(minSums), 1);
        acc[0] = _mm512_fmadd_ps(_mm512_mul_ps(w.scales, x.d), _mm512_cvtepi32_ps(both), acc[0]);
    }
};

// A K-quant format of the shared ones (Q2_K, Q3_K, Q5_K, Q6_K) with its
// products on 512-bit vectors: q[2k] and q[2k + 1] joined face x's 64
// bytes at 64k, 4 vpmaddubsw and vpdpwssd where 256-bit vectors take 8. The
// int32 sums are F's, and finish is F's: the same bits.
template <class F>
struct Wide : F {
    struct W {
        typename F::W narrow;  // unpacked as F does, for finish
        __m512i q[4], pairScales[4];
    };
    static W unpack(const typename F::Block& b) {
        W w{F::unpack(b), {}, {}};
        for (int k = 0; k < 4; ++k) {
            w.q[k] = _mm512_inserti64x4(_mm512_castsi256_si512(w.narrow.q[2 * k]), w.narrow.q[2 * k + 1], 1);
            w.pairScales[k] = _mm512_inserti64x4(_mm512_castsi256_si512(w.narrow.pairScales[2 * k]),
                                                 w.narrow.pairScales[2 * k + 1], 1);
        }
        return w;
    }
    static void dot(const W& w, const typename F::X& x, __m256* acc) {
        const XBlockQ8_256& quants = F::quants(x);
        // Two chains, as F's.
        __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int k = 0; k < 4; ++k) {
            isum[k % 2] = _mm512_dpwssd_epi32(
                isum[k % 2], _mm512_maddubs_epi16(w.q[k], _mm512_loadu_si512(quants.qs + 64 * k)), w.pairScales[k]);
        }
        const __m512i total = _mm512_add_epi32(isum[0], isum[1]);
        F::finish(w.narrow, x,
                  _mm256_add_epi32(_mm512_castsi512_si256(total), _mm512_extracti64x4_epi64(total, 1)), acc);
    }
};

// The blocks of 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) two a step on 512-bit
// vectors: lanes 0-7 take the step's first block, lanes 8-15 its second
// (zeros where a row's odd last block has none). A block's int32 lanes
// hold the sums the 256-bit kernels' do; its scale d_w * d_x is one lane-wise
// product, so a step costs one vpdpbusd, a multiply, a conversion and a
// multiply-add per row and token where two blocks on 256-bit vectors cost
// about four times that. Even and odd blocks accumulate in separate lanes.
struct Acc512 {
    __m512 v[2];
};
float total(const Acc512& acc) {
    const __m512 sum = _mm512_add_ps(acc.v[0], acc.v[1]);
    return hsum(_mm256_add_ps(_mm512_castps512_ps256(sum), _mm512_extractf32x8_ps(sum, 1)));
}
// The step's blocks' 32 bytes at p(i), the second's zero when n == 1.
template <class Bytes>
__m512i joinBlocks(int n, Bytes&& p) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(p(0)), n == 2 ? p(1) : _mm256_setzero_si256(), 1);
}
// Lane 0 low, lane 8 high, the others zero.
__m512i laneStarts(int low, int high) {
    return _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_zextsi128_si256(_mm_cvtsi32_si128(low))),
                              _mm256_zextsi128_si256(_mm_cvtsi32_si128(high)), 1);
}

// Fs: Formats<Avx512VnniQ8>, for its unpacking of 4- and 5-bit integers.
template <class Fs>
struct Pairs {
    struct Base {
        using XBlock = XBlockQ8_32;
        using Acc = Acc512;
        static constexpr int kBlocksPerStep = 2;
    };
    static __m512 scales(const XBlockQ8_32* x, int n) { return halves(x[0].d, n == 2 ? x[1].d : 0.0f); }
    static __m512i quants(const XBlockQ8_32* x, int n) {
        return joinBlocks(n, [&](int i) { return load32(x[i].qs); });
    }

    // The unsigned 4- and 5-bit integers of a step's blocks, laid out as
    // Formats' legacyQuants: 128-bit quarters of qs (low nibbles), qs >> 4
    // (high ones) for each block; Q5's bit 4 of byte i from bit i of the
    // blocks' qh, as one 64-bit mask.
    template <class B, bool kFiveBits>
    static __m512i legacyQuants(const B* b, int n) {
        const __m512i raw = _mm512_castsi256_si512(
            _mm256_set_m128i(n == 2 ? load16(b[1].qs) : _mm_setzero_si128(), load16(b[0].qs)));
        const __m512i quarters = _mm512_shuffle_i64x2(raw, raw, _MM_SHUFFLE(1, 1, 0, 0));
        const __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(quarters, 0xff00ff00, quarters, 4),
                                           _mm512_set1_epi8(0x0f));
        if constexpr (!kFiveBits) {
            return q;
        } else {
            uint32_t low;
            uint32_t high = 0;
            std::memcpy(&low, b[0].qh, sizeof low);
            if (n == 2) std::memcpy(&high, b[1].qh, sizeof high);
            return _mm512_or_si512(q, _mm512_maskz_mov_epi8(low | uint64_t(high) << 32, _mm512_set1_epi8(0x10)));
        }
    }
    // Lanes 0-7 lane i of f, 8-15 lane j.
    static __m512 spread(__m128 f, int i, int j) {
        return _mm512_permutexvar_ps(_mm512_inserti64x4(_mm512_set1_epi32(i), _mm256_set1_epi32(j), 1),
                                     _mm512_castps128_ps512(f));
    }
    // The blocks' d: lanes 0-7 the first's, 8-15 the second's (zeros where
    // it has none), converted at once.
    template <class B>
    static __m512 ds(const B* b, int n) {
        const int high = n == 2 ? b[1].d : 0;
        return spread(_mm_cvtph_ps(_mm_cvtsi32_si128(b[0].d | high << 16)), 0, 1);
    }
    // Lanes 0-3: d and m of the first block, d and m of the second.
    template <class B>
    static __m128 dms(const B* b, int n) {
        static_assert(offsetof(B, m) == offsetof(B, d) + 2);
        uint32_t low;
        uint32_t high = 0;
        std::memcpy(&low, &b[0].d, sizeof low);
        if (n == 2) std::memcpy(&high, &b[1].d, sizeof high);
        return _mm_cvtph_ps(_mm_cvtsi64_si128(int64_t(low | uint64_t(high) << 32)));
    }

    // Q8_0: x + 128 as unsigned bytes times the signed weights, the sums
    // started at -128 times the weights' (per lane of 4), which gives the
    // sums of w * x themselves: one instruction per row and token.
    struct Q8_0 : Base {
        using Block = BlockQ8_0;
        struct X {
            __m512i biased;  // x + 128, unsigned
            __m512 d;
        };
        struct W {
            __m512i w, start;  // start: -128 * the sum of each lane's 4 weights
            __m512 d;
        };
        static X share(const XBlockQ8_32* x, int n) {
            return {_mm512_xor_si512(quants(x, n), _mm512_set1_epi8(char(0x80))), scales(x, n)};
        }
        static W unpack(const Block* b, int n) {
            const __m512i w = joinBlocks(n, [&](int i) { return load32(b[i].qs); });
            const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(char(0x80)), w);
            return {w, _mm512_sub_epi32(_mm512_setzero_si512(), sums), ds(b, n)};
        }
        static void dot(const W& w, const X& x, __m512* acc) {
            const __m512i isum = _mm512_dpbusd_epi32(w.start, x.biased, w.w);
            acc[0] = _mm512_fmadd_ps(_mm512_mul_ps(w.d, x.d), _mm512_cvtepi32_ps(isum), acc[0]);
        }
    };

    // Q4_0, Q5_0: the sums start at -z * the sum of x (Formats' ZeroPoint).
    template <class B, int kZero, bool kFiveBits>
    struct ZeroPoint : Base {
        using Block = B;
        struct X {
            __m512i qs, start;  // start: -z * x.sum in lanes 0 and 8
            __m512 d;
        };
        struct W {
            __m512i q;
            __m512 d;
        };
        static X share(const XBlockQ8_32* x, int n) {
            return {quants(x, n), laneStarts(-kZero * x[0].sum, n == 2 ? -kZero * x[1].sum : 0), scales(x, n)};
        }
        static W unpack(const Block* b, int n) { return {legacyQuants<B, kFiveBits>(b, n), ds(b, n)}; }
        static void dot(const W& w, const X& x, __m512* acc) {
            const __m512i isum = _mm512_dpbusd_epi32(x.start, w.q, x.qs);
            acc[0] = _mm512_fmadd_ps(_mm512_mul_ps(w.d, x.d), _mm512_cvtepi32_ps(isum), acc[0]);
        }
    };
    using Q4_0 = ZeroPoint<BlockQ4_0, 8, false>;
    using Q5_0 = ZeroPoint<BlockQ5_0, 16, true>;

    // Q4_1, Q5_1: m times d_x * the sum of x's ints in the other
    // accumulator (Formats' Offset).
    template <class B, bool kFiveBits>
    struct Offset : Base {
        using Block = B;
        struct X {
            __m512i qs;
            __m512 d;
            __m512 sum;  // d_x * x.sum in lanes 0 and 8
        };
        struct W {
            __m512i q;
            __m512 d, m;
        };
        static X share(const XBlockQ8_32* x, int n) {
            const float high = n == 2 ? x[1].d * float(x[1].sum) : 0.0f;
            const __m512 sum = _mm512_insertf32x8(_mm512_zextps256_ps512(_mm256_zextps128_ps256(
                                                      _mm_set_ss(x[0].d * float(x[0].sum)))),
                                                  _mm256_zextps128_ps256(_mm_set_ss(high)), 1);
            return {quants(x, n), scales(x, n), sum};
        }
        static W unpack(const Block* b, int n) {
            const __m128 dm = dms(b, n);
            return {legacyQuants<B, kFiveBits>(b, n), spread(dm, 0, 2), spread(dm, 1, 3)};
        }
        static void dot(const W& w, const X& x, __m512* acc) {
            const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.q, x.qs);
            acc[0] = _mm512_fmadd_ps(_mm512_mul_ps(w.d, x.d), _mm512_cvtepi32_ps(isum), acc[0]);
            acc[1] = _mm512_fmadd_ps(w.m, x.sum, acc[1]);
        }
    };
    using Q4_1 = Offset<BlockQ4_1, false>;
    using Q5_1 = Offset<BlockQ5_1, true>;
};

// vpdpbusd sums four u8 * s8 products into each int32 lane; vpdpwssd
// multiplies vpmaddubsw's int16 pair sums by the scales and accumulates.
struct Avx512VnniQ8 {
    static __m256i dotU8S8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
    static __m256i dotScaled(__m256i acc, __m256i u, __m256i s, __m256i scale) {
        return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale);
    }
    // Its own formats: the blocks of 32 in pairs, Q4_K on 512-bit vectors,
    // the other K-quants' products on 512-bit vectors.
    template <class Fs>
    struct Own : Fs {
        using Q8_0 = typename Pairs<Fs>::Q8_0;
        using Q4_0 = typename Pairs<Fs>::Q4_0;
        using Q4_1 = typename Pairs<Fs>::Q4_1;
        using Q5_0 = typename Pairs<Fs>::Q5_0;
        using Q5_1 = typename Pairs<Fs>::Q5_1;
        using Q2_K = Wide<typename Fs::Q2_K>;
        using Q3_K = Wide<typename Fs::Q3_K>;
        using Q4_K = Q4K512;
        using Q5_K = Wide<typename Fs::Q5_K>;
        using Q6_K = Wide<typename Fs::Q6_K>;
    };
};

}  // namespace

void matmulQ8RowsAvx512Vnni(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulQ8RowsFor<Avx512VnniQ8>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

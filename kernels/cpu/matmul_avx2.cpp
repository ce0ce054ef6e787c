// The baseline (x86-64-v3) instantiation of the matmul kernels.
//
// Block formats turn their integers into f32 (widen, then convert), take
// the integer dot product with x per sub-block and apply the sub-block's
// scale once. Formats with an offset (d * q + m, d * sc * q - dmin * m)
// add m times the sum of x over the sub-block, a sum every row of a decode
// group shares. Dequantizing computes each value with one fused
// multiply-add, so it is correctly rounded.

#include <type_traits>

#include "kernels/cpu/matmul_isa_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct Avx2 {
    using Vec = __m256;
    static constexpr int kWidth = 8;
    // Small batch: 2 x 6 accumulators + 2 weight vectors + 1 x vector = 15
    // registers (faster than 2 x 4, 3 x 4, 4 x 3 and 1 x 12).
    static constexpr int kBatchRows = 2;
    static constexpr int kBatchTokens = 6;
    // Prefill: 3 x 4 accumulators + 3 weight vectors + 1 x vector = all 16 registers.
    static constexpr int kTileRows = 3;
    static constexpr int kTileTokens = 4;

    static Vec zero() { return _mm256_setzero_ps(); }
    static Vec load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
    static __m256i tailMask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static Vec loadPartial(const float* p, int n) { return _mm256_maskload_ps(p, tailMask(n)); }
    static void storePartial(float* p, Vec v, int n) { _mm256_maskstore_ps(p, tailMask(n), v); }
    static Vec set1(float v) { return _mm256_set1_ps(v); }
    static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
    static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
    static float hsum(Vec v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }

    static __m128i load8x16(const uint16_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
    // AVX2 has no 16-bit masked load: the tail goes through a zeroed copy.
    static __m128i load8x16Partial(const uint16_t* p, int n) {
        alignas(16) uint16_t tmp[8] = {};
        for (int i = 0; i < n; ++i) tmp[i] = p[i];
        return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    static Vec bf16ToF32(__m128i h) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static Vec loadF16(const uint16_t* p) { return _mm256_cvtph_ps(load8x16(p)); }
    static Vec loadF16Partial(const uint16_t* p, int n) { return _mm256_cvtph_ps(load8x16Partial(p, n)); }
    static Vec loadBf16(const uint16_t* p) { return bf16ToF32(load8x16(p)); }
    static Vec loadBf16Partial(const uint16_t* p, int n) { return bf16ToF32(load8x16Partial(p, n)); }

    // ---- Helpers of the block formats ----

    static Vec scaleOf(uint16_t d) { return _mm256_cvtph_ps(_mm_set1_epi16(short(d))); }
    static __m128i load16Bytes(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
    static __m128i load8Bytes(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
    static __m256i load32Bytes(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static __m256i bytes(char v) { return _mm256_set1_epi8(v); }
    // Low 8 signed / unsigned bytes of v as floats.
    static Vec i8ToF32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
    static Vec u8ToF32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
    // 32 signed / unsigned bytes as 4 vectors, in order.
    template <bool kSigned>
    static void bytesToF32(__m256i v, Vec* out) {
        const auto convert = [](__m128i b) { return kSigned ? i8ToF32(b) : u8ToF32(b); };
        const __m128i lo = _mm256_castsi256_si128(v);
        const __m128i hi = _mm256_extracti128_si256(v, 1);
        out[0] = convert(lo);
        out[1] = convert(_mm_unpackhi_epi64(lo, lo));
        out[2] = convert(hi);
        out[3] = convert(_mm_unpackhi_epi64(hi, hi));
    }
    // sum_i q[i] * x[i] over n vectors, lane by lane.
    static Vec intDot(const Vec* q, const float* x, int n) {
        Vec sum = mul(q[0], load(x));
        for (int i = 1; i < n; ++i) sum = fma(q[i], load(x + 8 * i), sum);
        return sum;
    }
    // The value of each integer with one rounding: q * scale + offset.
    static void storeValues(const Vec* q, int n, Vec scale, Vec offset, float* out) {
        for (int i = 0; i < n; ++i) store(out + 8 * i, fma(q[i], scale, offset));
    }

    // Q5_0 / Q5_1: 32 five-bit integers as bytes, in element order.
    static __m256i fiveBitBytes(const uint8_t* qs, const uint8_t* qh) {
        const __m128i raw = load16Bytes(qs);
        const __m128i low = _mm_set1_epi8(0x0f);
        const __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low), _mm_and_si128(raw, low));
        uint32_t bits;
        std::memcpy(&bits, qh, sizeof(bits));
        // Byte i takes byte i / 8 of the bits, then tests bit i % 8.
        const __m256i spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(int(bits)),
            _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
        const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201));
        const __m256i isSet = _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
        return _mm256_or_si256(nib, _mm256_and_si256(isSet, bytes(0x10)));
    }

    // The integers of a 32-element block as 4 vectors. Q4_0 and Q5_0 are
    // offset in the bytes (by -8, -16), so that the scale is their only factor.
    static void ints(const BlockQ8_0& b, Vec* q) {
        for (int i = 0; i < 4; ++i) q[i] = i8ToF32(load8Bytes(reinterpret_cast<const uint8_t*>(b.qs) + 8 * i));
    }
    static void ints(const BlockQ4_0& b, Vec* q) {
        const __m128i raw = load16Bytes(b.qs);
        const __m128i nibble = _mm_set1_epi8(0x0f);
        const __m128i offset = _mm_set1_epi8(8);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, nibble), offset);                      // elements 0..15
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), nibble), offset);  // 16..31
        q[0] = i8ToF32(lo);
        q[1] = i8ToF32(_mm_unpackhi_epi64(lo, lo));
        q[2] = i8ToF32(hi);
        q[3] = i8ToF32(_mm_unpackhi_epi64(hi, hi));
    }
    // Element i < 16 is the low nibble of qs[i], element i + 16 its high nibble.
    static void ints(const BlockQ4_1& b, Vec* q) {
        const __m256i b0 = _mm256_cvtepu8_epi32(load8Bytes(b.qs));      // elements 0..7 and 16..23
        const __m256i b1 = _mm256_cvtepu8_epi32(load8Bytes(b.qs + 8));  // 8..15 and 24..31
        const __m256i low = _mm256_set1_epi32(0x0f);
        q[0] = _mm256_cvtepi32_ps(_mm256_and_si256(b0, low));
        q[1] = _mm256_cvtepi32_ps(_mm256_and_si256(b1, low));
        q[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4));
        q[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4));
    }
    static void ints(const BlockQ5_0& b, Vec* q) {
        bytesToF32<true>(_mm256_sub_epi8(fiveBitBytes(b.qs, b.qh), bytes(16)), q);
    }
    static void ints(const BlockQ5_1& b, Vec* q) { bytesToF32<false>(fiveBitBytes(b.qs, b.qh), q); }

    // A 32-element format: acc[0] += d * sum_i q_i x_i and, with an offset
    // m, acc[1] += m * sum_i x_i.
    template <class B>
    struct Format32 {
        using Block = B;
        static constexpr int kElements = 32;
        // What a decode group shares: x as 4 vectors and their lane sum.
        struct X {
            Vec v[4];
            Vec sum;
        };
        static X share(const float* x) {
            X s;
            for (int i = 0; i < 4; ++i) s.v[i] = load(x + 8 * i);
            s.sum = add(add(s.v[0], s.v[1]), add(s.v[2], s.v[3]));
            return s;
        }
        static constexpr int kSteps = 1;
        static constexpr bool kHasOffset = requires(const Block& b) { b.m; };
        struct Prep {
            Vec d;
            Vec m;  // zero without an offset
        };
        static Prep prepare(const Block& b) {
            if constexpr (kHasOffset) {
                return {scaleOf(b.d), scaleOf(b.m)};
            } else {
                return {scaleOf(b.d), zero()};
            }
        }
        static void dot(const Block& b, const Prep& p, const X& x, int, Vec* acc) {
            Vec q[4];
            ints(b, q);
            Vec sum = mul(q[0], x.v[0]);
            for (int i = 1; i < 4; ++i) sum = fma(q[i], x.v[i], sum);
            acc[0] = fma(p.d, sum, acc[0]);
            if constexpr (kHasOffset) acc[1] = fma(p.m, x.sum, acc[1]);
        }
        static void dequant(const Block& b, float* out) {
            Vec q[4];
            ints(b, q);
            const Prep p = prepare(b);
            storeValues(q, 4, p.d, p.m, out);
        }
    };

    // Lane j = the sum of the lanes of s[j], for 8 vectors s. Transposing
    // reduction: after two rounds of hadd, 128-bit half h of ab holds half
    // h's sums of s[0..3]; the halves then add up.
    static Vec laneSums(const Vec* s) {
        const Vec ab = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
        const Vec cd = _mm256_hadd_ps(_mm256_hadd_ps(s[4], s[5]), _mm256_hadd_ps(s[6], s[7]));
        return add(_mm256_permute2f128_ps(ab, cd, 0x20), _mm256_permute2f128_ps(ab, cd, 0x31));
    }

    // Q4_K / Q5_K: the 8 sub-block scales d * sc_j and offsets -dmin * m_j
    // (exact: 11 x 6 significant bits).
    struct KSubScales {
        alignas(32) float scale[8];
        alignas(32) float offset[8];
    };
    static KSubScales kSubScales(uint16_t d, uint16_t dmin, const uint8_t* packed) {
        const KScales k = unpackKScales(packed);
        KSubScales s;
        store(s.scale, mul(u8ToF32(_mm_cvtsi64_si128(int64_t(k.scales))), scaleOf(d)));
        store(s.offset, mul(u8ToF32(_mm_cvtsi64_si128(int64_t(k.mins))), scaleOf(dmin ^ 0x8000)));
        return s;
    }
    // Q4_K / Q5_K chunk c (64 elements) as its two sub-blocks of 32
    // integers: f(element offset, sub-block, integers as 4 vectors).
    template <class F>
    static void kChunk(const BlockQ4_K& b, int c, F&& f) {
        const __m256i low = _mm256_set1_epi32(0x0f);
        Vec lo[4];
        Vec hi[4];
        for (int k = 0; k < 4; ++k) {
            const __m256i q = _mm256_cvtepu8_epi32(load8Bytes(b.qs + 32 * c + 8 * k));
            lo[k] = _mm256_cvtepi32_ps(_mm256_and_si256(q, low));
            hi[k] = _mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4));
        }
        f(64 * c, 2 * c, lo);
        f(64 * c + 32, 2 * c + 1, hi);
    }
    template <class F>
    static void kChunk(const BlockQ5_K& b, int c, F&& f) {
        const __m256i raw = load32Bytes(b.qs + 32 * c);
        // Bits 2c and 2c + 1 of each qh byte, moved to bit 4. 16-bit shifts:
        // bits crossing into the other byte are masked off.
        const __m256i high = _mm256_srli_epi16(load32Bytes(b.qh), 2 * c);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(raw, bytes(0x0f)),
                                           _mm256_and_si256(_mm256_slli_epi16(high, 4), bytes(0x10)));
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes(0x0f)),
                                           _mm256_and_si256(_mm256_slli_epi16(high, 3), bytes(0x10)));
        Vec q[4];
        bytesToF32<false>(lo, q);
        f(64 * c, 2 * c, q);
        bytesToF32<false>(hi, q);
        f(64 * c + 32, 2 * c + 1, q);
    }
    // Q4_K / Q5_K: acc[0] += sum_j d sc_j (q . x)_j and
    // acc[1] -= sum_j dmin m_j (sum of x)_j.
    template <class B>
    struct KFormat {
        using Block = B;
        static constexpr int kElements = kQK_K;
        // What a decode group shares: x itself, and lane j = the sum of x
        // over sub-block j (32 elements).
        struct X {
            const float* x;
            Vec subSums;
        };
        static X share(const float* x) {
            Vec s[8];
            for (int j = 0; j < 8; ++j) {
                const float* p = x + 32 * j;
                s[j] = add(add(load(p), load(p + 8)), add(load(p + 16), load(p + 24)));
            }
            return {x, laneSums(s)};
        }
        static constexpr int kSteps = 4;  // chunks of 64
        using Prep = KSubScales;
        static Prep prepare(const Block& b) { return kSubScales(b.d, b.dmin, b.scales); }
        static void dot(const Block& b, const Prep& p, const X& x, int c, Vec* acc) {
            if (c == 0) acc[1] = fma(load(p.offset), x.subSums, acc[1]);
            kChunk(b, c, [&](int e, int j, const Vec* q) {
                acc[j % 2] = fma(set1(p.scale[j]), intDot(q, x.x + e, 4), acc[j % 2]);
            });
        }
        static void dequant(const Block& b, float* out) {
            const Prep p = prepare(b);
            for (int c = 0; c < 4; ++c) {
                kChunk(b, c, [&](int e, int j, const Vec* q) {
                    storeValues(q, 4, set1(p.scale[j]), set1(p.offset[j]), out + e);
                });
            }
        }
    };

    // A format with 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K), one half (128
    // elements) per step: acc[0/1] += sum_j scale_j (q . x)_j and, with an
    // offset, acc[1] += sum_j offset_j (sum of x)_j. From the type's pieces
    // P: Block, Prep (scale[16], with an offset offset[16]), prepare(block),
    // and halfBytes(block, h, q): the integers of half h as signed bytes,
    // q[g] for elements 128h + 32g .. + 31.
    template <class P>
    struct Format16 : P {
        using typename P::Block;
        using typename P::Prep;
        static constexpr int kElements = kQK_K;
        static constexpr int kSteps = 2;
        static constexpr bool kHasOffset = requires(const Prep& p) { p.offset; };
        // What a decode group shares: x, and with an offset lane j of
        // subSums[k] = the sum of x over sub-block 8k + j.
        struct XOnly {
            const float* x;
        };
        struct XWithSums {
            const float* x;
            Vec subSums[2];
        };
        using X = std::conditional_t<kHasOffset, XWithSums, XOnly>;
        static X share(const float* x) {
            if constexpr (kHasOffset) {
                Vec s[16];
                for (int j = 0; j < 16; ++j) s[j] = add(load(x + 16 * j), load(x + 16 * j + 8));
                return {x, {laneSums(s), laneSums(s + 8)}};
            } else {
                return {x};
            }
        }
        static void dot(const Block& b, const Prep& p, const X& x, int h, Vec* acc) {
            if constexpr (kHasOffset) {
                if (h == 0) acc[1] = fma(load(p.offset), x.subSums[0], fma(load(p.offset + 8), x.subSums[1], acc[1]));
            }
            subBlocks(b, h, [&](int e, int j, const Vec* v) {
                acc[j % 2] = fma(set1(p.scale[j]), intDot(v, x.x + e, 2), acc[j % 2]);
            });
        }
        static void dequant(const Block& b, float* out) {
            const Prep p = P::prepare(b);
            for (int h = 0; h < 2; ++h) {
                subBlocks(b, h, [&](int e, int j, const Vec* v) {
                    storeValues(v, 2, set1(p.scale[j]), offset(p, j), out + e);
                });
            }
        }
        static Vec offset(const Prep& p, int j) {
            if constexpr (kHasOffset) {
                return set1(p.offset[j]);
            } else {
                return zero();
            }
        }
        // Half h as its sub-blocks: f(element offset, sub-block, integers
        // as 2 vectors).
        template <class F>
        static void subBlocks(const Block& b, int h, F&& f) {
            __m256i q[4];
            P::halfBytes(b, h, q);
            for (int g = 0; g < 4; ++g) {
                Vec v[4];
                bytesToF32<true>(q[g], v);
                const int e = 128 * h + 32 * g;
                f(e, e / 16, v);
                f(e + 16, e / 16 + 1, v + 2);
            }
        }
    };
    // The 16 sub-block scales, and offsets where a type has them.
    struct Scales16 {
        alignas(32) float scale[16];
    };
    struct ScalesOffsets16 {
        alignas(32) float scale[16];
        alignas(32) float offset[16];
    };
    // out[j] = sc_j * d for signed bytes sc_j, j < 8 in lo and 8.. in hi.
    static void storeScales16(__m128i lo, __m128i hi, Vec d, float* out) {
        store(out, mul(i8ToF32(lo), d));
        store(out + 8, mul(i8ToF32(hi), d));
    }
    // Q2_K, as KFormat with 16 sub-blocks of 16: scales d * sc_j and
    // offsets -dmin * m_j (exact: 11 x 4 significant bits; the 4-bit sc_j,
    // m_j and integers read the same as signed bytes).
    struct Q2KPieces {
        using Block = BlockQ2_K;
        using Prep = ScalesOffsets16;
        static Prep prepare(const Block& b) {
            const __m128i raw = load16Bytes(b.scales);
            const __m128i low = _mm_set1_epi8(0x0f);
            const __m128i sc = _mm_and_si128(raw, low);
            const __m128i m = _mm_and_si128(_mm_srli_epi16(raw, 4), low);
            Prep p;
            storeScales16(sc, _mm_unpackhi_epi64(sc, sc), scaleOf(b.d), p.scale);
            storeScales16(m, _mm_unpackhi_epi64(m, m), scaleOf(b.dmin ^ 0x8000), p.offset);
            return p;
        }
        static void halfBytes(const Block& b, int h, __m256i* q) { unpackTwoBitHalf(b.qs, h, q); }
    };
    // Q3_K: scales d * (sc_j - 32) (exact: 11 x 6 significant bits),
    // integers q - 4.
    struct Q3KPieces {
        using Block = BlockQ3_K;
        using Prep = Scales16;
        static Prep prepare(const Block& b) {
            const __m128i sc = _mm_sub_epi8(unpackQ3KScales(b.scales), _mm_set1_epi8(32));
            Prep p;
            storeScales16(sc, _mm_unpackhi_epi64(sc, sc), scaleOf(b.d), p.scale);
            return p;
        }
        static void halfBytes(const Block& b, int h, __m256i* q) {
            unpackQ3KHalf(b, h, q);
            for (int g = 0; g < 4; ++g) q[g] = _mm256_sub_epi8(q[g], bytes(4));
        }
    };
    // Q6_K: scales d * scales[j] (exact: 11 x 8 significant bits), integers
    // q - 32.
    struct Q6KPieces {
        using Block = BlockQ6_K;
        using Prep = Scales16;
        static Prep prepare(const Block& b) {
            const auto* scales = reinterpret_cast<const uint8_t*>(b.scales);
            Prep p;
            storeScales16(load8Bytes(scales), load8Bytes(scales + 8), scaleOf(b.d), p.scale);
            return p;
        }
        static void halfBytes(const Block& b, int h, __m256i* q) {
            unpackQ6KHalf(b, h, q);
            for (int g = 0; g < 4; ++g) q[g] = _mm256_sub_epi8(q[g], bytes(32));
        }
    };

    // ---- Block formats ----

    using Q8_0 = Format32<BlockQ8_0>;
    using Q4_0 = Format32<BlockQ4_0>;
    using Q4_1 = Format32<BlockQ4_1>;
    using Q5_0 = Format32<BlockQ5_0>;
    using Q5_1 = Format32<BlockQ5_1>;
    using Q4_K = KFormat<BlockQ4_K>;
    using Q5_K = KFormat<BlockQ5_K>;

    using Q2_K = Format16<Q2KPieces>;
    using Q3_K = Format16<Q3KPieces>;
    using Q6_K = Format16<Q6KPieces>;
};

}  // namespace

void matmulRowsAvx2(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulRowsFor<Avx2>(task, rowBegin, rowEnd);
}

void dequantizeRowAvx2(DType type, const uint8_t* row, int64_t cols, float* out) {
    dequantizeRowFor<Avx2>(type, row, cols, out);
}

}  // namespace pagoda::cpu::detail

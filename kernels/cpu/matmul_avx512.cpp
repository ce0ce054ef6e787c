// The AVX-512 (F, BW, VL, DQ) instantiation of the matmul kernels. Compiled
// with PAGODA_AVX512_FLAGS; entered only when CpuContext::simd says so.

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/matmul_isa_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct Avx512 {
    using Vec = __m512;
    static constexpr int kWidth = 16;
    // Small batch: 3 x 8 accumulators + 3 weight vectors + 1 x vector = 28
    // registers (faster than 2 x 8, 4 x 6, 6 x 4 and 2 x 12).
    static constexpr int kBatchRows = 3;
    static constexpr int kBatchTokens = 8;
    // Prefill: 4 x 6 accumulators + 4 weight vectors + 1 x vector = 29 of 32 registers.
    static constexpr int kTileRows = 4;
    static constexpr int kTileTokens = 6;

    static Vec zero() { return _mm512_setzero_ps(); }
    static Vec load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
    static __mmask16 tailMask(int n) { return __mmask16((1u << n) - 1u); }
    static Vec loadPartial(const float* p, int n) { return _mm512_maskz_loadu_ps(tailMask(n), p); }
    static void storePartial(float* p, Vec v, int n) { _mm512_mask_storeu_ps(p, tailMask(n), v); }
    static Vec set1(float v) { return _mm512_set1_ps(v); }
    static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
    static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
    static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
    static float hsum(Vec v) { return _mm512_reduce_add_ps(v); }

    static __m256i load16x16(const uint16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static __m256i load16x16Partial(const uint16_t* p, int n) { return _mm256_maskz_loadu_epi16(tailMask(n), p); }
    static Vec bf16ToF32(__m256i h) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    static Vec loadF16(const uint16_t* p) { return _mm512_cvtph_ps(load16x16(p)); }
    static Vec loadF16Partial(const uint16_t* p, int n) { return _mm512_cvtph_ps(load16x16Partial(p, n)); }
    static Vec loadBf16(const uint16_t* p) { return bf16ToF32(load16x16(p)); }
    static Vec loadBf16Partial(const uint16_t* p, int n) { return bf16ToF32(load16x16Partial(p, n)); }

    // ---- Helpers of the block formats ----

    // 16 copies of the fp16 scale, converted in one go.
    static Vec scaleOf(uint16_t d) { return _mm512_cvtph_ps(_mm256_set1_epi16(short(d))); }
    static __m128i load16Bytes(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
    static Vec i8ToF32(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
    static Vec iota() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
    // The 16 values scale * q + offset of q = 0..15 (or 16..31 with `upper`),
    // each with one rounding, as a table for vpermps.
    static Vec table(Vec scale, Vec offset, bool upper = false) {
        return fma(upper ? add(iota(), set1(16.0f)) : iota(), scale, offset);
    }

    // A format that produces each weight in a register (exact or correctly
    // rounded) and multiplies it with x, from a decoder D: Block, kElements,
    // kSteps, Prep, prepare(block), and
    //   values(block, prep, step, f): f(element offset, 16 values) over the
    //   step's kElements / kSteps elements.
    template <class D>
    struct ValueFormat : D {
        using typename D::Block;
        using typename D::Prep;
        struct X {
            const float* x;
        };
        static X share(const float* x) { return {x}; }
        static void dot(const Block& b, const Prep& prep, const X& x, int step, Vec* acc) {
            D::values(b, prep, step, [&](int e, Vec w) { acc[e / 16 % 2] = fma(w, load(x.x + e), acc[e / 16 % 2]); });
        }
        static void dequant(const Block& b, float* out) {
            const Prep prep = D::prepare(b);
            for (int step = 0; step < D::kSteps; ++step) {
                D::values(b, prep, step, [&](int e, Vec w) { store(out + e, w); });
            }
        }
    };

    // 4-bit integers through a table: vpermps looks each element up by the
    // low 4 bits of its 32-bit lane, which skips the widen / offset /
    // convert / scale steps. qs: 16 bytes whose low nibbles are elements
    // eLow.. and high nibbles elements eHigh.. .
    template <class F>
    static void nibbleValues(const uint8_t* qs, Vec tLow, Vec tHigh, int eLow, int eHigh, F&& f) {
        const __m512i bytes = _mm512_cvtepu8_epi32(load16Bytes(qs));
        f(eLow, _mm512_permutexvar_ps(bytes, tLow));
        f(eHigh, _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), tHigh));
    }
    // Same for 5-bit integers: bit 4 comes from a mask and picks the table
    // of q = 16..31 (t[1]) over that of q = 0..15 (t[0]).
    template <class F>
    static void fiveBitValues(const uint8_t* qs, const Vec* tLow, const Vec* tHigh, __mmask16 mLow,
                              __mmask16 mHigh, int eLow, int eHigh, F&& f) {
        const __m512i lo = _mm512_cvtepu8_epi32(load16Bytes(qs));
        const __m512i hi = _mm512_srli_epi32(lo, 4);
        f(eLow, _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(lo, tLow[0]), mLow, lo, tLow[1]));
        f(eHigh, _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(hi, tHigh[0]), mHigh, hi, tHigh[1]));
    }

    // ---- Decoders ----

    // The offset of a 32-element block's values d * q + offset.
    static Vec offsetOf(const BlockQ4_0& b) { return mul(scaleOf(b.d), set1(-8.0f)); }
    static Vec offsetOf(const BlockQ4_1& b) { return scaleOf(b.m); }
    static Vec offsetOf(const BlockQ5_0& b) { return mul(scaleOf(b.d), set1(-16.0f)); }
    static Vec offsetOf(const BlockQ5_1& b) { return scaleOf(b.m); }

    // Q4_0 / Q4_1: one table per block.
    template <class B>
    struct Nibbles32 {
        using Block = B;
        static constexpr int kElements = 32;
        static constexpr int kSteps = 1;
        struct Prep {
            Vec t;
        };
        static Prep prepare(const Block& b) { return {table(scaleOf(b.d), offsetOf(b))}; }
        template <class F>
        static void values(const Block& b, const Prep& p, int, F&& f) {
            nibbleValues(b.qs, p.t, p.t, 0, 16, f);
        }
    };

    // Q5_0 / Q5_1: two tables per block; bit 4 of element j is bit j of qh.
    template <class B>
    struct FiveBits32 {
        using Block = B;
        static constexpr int kElements = 32;
        static constexpr int kSteps = 1;
        struct Prep {
            Vec t[2];
        };
        static Prep prepare(const Block& b) {
            const Vec d = scaleOf(b.d);
            return {{table(d, offsetOf(b)), table(d, offsetOf(b), true)}};
        }
        template <class F>
        static void values(const Block& b, const Prep& p, int, F&& f) {
            uint32_t bits;
            std::memcpy(&bits, b.qh, sizeof(bits));
            fiveBitValues(b.qs, p.t, p.t, __mmask16(bits), __mmask16(bits >> 16), 0, 16, f);
        }
    };

    // Q4_K / Q5_K, one 64-element chunk (two sub-blocks) per step. Prep: the
    // sub-block scales d * sc_j at [j] and offsets -dmin * m_j at [8 + j]
    // (exact: 11 x 6 significant bits).
    struct KPrep {
        alignas(64) float s[16];
    };
    static KPrep kPrepare(uint16_t d, uint16_t dmin, const uint8_t* packed) {
        const KScales k = unpackKScales(packed);
        const __m128i sixBits = _mm_set_epi64x(int64_t(k.mins), int64_t(k.scales));
        const __m256i factors = _mm256_set_m128i(_mm_set1_epi16(short(dmin ^ 0x8000)), _mm_set1_epi16(short(d)));
        KPrep p;
        store(p.s, mul(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sixBits)), _mm512_cvtph_ps(factors)));
        return p;
    }
    // Sub-block j's table of q = 0..15 (or 16..31 with `upper`).
    static Vec kTable(const KPrep& p, int j, bool upper = false) {
        return table(set1(p.s[j]), set1(p.s[8 + j]), upper);
    }

    struct Q4KDecoder {
        using Block = BlockQ4_K;
        static constexpr int kElements = kQK_K;
        static constexpr int kSteps = 4;
        using Prep = KPrep;
        static Prep prepare(const Block& b) { return kPrepare(b.d, b.dmin, b.scales); }
        template <class F>
        static void values(const Block& b, const Prep& p, int c, F&& f) {
            const Vec tLow = kTable(p, 2 * c);
            const Vec tHigh = kTable(p, 2 * c + 1);
            for (int h = 0; h < 2; ++h) {
                nibbleValues(b.qs + 32 * c + 16 * h, tLow, tHigh, 64 * c + 16 * h, 64 * c + 32 + 16 * h, f);
            }
        }
    };

    struct Q5KDecoder {
        using Block = BlockQ5_K;
        static constexpr int kElements = kQK_K;
        static constexpr int kSteps = 4;
        using Prep = KPrep;
        static Prep prepare(const Block& b) { return kPrepare(b.d, b.dmin, b.scales); }
        template <class F>
        static void values(const Block& b, const Prep& p, int c, F&& f) {
            const Vec tLow[2] = {kTable(p, 2 * c), kTable(p, 2 * c, true)};
            const Vec tHigh[2] = {kTable(p, 2 * c + 1), kTable(p, 2 * c + 1, true)};
            for (int h = 0; h < 2; ++h) {
                // Bit 4 of elements 64c + 16h + i and 64c + 32 + 16h + i: bits
                // 2c and 2c + 1 of qh[16h + i].
                const __m128i qh = load16Bytes(b.qh + 16 * h);
                const __mmask16 mLow = _mm_test_epi8_mask(qh, _mm_set1_epi8(char(1 << (2 * c))));
                const __mmask16 mHigh = _mm_test_epi8_mask(qh, _mm_set1_epi8(char(2 << (2 * c))));
                fiveBitValues(b.qs + 32 * c + 16 * h, tLow, tHigh, mLow, mHigh, 64 * c + 16 * h,
                              64 * c + 32 + 16 * h, f);
            }
        }
    };

    // Q2_K / Q3_K / Q6_K: 16 sub-blocks of 16, one half (128 elements) per
    // step.
    struct Halves16 {
        static constexpr int kElements = kQK_K;
        static constexpr int kSteps = 2;
    };
    // Q3_K / Q6_K's Prep: the sub-block scales d * sc_j, from the sc_j as
    // signed bytes.
    struct Scales16 {
        alignas(64) float scale[16];
    };
    static Scales16 scales16(uint16_t d, __m128i sc) {
        Scales16 p;
        store(p.scale, mul(i8ToF32(sc), scaleOf(d)));
        return p;
    }

    // Q6_K: the integers as bytes (layout in dtype.h), then each sub-block
    // of 16 widened and scaled (exact: 11 x 8 x 6 significant bits).
    struct Q6KDecoder : Halves16 {
        using Block = BlockQ6_K;
        using Prep = Scales16;
        static Prep prepare(const Block& b) { return scales16(b.d, load16Bytes(b.scales)); }
        template <class F>
        static void values(const Block& b, const Prep& p, int h, F&& f) {
            const __m512i low = _mm512_set1_epi8(0x0f);
            const __m512i top = _mm512_set1_epi8(0x30);
            const __m512i offset = _mm512_set1_epi8(32);
            const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
            // Bytes 0..31: qh, 32..63: qh >> 2, so that bits 0-1 (elements
            // 0..31) / 2-3 (32..63) sit at 0-1 and bits 4-5 / 6-7 (64..127) at 4-5.
            const __m512i qhx = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            const __m512i lowHalf =
                _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_and_si512(_mm512_slli_epi16(qhx, 4), top));
            const __m512i highHalf =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low), _mm512_and_si512(qhx, top));
            sixBitValues(_mm512_sub_epi8(lowHalf, offset), p.scale, 128 * h, f);
            sixBitValues(_mm512_sub_epi8(highHalf, offset), p.scale, 128 * h + 64, f);
        }
        // Elements e0..e0 + 63 from their integers q - 32 as bytes.
        template <class F>
        static void sixBitValues(__m512i q, const float* scale, int e0, F&& f) {
            f(e0, mul(i8ToF32(_mm512_castsi512_si128(q)), set1(scale[e0 / 16])));
            f(e0 + 16, mul(i8ToF32(_mm512_extracti32x4_epi32(q, 1)), set1(scale[e0 / 16 + 1])));
            f(e0 + 32, mul(i8ToF32(_mm512_extracti32x4_epi32(q, 2)), set1(scale[e0 / 16 + 2])));
            f(e0 + 48, mul(i8ToF32(_mm512_extracti32x4_epi32(q, 3)), set1(scale[e0 / 16 + 3])));
        }
    };

    // Q2_K, through a table per sub-block of 16. vpermps indexes with bits
    // 0-3 of a lane, and (byte >> 2k) carries the next integer's bits at
    // 2-3: the table repeats its 4 values 4 times. Prep: the sub-block scales
    // d * sc_j and offsets -dmin * m_j (exact: 11 x 4 significant bits).
    struct Q2KDecoder : Halves16 {
        using Block = BlockQ2_K;
        struct Prep {
            alignas(64) float scale[16];
            alignas(64) float offset[16];
        };
        static Prep prepare(const Block& b) {
            const __m512i raw = _mm512_cvtepu8_epi32(load16Bytes(b.scales));
            Prep p;
            store(p.scale, mul(_mm512_cvtepi32_ps(_mm512_and_si512(raw, _mm512_set1_epi32(0x0f))), scaleOf(b.d)));
            store(p.offset, mul(_mm512_cvtepi32_ps(_mm512_srli_epi32(raw, 4)), scaleOf(b.dmin ^ 0x8000)));
            return p;
        }
        template <class F>
        static void values(const Block& b, const Prep& p, int h, F&& f) {
            const Vec levels = _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
            for (int s = 0; s < 2; ++s) {
                // Elements 128h + 32k + 16s + i from bits 2k, 2k + 1 of qs[32h + 16s + i].
                const __m512i q = _mm512_cvtepu8_epi32(load16Bytes(b.qs + 32 * h + 16 * s));
                for (int k = 0; k < 4; ++k) {
                    const int j = 8 * h + 2 * k + s;
                    const Vec t = fma(levels, set1(p.scale[j]), set1(p.offset[j]));
                    f(16 * j, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 2 * k), t));
                }
            }
        }
    };

    // Q3_K, through a table per sub-block of the 8 values d (sc_j - 32)
    // (q - 4) (exact: 11 x 6 x 3 significant bits), repeated twice like
    // Q2_K's. The 3-bit indices of 32 elements are assembled as bytes in a
    // ymm, then widened 16 at a time. Decode, 4096 x 4096, 1 thread: 728 us,
    // where widening first and merging bit 2 from a mask register took 1155
    // us, and the same byte assembly in xmm halves 882.
    struct Q3KDecoder : Halves16 {
        using Block = BlockQ3_K;
        using Prep = Scales16;
        static Prep prepare(const Block& b) {
            return scales16(b.d, _mm_sub_epi8(unpackQ3KScales(b.scales), _mm_set1_epi8(32)));
        }
        template <class F>
        static void values(const Block& b, const Prep& p, int h, F&& f) {
            const Vec levels = _mm512_setr_ps(-4, -3, -2, -1, 0, 1, 2, 3, -4, -3, -2, -1, 0, 1, 2, 3);
            const __m256i lowBits = _mm256_set1_epi8(3);
            const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
            const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
            for (int k = 0; k < 4; ++k) {
                // Element 128h + 32k + i: bits 0-1 are bits 2k, 2k + 1 of
                // qs[32h + i], bit 2 is bit 4h + k of hmask[i], shifted to bit 2
                // (16-bit shifts by at most 5: bit 2 of a byte still comes from
                // that byte). vpternlogd 0xe4 takes the bits set in lowBits from
                // its first operand, the rest from the second; bits 3-7 are
                // don't-cares (the table repeats; vpermps reads bits 0-3).
                const int bit = 4 * h + k;
                const __m256i high =
                    bit >= 2 ? _mm256_srli_epi16(hmask, bit - 2) : _mm256_slli_epi16(hmask, 2 - bit);
                const __m256i index = _mm256_ternarylogic_epi32(_mm256_srli_epi16(qs, 2 * k), high, lowBits, 0xe4);
                const int j = 8 * h + 2 * k;
                f(16 * j, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(index)),
                                                mul(levels, set1(p.scale[j]))));
                f(16 * j + 16, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(index, 1)),
                                                     mul(levels, set1(p.scale[j + 1]))));
            }
        }
    };

    // ---- Block formats ----

    // Q8_0 keeps the scale out of the loop: one multiply per block.
    struct Q8_0 {
        using Block = BlockQ8_0;
        static constexpr int kElements = kQK8_0;
        static constexpr int kSteps = 1;
        struct X {
            Vec v[2];
        };
        static X share(const float* x) { return {{load(x), load(x + 16)}}; }
        struct Prep {
            Vec d;
        };
        static Prep prepare(const Block& b) { return {scaleOf(b.d)}; }
        static void ints(const Block& b, Vec* q) {
            q[0] = i8ToF32(load16Bytes(b.qs));
            q[1] = i8ToF32(load16Bytes(b.qs + 16));
        }
        static void dot(const Block& b, const Prep& p, const X& x, int, Vec* acc) {
            Vec q[2];
            ints(b, q);
            acc[0] = fma(p.d, fma(q[1], x.v[1], mul(q[0], x.v[0])), acc[0]);
        }
        static void dequant(const Block& b, float* out) {
            Vec q[2];
            ints(b, q);
            const Vec d = scaleOf(b.d);
            store(out, mul(q[0], d));
            store(out + 16, mul(q[1], d));
        }
    };
    using Q4_0 = ValueFormat<Nibbles32<BlockQ4_0>>;
    using Q4_1 = ValueFormat<Nibbles32<BlockQ4_1>>;
    using Q5_0 = ValueFormat<FiveBits32<BlockQ5_0>>;
    using Q5_1 = ValueFormat<FiveBits32<BlockQ5_1>>;
    using Q2_K = ValueFormat<Q2KDecoder>;
    using Q3_K = ValueFormat<Q3KDecoder>;
    using Q4_K = ValueFormat<Q4KDecoder>;
    using Q5_K = ValueFormat<Q5KDecoder>;
    using Q6_K = ValueFormat<Q6KDecoder>;
};

}  // namespace

void matmulRowsAvx512(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulRowsFor<Avx512>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

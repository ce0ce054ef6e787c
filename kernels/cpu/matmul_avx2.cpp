// The baseline (x86-64-v3) instantiation of the matmul kernels.

#include "kernels/cpu/matmul_isa_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct Avx2 {
    using Vec = __m256;
    static constexpr int kWidth = 8;
    // 3 x 4 accumulators + 3 weight vectors + 1 x vector = all 16 registers.
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

    static Vec scaleOf(uint16_t d) { return _mm256_cvtph_ps(_mm_set1_epi16(short(d))); }
    // Low 8 signed bytes of v as floats.
    static Vec i8ToF32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
    // A block's integer values (Q4_0 already offset by -8) as 4 vectors.
    static void q8Ints(const BlockQ8_0& b, Vec* q) {
        for (int i = 0; i < 4; ++i) q[i] = i8ToF32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * i)));
    }
    static void q4Ints(const BlockQ4_0& b, Vec* q) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
        const __m128i nibble = _mm_set1_epi8(0x0f);
        const __m128i offset = _mm_set1_epi8(8);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, nibble), offset);                      // elements 0..15
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), nibble), offset);  // 16..31
        q[0] = i8ToF32(lo);
        q[1] = i8ToF32(_mm_unpackhi_epi64(lo, lo));
        q[2] = i8ToF32(hi);
        q[3] = i8ToF32(_mm_unpackhi_epi64(hi, hi));
    }
    // The integer dot product first, then the scale: one multiply per block.
    static void scaledDot(const Vec* q, Vec d, const Vec* x, Vec* acc) {
        Vec sum = mul(q[0], x[0]);
        for (int i = 1; i < 4; ++i) sum = fma(q[i], x[i], sum);
        acc[0] = fma(d, sum, acc[0]);
    }
    static void scaledStore(const Vec* q, Vec d, float* out) {
        for (int i = 0; i < 4; ++i) store(out + 8 * i, mul(q[i], d));
    }
    static void q8Dot(const BlockQ8_0& b, const Vec* x, Vec* acc) {
        Vec q[4];
        q8Ints(b, q);
        scaledDot(q, scaleOf(b.d), x, acc);
    }
    static void q8Dequant(const BlockQ8_0& b, float* out) {
        Vec q[4];
        q8Ints(b, q);
        scaledStore(q, scaleOf(b.d), out);
    }
    static void q4Dot(const BlockQ4_0& b, const Vec* x, Vec* acc) {
        Vec q[4];
        q4Ints(b, q);
        scaledDot(q, scaleOf(b.d), x, acc);
    }
    static void q4Dequant(const BlockQ4_0& b, float* out) {
        Vec q[4];
        q4Ints(b, q);
        scaledStore(q, scaleOf(b.d), out);
    }
};

}  // namespace

void matmulRowsAvx2(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulRowsFor<Avx2>(task, rowBegin, rowEnd);
}

void dequantizeRowAvx2(DType type, const uint8_t* row, int64_t cols, float* out) {
    dequantizeRowFor<Avx2>(type, row, cols, out);
}

}  // namespace pagoda::cpu::detail

// The AVX-512 (F, BW, VL, DQ) instantiation of the matmul kernels. Compiled
// with PAGODA_AVX512_FLAGS; entered only when CpuContext::simd says so.

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which
// -Wuninitialized reports at every inlined use (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/cpu/matmul_isa_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct Avx512 {
    using Vec = __m512;
    static constexpr int kWidth = 16;
    // 4 x 6 accumulators + 4 weight vectors + 1 x vector = 29 of 32 registers.
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

    // 16 copies of the fp16 scale, converted in one go.
    static Vec scaleOf(uint16_t d) { return _mm512_cvtph_ps(_mm256_set1_epi16(short(d))); }

    static Vec i8ToF32(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
    static void q8Ints(const BlockQ8_0& b, Vec* q) {
        q[0] = i8ToF32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)));
        q[1] = i8ToF32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 16)));
    }
    static void q8Dot(const BlockQ8_0& b, const Vec* x, Vec* acc) {
        Vec q[2];
        q8Ints(b, q);
        acc[0] = fma(scaleOf(b.d), fma(q[1], x[1], mul(q[0], x[0])), acc[0]);
    }
    static void q8Dequant(const BlockQ8_0& b, float* out) {
        Vec q[2];
        q8Ints(b, q);
        const Vec d = scaleOf(b.d);
        store(out, mul(q[0], d));
        store(out + 16, mul(q[1], d));
    }

    // Q4_0 through a table: the 16 possible values d * (q - 8) fill one
    // register (exactly: 11 x 4 significant bits), and vpermps looks each
    // element up by the low 4 bits of its 32-bit lane, which skips the
    // widen / offset / convert / scale steps.
    struct Q4Lookup {
        Vec table;
        __m512i lo;  // elements 0..15: byte j in lane j (vpermps ignores the high nibble)
        __m512i hi;  // elements 16..31
    };
    static Q4Lookup q4Lookup(const BlockQ4_0& b) {
        const Vec values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
        const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)));
        return {mul(scaleOf(b.d), values), bytes, _mm512_srli_epi32(bytes, 4)};
    }
    static void q4Dot(const BlockQ4_0& b, const Vec* x, Vec* acc) {
        const Q4Lookup l = q4Lookup(b);
        acc[0] = fma(_mm512_permutexvar_ps(l.lo, l.table), x[0], acc[0]);
        acc[1] = fma(_mm512_permutexvar_ps(l.hi, l.table), x[1], acc[1]);
    }
    static void q4Dequant(const BlockQ4_0& b, float* out) {
        const Q4Lookup l = q4Lookup(b);
        store(out, _mm512_permutexvar_ps(l.lo, l.table));
        store(out + 16, _mm512_permutexvar_ps(l.hi, l.table));
    }
};

}  // namespace

void matmulRowsAvx512(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulRowsFor<Avx512>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

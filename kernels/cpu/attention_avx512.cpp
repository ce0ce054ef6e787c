// The AVX-512 (F, BW, VL, DQ) instantiation of the attention inner loops.
// Compiled with PAGODA_AVX512_FLAGS; entered only when CpuContext::simd says so.

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/attention_kernels_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct Avx512 {
    using Vec = __m512;
    static constexpr int kWidth = 16;
    // Scores: 4 x 4 accumulators + 4 key vectors + 1 query vector = 21 of 32 registers.
    static constexpr int kScoreRows = 4;
    // P·V: 4 x 4 accumulators + 4 value vectors + 1 weight = 21 of 32 registers.
    static constexpr int kPvRows = 4;
    static constexpr int kPvVecs = 4;

    static __mmask16 tailMask(int n) { return __mmask16((1u << n) - 1u); }
    static Vec zero() { return _mm512_setzero_ps(); }
    static Vec load(const float* p) { return _mm512_loadu_ps(p); }
    static Vec loadPartial(const float* p, int n) { return _mm512_maskz_loadu_ps(tailMask(n), p); }
    static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
    static void storePartial(float* p, Vec v, int n) { _mm512_mask_storeu_ps(p, tailMask(n), v); }
    static Vec keepFirst(Vec v, int n) { return _mm512_maskz_mov_ps(tailMask(n), v); }
    static Vec set1(float x) { return _mm512_set1_ps(x); }
    static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
    static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
    static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
    static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
    static Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
    static Vec roundNearest(Vec x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static Vec pow2i(Vec n) {
        const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
        return _mm512_castsi512_ps(bits);
    }
    static float hsum(Vec v) { return _mm512_reduce_add_ps(v); }
    static float hmax(Vec v) { return _mm512_reduce_max_ps(v); }
    static __m256 half(Vec v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }
    // Fold each vector to 8 lanes, then as on AVX2: hadd twice leaves the
    // sums of lanes 0-3 in the low half and of lanes 4-7 in the high half.
    static __m128 reduce4(Vec a, Vec b, Vec c, Vec d) {
        const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(half(a), half(b)), _mm256_hadd_ps(half(c), half(d)));
        return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    }
    static Vec loadHalf(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static Vec loadHalfPartial(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tailMask(n), p)); }
    static Vec loadInt8(const int8_t* p) {
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    }
};

}  // namespace

const AttentionKernels& attentionKernelsAvx512() { return AttentionImpl<Avx512>::kTable; }

}  // namespace pagoda::cpu::detail

// The baseline (x86-64-v3) instantiation of the attention inner loops.

#include "kernels/cpu/attention_kernels_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct Avx2 {
    using Vec = __m256;
    static constexpr int kWidth = 8;
    // Scores: 2 x 4 accumulators + 4 key vectors + 1 query vector = 13 of 16 registers.
    static constexpr int kScoreRows = 2;
    // P·V: 4 x 2 accumulators + 2 value vectors + 1 weight = 11 of 16 registers.
    static constexpr int kPvRows = 4;
    static constexpr int kPvVecs = 2;

    static __m256i tailMask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static Vec zero() { return _mm256_setzero_ps(); }
    static Vec load(const float* p) { return _mm256_loadu_ps(p); }
    static Vec loadPartial(const float* p, int n) { return _mm256_maskload_ps(p, tailMask(n)); }
    static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
    static void storePartial(float* p, Vec v, int n) { _mm256_maskstore_ps(p, tailMask(n), v); }
    static Vec keepFirst(Vec v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(tailMask(n))); }
    static Vec set1(float x) { return _mm256_set1_ps(x); }
    static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
    static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
    static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
    static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
    static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
    static Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
    static Vec roundNearest(Vec x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static Vec pow2i(Vec n) {
        const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_castsi256_ps(bits);
    }
    static __m128 sum4(__m256 v) { return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); }
    static float hsum(Vec v) {
        __m128 s = sum4(v);
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
    static float hmax(Vec v) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        return _mm_cvtss_f32(m);
    }
    // hadd twice leaves [a b c d] sums of lanes 0-3 in the low half and of
    // lanes 4-7 in the high half.
    static __m128 reduce4(Vec a, Vec b, Vec c, Vec d) {
        return sum4(_mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d)));
    }
    static Vec loadHalf(const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static Vec loadHalfPartial(const uint16_t* p, int n) {
        alignas(16) uint16_t lanes[8] = {};
        for (int i = 0; i < n; ++i) lanes[i] = p[i];
        return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(lanes)));
    }
    static Vec loadInt8(const int8_t* p) {
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    }
};

}  // namespace

const AttentionKernels& attentionKernelsAvx2() { return AttentionImpl<Avx2>::kTable; }

}  // namespace pagoda::cpu::detail

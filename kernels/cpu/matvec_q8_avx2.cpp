// The baseline (x86-64-v3) integer kernels, and the quantization of
// x they and the AVX-512 VNNI kernels read.

#include "kernels/cpu/matvec_q8_impl.h"

namespace pagoda::cpu::detail {
namespace {

// vpmaddubsw (u8 * s8, pairs to int16), then vpmaddwd: with ones to sum
// pairs, or with the scales.
struct Avx2Q8 {
    static __m256i dotU8S8(__m256i acc, __m256i u, __m256i s) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
    }
    static __m256i dotScaled(__m256i acc, __m256i u, __m256i s, __m256i scale) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale));
    }
    // The shared formats, all of them.
    template <class Fs>
    using Own = Fs;
};

// max |x| over n (a multiple of 8) elements, taken on the bits of |x|: as
// integers NaN > inf > every finite value, so a NaN or inf gives a
// non-finite maximum (vmaxps would drop a NaN).
float absMax(const float* x, int n) {
    const __m256i absMask = _mm256_set1_epi32(0x7fffffff);
    __m256i maxBits = _mm256_setzero_si256();
    for (int i = 0; i < n; i += 8) {
        maxBits = _mm256_max_epi32(maxBits, _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(x + i)), absMask));
    }
    __m128i m = _mm_max_epi32(_mm256_castsi256_si128(maxBits), _mm256_extracti128_si256(maxBits, 1));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
    return _mm_cvtss_f32(_mm_castsi128_ps(m));
}

// qs[i] = x[i] * s rounded to nearest even (saturated to int8) for n (a
// multiple of 32) elements.
void roundBlock(const float* x, int n, float s, int8_t* qs) {
    const __m256 scale = _mm256_set1_ps(s);
    // vpackssdw / vpacksswb interleave the 128-bit halves: the final
    // permutation restores element order.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < n; i += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), scale));
        const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + i), _mm256_permutevar8x32_epi32(packed, order));
    }
}

// The sums of bytes 8k .. 8k + 7 of the 32 int8 at qs, k = 0..3, each plus
// 8 * 128: vpsadbw of q + 128 (q xor 0x80) against zero.
__m256i byteSums8(const int8_t* qs) {
    return _mm256_sad_epu8(_mm256_xor_si256(load32(qs), bytes(0x80)), _mm256_setzero_si256());
}
constexpr int kBias8 = 8 * 128;

bool isKQuant(DType type) {
    return type == DType::Q2_K || type == DType::Q3_K || type == DType::Q4_K || type == DType::Q5_K ||
           type == DType::Q6_K;
}

}  // namespace

bool hasInt8Kernel(DType type) {
    return type == DType::Q8_0 || type == DType::Q4_0 || type == DType::Q4_1 || type == DType::Q5_0 ||
           type == DType::Q5_1 || isKQuant(type);
}

size_t q8ActivationBytes(DType type, int64_t cols) {
    return isKQuant(type) ? size_t(cols / kQK_K) * sizeof(XBlockQ8_256) : size_t(cols / kQK8_0) * sizeof(XBlockQ8_32);
}

void quantizeActivations(DType type, const float* x, int64_t cols, uint8_t* out) {
    if (isKQuant(type)) {
        auto* blocks = reinterpret_cast<XBlockQ8_256*>(out);
        for (int64_t b = 0; b < cols / kQK_K; ++b) {
            XBlockQ8_256& block = blocks[b];
            // As llama.cpp's Q8_K: s = 127 / max |x|, d = 1 / s (its s has
            // the sign opposite to the element of largest |x|, which negates
            // q and d alike: the same products). An inf gives s = 0 and
            // d = inf.
            const float amax = absMax(x + b * kQK_K, kQK_K);
            const float s = amax != 0.0f ? 127.0f / amax : 0.0f;
            block.d = amax != 0.0f ? 1.0f / s : 0.0f;
            roundBlock(x + b * kQK_K, kQK_K, s, block.qs);
            for (int c = 0; c < kQK_K / 32; ++c) {
                alignas(32) int64_t eights[4];
                _mm256_store_si256(reinterpret_cast<__m256i*>(eights), byteSums8(block.qs + 32 * c));
                block.sums[2 * c] = int16_t(eights[0] + eights[1] - 2 * kBias8);
                block.sums[2 * c + 1] = int16_t(eights[2] + eights[3] - 2 * kBias8);
            }
        }
        return;
    }
    auto* blocks = reinterpret_cast<XBlockQ8_32*>(out);
    for (int64_t b = 0; b < cols / kQK8_0; ++b) {
        XBlockQ8_32& block = blocks[b];
        // As llama.cpp's Q8_0: d = max |x| / 127, rounded to f16 after x.
        const float d = absMax(x + b * kQK8_0, kQK8_0) / 127.0f;
        roundBlock(x + b * kQK8_0, kQK8_0, d != 0.0f ? 1.0f / d : 0.0f, block.qs);
        block.d = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
        const __m256i eights = byteSums8(block.qs);
        const __m128i pairs = _mm_add_epi64(_mm256_castsi256_si128(eights), _mm256_extracti128_si256(eights, 1));
        block.sum = int32_t(_mm_cvtsi128_si64(_mm_add_epi64(pairs, _mm_unpackhi_epi64(pairs, pairs)))) - 4 * kBias8;
    }
}

void matmulQ8RowsAvx2(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulQ8RowsFor<Avx2Q8>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

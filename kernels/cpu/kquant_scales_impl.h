#pragma once
// Unpacking of K-quant blocks shared by the float (matmul_isa_impl.h,
// matmul_avx2.cpp) and integer (matvec_q8_impl.h) kernels: the Q4_K / Q5_K
// and Q3_K sub-block scales, and the Q2_K, Q3_K and Q6_K integers of a block
// half as bytes. Internal linkage, like
// everything included by the per-instruction-set files.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/dtype.h"

namespace pagoda::cpu::detail {
namespace {

// The 6-bit scales and mins of a Q4_K / Q5_K block (layout in dtype.h),
// byte j of each word for sub-block j.
struct KScales {
    uint64_t scales;
    uint64_t mins;
};

KScales unpackKScales(const uint8_t* packed) {
    uint32_t w[3];
    std::memcpy(w, packed, sizeof(w));
    constexpr uint32_t kLow6 = 0x3f3f3f3f;
    constexpr uint32_t kLow4 = 0x0f0f0f0f;
    constexpr uint32_t kLow2 = 0x03030303;
    const uint32_t scalesHigh = (w[2] & kLow4) | ((w[0] >> 6) & kLow2) << 4;
    const uint32_t minsHigh = ((w[2] >> 4) & kLow4) | ((w[1] >> 6) & kLow2) << 4;
    return {(w[0] & kLow6) | uint64_t(scalesHigh) << 32, (w[1] & kLow6) | uint64_t(minsHigh) << 32};
}

// The 16 6-bit sub-block scales (0..63, before the -32 offset) of a Q3_K
// block (layout in dtype.h) as bytes, byte j for sub-block j. Built from
// general-purpose registers: a 16-byte load of 4-byte stores just made
// can't be forwarded, and that stall made Q3_K decode 2x slower. Inline:
// the integer kernels include it without using it.
inline __m128i unpackQ3KScales(const uint8_t* packed) {
    uint32_t w[3];
    std::memcpy(w, packed, sizeof(w));
    constexpr uint32_t kLow4 = 0x0f0f0f0f;
    constexpr uint32_t kLow2 = 0x03030303;
    return _mm_setr_epi32(int((w[0] & kLow4) | (w[2] & kLow2) << 4), int((w[1] & kLow4) | (w[2] >> 2 & kLow2) << 4),
                          int((w[0] >> 4 & kLow4) | (w[2] >> 4 & kLow2) << 4),
                          int((w[1] >> 4 & kLow4) | (w[2] >> 6 & kLow2) << 4));
}

// The 2-bit integers (0..3) of Q2_K / Q3_K block half h (128 elements,
// layout at BlockQ2_K): q[g] holds elements 128h + 32g .. + 31. Inline: the
// AVX-512 file includes it without using it.
inline void unpackTwoBitHalf(const uint8_t* qs, int h, __m256i q[4]) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
    // 16-bit shifts: the bits crossing from the next byte are masked off.
    for (int g = 0; g < 4; ++g) q[g] = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * g), _mm256_set1_epi8(3));
}

// The integers (0..7, before the -4 offset) of Q3_K block half h, laid out
// as unpackTwoBitHalf's: bit 2 of element 128h + 32g + i is bit 4h + g of
// hmask[i]. Inline, as above.
inline void unpackQ3KHalf(const BlockQ3_K& b, int h, __m256i q[4]) {
    unpackTwoBitHalf(b.qs, h, q);
    const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
    for (int g = 0; g < 4; ++g) {
        const __m256i bit = _mm256_set1_epi8(char(1 << (4 * h + g)));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hmask, bit), bit);
        q[g] = _mm256_or_si256(q[g], _mm256_and_si256(set, _mm256_set1_epi8(4)));
    }
}

// The integers (0..63, before the -32 offset) of Q6_K block half h (128
// elements, layout in dtype.h): q[g] holds elements 128h + 32g .. + 31,
// their bits 4-5 from qh bits 2g, 2g+1. Inline: the AVX-512 file includes
// it without using it.
inline void unpackQ6KHalf(const BlockQ6_K& b, int h, __m256i q[4]) {
    const auto load = [](const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
    const __m256i ql0 = load(b.ql + 64 * h);
    const __m256i ql1 = load(b.ql + 64 * h + 32);
    const __m256i qh = load(b.qh + 32 * h);
    const __m256i low = _mm256_set1_epi8(0x0f);
    const __m256i top = _mm256_set1_epi8(0x30);
    q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top));
    q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), _mm256_and_si256(qh, top));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), top));
}

}  // namespace
}  // namespace pagoda::cpu::detail

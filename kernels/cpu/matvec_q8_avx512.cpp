// The AVX-512 VNNI integer kernels. Compiled with PAGODA_AVX512_FLAGS
// plus VNNI; entered only when CpuContext::simd is Avx512 and
// detectAvx512Vnni() holds. The 256-bit (VL) forms suffice: decode is
// bound by memory, and VNNI's gain is one instruction less per 32 bytes.

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

// Q4_K on 512-bit vectors: its integer loop is bound by instructions, not
// by memory (4096 x 4096 at 2 threads: 29 GB/s where Q8_0 reads 41), and a
// 64-byte load of qs is two chunks of 64 elements. Its low nibbles are
// sub-blocks 4p and 4p + 2, its high ones 4p + 1 and 4p + 3, so x is
// shared (once for the row group) in that order.
struct Q4K512 {
    using Block = BlockQ4_K;
    using XBlock = XBlockQ8_256;
    struct X {
        const XBlock* x;
        __m128i sums32;           // 8 int16: the sums of x over each sub-block of 32
        __m512i low[2], high[2];  // [p]: x of sub-blocks 4p, 4p + 2; 4p + 1, 4p + 3
    };
    static X share(const XBlock& x) {
        X s{&x, _mm_hadd_epi16(load16(x.sums), load16(x.sums + 8)), {}, {}};
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
        float d, dmin;
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
        w.d = halfToFloat(b.d);
        w.dmin = halfToFloat(b.dmin);
        return w;
    }
    // d * sum_j sc_j (q . x)_j - dmin * sum_j m_j (sum of x)_j, as dotK's.
    static void dot(const W& w, const X& x, __m256* acc) {
        const __m128i minSums = _mm_madd_epi16(w.mins, x.sums32);
        __m512i isum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int p = 0; p < 2; ++p) {
            isum[0] = _mm512_dpwssd_epi32(isum[0], _mm512_maddubs_epi16(w.low[p], x.low[p]), w.lowScales[p]);
            isum[1] = _mm512_dpwssd_epi32(isum[1], _mm512_maddubs_epi16(w.high[p], x.high[p]), w.highScales[p]);
        }
        const __m512i total = _mm512_add_epi32(isum[0], isum[1]);
        const __m256i sum = _mm256_add_epi32(_mm512_castsi512_si256(total), _mm512_extracti64x4_epi64(total, 1));
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(w.d * x.x->d), _mm256_cvtepi32_ps(sum), acc[0]);
        acc[1] = _mm256_fmadd_ps(_mm256_set1_ps(-w.dmin * x.x->d), _mm256_zextps128_ps256(_mm_cvtepi32_ps(minSums)),
                                 acc[1]);
    }
};

// vpdpbusd sums four u8 * s8 products into each int32 lane; vpdpwssd
// multiplies vpmaddubsw's int16 pair sums by the scales and accumulates.
struct Avx512VnniQ8 {
    static __m256i dotU8S8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
    static __m256i dotScaled(__m256i acc, __m256i u, __m256i s, __m256i scale) {
        return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale);
    }
    using Q4_K = Q4K512;
};

}  // namespace

void matmulQ8RowsAvx512Vnni(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulQ8RowsFor<Avx512VnniQ8>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

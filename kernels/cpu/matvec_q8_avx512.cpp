// The AVX-512 VNNI integer decode kernels. Compiled with PAGODA_AVX512_FLAGS
// plus VNNI; entered only when CpuContext::simd is Avx512 and
// detectAvx512Vnni() holds. The 256-bit (VL) forms suffice: decode is
// bound by memory, and VNNI's gain is one instruction less per 32 bytes.

#include "kernels/cpu/avx512_intrinsics.h"

#include "kernels/cpu/matvec_q8_impl.h"

namespace pagoda::cpu::detail {
namespace {

// vpdpbusd sums four u8 * s8 products into each int32 lane; vpdpwssd
// multiplies vpmaddubsw's int16 pair sums by the scales and accumulates.
struct Avx512VnniQ8 {
    static __m256i dotU8S8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
    static __m256i dotScaled(__m256i acc, __m256i u, __m256i s, __m256i scale) {
        return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale);
    }
};

}  // namespace

void matvecQ8RowsAvx512Vnni(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matvecQ8RowsFor<Avx512VnniQ8>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

// The integer kernels with AVX-VNNI: the baseline's formats on 256-bit
// vectors, each multiply-add one VEX-encoded vpdpbusd / vpdpwssd where
// AVX2 takes vpmaddubsw and vpmaddwd. Compiled with -mavxvnni; entered only
// when detectAvxVnni() holds. The integer sums are exact either way (no
// pair sum saturates, matvec_q8_impl.h), so the results are AVX2's bits.

#include "kernels/cpu/matvec_q8_impl.h"

namespace pagoda::cpu::detail {
namespace {

struct AvxVnniQ8 {
    static __m256i dotU8S8(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
    static __m256i dotScaled(__m256i acc, __m256i u, __m256i s, __m256i scale) {
        return _mm256_dpwssd_avx_epi32(acc, _mm256_maddubs_epi16(u, s), scale);
    }
    // The shared formats, all of them.
    template <class Fs>
    using Own = Fs;
};

}  // namespace

void matmulQ8RowsAvxVnni(const MatmulTask& task, int64_t rowBegin, int64_t rowEnd) {
    matmulQ8RowsFor<AvxVnniQ8>(task, rowBegin, rowEnd);
}

}  // namespace pagoda::cpu::detail

#include "kernels/cpu/simd.h"

#include <cpuid.h>

#include <cstdlib>

namespace pagoda::cpu {

SimdLevel detectSimdLevel() {
    __builtin_cpu_init();
    // libgcc only reports AVX-512 features when the OS saves the ZMM state.
    const bool hasAvx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (!hasAvx512) return SimdLevel::Avx2;
    // PAGODA_SIMD can only lower the level: asking for more than the CPU has is ignored.
    if (const char* forced = std::getenv("PAGODA_SIMD")) {
        if (simdLevelFromName(forced) == SimdLevel::Avx2) return SimdLevel::Avx2;
    }
    return SimdLevel::Avx512;
}

bool detectAvx512Vnni() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
}

bool detectAvxVnni() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 && (eax >> 4 & 1) != 0;
}

std::string_view simdLevelName(SimdLevel level) {
    switch (level) {
    case SimdLevel::Avx2:
        return "avx2";
    case SimdLevel::Avx512:
        return "avx512";
    }
    return "unknown";
}

std::optional<SimdLevel> simdLevelFromName(std::string_view name) {
    if (name == "avx2") return SimdLevel::Avx2;
    if (name == "avx512") return SimdLevel::Avx512;
    return std::nullopt;
}

}  // namespace pagoda::cpu

#pragma once
// Run-time SIMD selection. The build's baseline is AVX2+FMA+F16C
// (x86-64-v3); AVX-512 kernels are compiled separately and used only when
// the CPU reports AVX-512F/BW/VL/DQ.

#include <optional>
#include <string_view>

namespace pagoda::cpu {

enum class SimdLevel { Avx2, Avx512 };

// The widest level this CPU supports.
SimdLevel detectSimdLevel();
// Whether the CPU also has AVX-512 VNNI (vpdpbusd, vpdpwssd). Kernels
// entered at SimdLevel::Avx512 use it where present; it is no level of its
// own, since only the integer kernels gain from it.
bool detectAvx512Vnni();
// Whether the CPU has AVX-VNNI (the same two multiply-adds on 256-bit
// vectors, VEX-encoded: Intel's CPUs since Alder Lake, without AVX-512).
// Read from CPUID (leaf 7, sub-leaf 1, EAX bit 4): GCC 12's
// __builtin_cpu_supports("avxvnni") says no on CPUs that have it.
bool detectAvxVnni();
std::string_view simdLevelName(SimdLevel level);
// "avx2" | "avx512"; nullopt otherwise.
std::optional<SimdLevel> simdLevelFromName(std::string_view name);

}  // namespace pagoda::cpu

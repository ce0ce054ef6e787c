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
std::string_view simdLevelName(SimdLevel level);
// "avx2" | "avx512"; nullopt otherwise.
std::optional<SimdLevel> simdLevelFromName(std::string_view name);

}  // namespace pagoda::cpu

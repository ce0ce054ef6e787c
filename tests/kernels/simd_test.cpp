#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "kernels/cpu/simd.h"

namespace pagoda::cpu {
namespace {

TEST(Simd, NamesRoundTrip) {
    for (const SimdLevel level : {SimdLevel::Avx2, SimdLevel::Avx512}) {
        EXPECT_EQ(simdLevelFromName(simdLevelName(level)), level);
    }
    EXPECT_EQ(simdLevelFromName("sse2"), std::nullopt);
}

TEST(Simd, EnvironmentForcesTheBaseline) {
    const char* previous = std::getenv("PAGODA_SIMD");
    const std::optional<std::string> saved = previous ? std::optional<std::string>(previous) : std::nullopt;
    setenv("PAGODA_SIMD", "avx2", 1);
    EXPECT_EQ(detectSimdLevel(), SimdLevel::Avx2);
    unsetenv("PAGODA_SIMD");
    const bool cpuHasAvx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    EXPECT_EQ(detectSimdLevel(), cpuHasAvx512 ? SimdLevel::Avx512 : SimdLevel::Avx2);
    if (saved) setenv("PAGODA_SIMD", saved->c_str(), 1);
}

}  // namespace
}  // namespace pagoda::cpu

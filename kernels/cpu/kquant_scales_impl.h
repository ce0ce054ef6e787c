#pragma once
// Unpacking of the Q4_K / Q5_K sub-block scales, shared by the float
// (matmul_isa_impl.h) and integer (matvec_q8_impl.h) kernels. Internal
// linkage, like everything included by the per-instruction-set files.

#include <cstdint>
#include <cstring>

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

}  // namespace
}  // namespace pagoda::cpu::detail

#pragma once
// Shared by the kernel tests: fresh seeds and reference decoders written
// from the format definitions (independent of kernels/half.h).

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace pagoda::test {

// A new seed for every run; tests put it in a SCOPED_TRACE so that a failure
// can be replayed.
inline uint64_t freshSeed() {
    std::random_device device;
    return uint64_t(device()) << 32 | device();
}

inline std::string seedTrace(uint64_t seed) { return "seed " + std::to_string(seed); }

// IEEE binary16: (-1)^s * 2^(e-15) * 1.m, subnormal 2^-14 * 0.m.
inline double refHalfToDouble(uint16_t h) {
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    double value;
    if (exponent == 0) {
        value = std::ldexp(double(mantissa), -24);
    } else if (exponent == 0x1f) {
        value = mantissa != 0 ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    } else {
        value = std::ldexp(double(1024 + mantissa), exponent - 25);
    }
    return (h & 0x8000) != 0 ? -value : value;
}

// bfloat16: the top 16 bits of an IEEE binary32.
inline double refBf16ToDouble(uint16_t b) {
    const int exponent = (b >> 7) & 0xff;
    const int mantissa = b & 0x7f;
    double value;
    if (exponent == 0) {
        value = std::ldexp(double(mantissa), -133);
    } else if (exponent == 0xff) {
        value = mantissa != 0 ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    } else {
        value = std::ldexp(double(128 + mantissa), exponent - 134);
    }
    return (b & 0x8000) != 0 ? -value : value;
}

}  // namespace pagoda::test

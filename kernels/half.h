#pragma once
// IEEE fp16 and bfloat16 <-> float, scalar and exact (round to nearest even).

#include <bit>
#include <cstdint>
#include <cstring>

namespace pagoda {

inline float halfToFloat(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            int shift = 0;
            while ((mantissa & 0x400) == 0) {
                mantissa <<= 1;
                ++shift;
            }
            mantissa &= 0x3ff;
            bits = sign | uint32_t(127 - 15 - shift + 1) << 23 | mantissa << 13;
        }
    } else if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | mantissa << 13;
    } else {
        bits = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
    }
    return std::bit_cast<float>(bits);
}

inline uint16_t floatToHalf(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) {  // inf or nan
        return uint16_t(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    }
    if (absx >= 0x477ff000u) {  // rounds to >= 65520: overflow to inf
        return uint16_t(sign | 0x7c00);
    }
    if (absx < 0x38800000u) {  // below the smallest normal half: subnormal or zero
        const float magnitude = std::bit_cast<float>(absx);
        // Scale so that one half-subnormal ulp (2^-24) becomes 1.0; nearbyint rounds to even.
        const float scaled = magnitude * 16777216.0f;
        uint32_t m = uint32_t(scaled);
        const float rest = scaled - float(m);
        if (rest > 0.5f || (rest == 0.5f && (m & 1))) ++m;
        return uint16_t(sign | m);
    }
    uint32_t exponent = ((absx >> 23) - 127 + 15);
    uint32_t mantissa = absx & 0x7fffff;
    uint32_t h = exponent << 10 | mantissa >> 13;
    const uint32_t rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: correct
    return uint16_t(sign | h);
}

inline float bf16ToFloat(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

inline uint16_t floatToBf16(float f) {
    uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffff) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet nan
    x += 0x7fff + ((x >> 16) & 1);
    return uint16_t(x >> 16);
}

}  // namespace pagoda

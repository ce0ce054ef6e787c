// kernels/half.h against references built from the format definitions:
// exhaustive for the 65536 16-bit patterns, random (with exact ties,
// subnormals, inf and nan) for float -> 16 bits.

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernel_test_util.h"
#include "kernels/half.h"

namespace pagoda {
namespace {

using test::refBf16ToDouble;
using test::refHalfToDouble;

bool isHalfNan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool isBf16Nan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

// Nearest of two neighbouring encodings, ties to the even one (even last bit
// = even significand). lowValue <= |f| <= highValue.
uint16_t nearestEven(double a, uint16_t low, double lowValue, double highValue) {
    const double below = a - lowValue;
    const double above = highValue - a;
    if (below < above || (below == above && (low & 1) == 0)) return low;
    return uint16_t(low + 1);
}

// Round to nearest even into fp16 by searching the ordered positive encodings.
uint16_t refFloatToHalf(float f) {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(double(f));
    if (a >= 65520.0) return sign | 0x7c00;  // halfway from 65504 to 2^16 and above round to inf
    uint16_t lo = 0;                         // largest encoding with value <= a
    uint16_t hi = 0x7c00;
    while (hi - lo > 1) {
        const auto mid = uint16_t((lo + hi) / 2);
        (refHalfToDouble(mid) <= a ? lo : hi) = mid;
    }
    const double next = lo == 0x7bff ? 65536.0 : refHalfToDouble(uint16_t(lo + 1));
    return sign | nearestEven(a, lo, refHalfToDouble(lo), next);
}

uint16_t refFloatToBf16(float f) {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(double(f));
    const auto lo = uint16_t((std::bit_cast<uint32_t>(f) & 0x7fffffff) >> 16);  // truncation: value <= a
    const double next = lo == 0x7f7f ? std::ldexp(1.0, 128) : refBf16ToDouble(uint16_t(lo + 1));
    return sign | nearestEven(a, lo, refBf16ToDouble(lo), next);
}

TEST(Half, HalfToFloatIsExactForEveryPattern) {
    for (uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = uint16_t(i);
        const uint32_t bits = std::bit_cast<uint32_t>(halfToFloat(h));
        if (isHalfNan(h)) {  // sign and payload carried over
            ASSERT_EQ(bits, uint32_t(h & 0x8000) << 16 | 0x7f800000u | uint32_t(h & 0x3ff) << 13) << "h " << i;
        } else {
            const float expected = float(refHalfToDouble(h));
            ASSERT_EQ(bits, std::bit_cast<uint32_t>(expected)) << "h " << i;  // also tells -0 from +0
        }
    }
}

TEST(Half, FloatToHalfRoundTripsEveryPattern) {
    for (uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = uint16_t(i);
        const uint16_t back = floatToHalf(halfToFloat(h));
        if (isHalfNan(h)) {
            ASSERT_TRUE(isHalfNan(back) && (back & 0x8000) == (h & 0x8000)) << "h " << i << " -> " << back;
        } else {
            ASSERT_EQ(back, h) << "h " << i;
        }
    }
}

TEST(Half, FloatToHalfRoundsToNearestEven) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<uint32_t> nearHalfExponent(100, 145);  // covers fp16 subnormal to overflow
    for (int i = 0; i < 200000; ++i) {
        float f;
        switch (i % 4) {
        case 0:  // any pattern: float subnormals, inf, nan included
            f = std::bit_cast<float>(uint32_t(rng()));
            break;
        case 1:
        case 2:
            f = std::bit_cast<float>(uint32_t(rng() & 0x807fffff) | nearHalfExponent(rng) << 23);
            break;
        default: {  // exact midpoint between two neighbouring finite halves
            const auto h = uint16_t(rng() % 0x7bff | (rng() & 1) << 15);
            f = float((refHalfToDouble(h) + refHalfToDouble(uint16_t(h + 1))) / 2);
            break;
        }
        }
        const uint16_t got = floatToHalf(f);
        if (std::isnan(f)) {
            ASSERT_TRUE(isHalfNan(got) && (got >> 15) == std::signbit(f)) << "nan " << std::bit_cast<uint32_t>(f);
        } else {
            ASSERT_EQ(got, refFloatToHalf(f)) << "f " << f << " (bits " << std::bit_cast<uint32_t>(f) << ")";
        }
    }
    EXPECT_EQ(floatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
    EXPECT_EQ(floatToHalf(-std::numeric_limits<float>::infinity()), 0xfc00);
    EXPECT_EQ(floatToHalf(65519.99f), 0x7bff);
    EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);
    EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and the smallest subnormal
    EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -25)), 0x0002);  // tie between subnormals 1 and 2
}

TEST(Bf16, Bf16ToFloatIsExactForEveryPattern) {
    for (uint32_t i = 0; i < 0x10000; ++i) {
        const auto b = uint16_t(i);
        const float f = bf16ToFloat(b);
        if (isBf16Nan(b)) {
            ASSERT_EQ(std::bit_cast<uint32_t>(f), i << 16) << "b " << i;
        } else {
            ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(float(refBf16ToDouble(b)))) << "b " << i;
        }
    }
}

TEST(Bf16, FloatToBf16RoundsToNearestEven) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 200000; ++i) {
        uint32_t bits = uint32_t(rng());
        if (i % 3 == 0) bits = (bits & 0xffff0000u) | 0x8000u;      // exact tie
        if (i % 7 == 0) bits &= 0x807fffffu;                          // float subnormal
        if (i % 11 == 0) bits |= 0x7f7f0000u;                         // near overflow
        const float f = std::bit_cast<float>(bits);
        const uint16_t got = floatToBf16(f);
        if (std::isnan(f)) {
            ASSERT_TRUE(isBf16Nan(got) && (got >> 15) == std::signbit(f)) << "nan " << bits;
        } else {
            ASSERT_EQ(got, refFloatToBf16(f)) << "f " << f << " (bits " << bits << ")";
        }
    }
    EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
    EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds past the largest bf16
    EXPECT_TRUE(isBf16Nan(floatToBf16(std::bit_cast<float>(0x7f800001u))));  // payload only in low bits
}

}  // namespace
}  // namespace pagoda

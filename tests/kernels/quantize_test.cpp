// quantizeRow: Q8_0 / Q4_0 byte-exact against a transcription of ggml's
// reference quantizers; every type's quantizeRow -> dequantizeRow error
// against the levels its stored scales allow; K-quant fit quality.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/matmul.h"
#include "kernels/half.h"
#include "reference_blocks.h"

namespace pagoda::cpu {
namespace {

constexpr int64_t kN = 32 * 256;  // 32 K-quant super-blocks

// Blocks of varied scale, with the awkward cases: all zero, one nonzero
// element, constant, and a block whose largest magnitude is negative.
std::vector<float> quantizeInput(std::mt19937_64& rng) {
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> logScale(-6.0f, 6.0f);
    std::vector<float> x(static_cast<size_t>(kN));
    for (int64_t b = 0; b < kN / 32; ++b) {
        float* block = x.data() + b * 32;
        const float scale = std::exp(logScale(rng));
        for (int j = 0; j < 32; ++j) block[j] = normal(rng) * scale;
        switch (b % 8) {
        case 0:
            std::fill_n(block, 32, 0.0f);
            break;
        case 1:
            std::fill_n(block, 32, 0.0f);
            block[b % 32] = scale;
            break;
        case 2:
            std::fill_n(block, 32, -scale);
            break;
        case 3:
            block[5] = -40.0f * scale;
            break;
        default:
            break;
        }
    }
    return x;
}

struct Q8Ref {
    float d;  // unrounded scale
    uint8_t bytes[34];
};

// ggml quantize_row_q8_0_ref.
Q8Ref refQuantizeQ8(const float* x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    Q8Ref out{amax / 127.0f, {}};
    const float id = out.d != 0.0f ? 1.0f / out.d : 0.0f;
    const uint16_t dh = floatToHalf(out.d);
    std::memcpy(out.bytes, &dh, 2);
    for (int j = 0; j < 32; ++j) out.bytes[2 + j] = uint8_t(int8_t(roundf(x[j] * id)));
    return out;
}

struct Q4Ref {
    float d;
    uint8_t bytes[18];
};

// ggml quantize_row_q4_0_ref.
Q4Ref refQuantizeQ4(const float* x) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < 32; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    Q4Ref out{max / -8.0f, {}};
    const float id = out.d != 0.0f ? 1.0f / out.d : 0.0f;
    const uint16_t dh = floatToHalf(out.d);
    std::memcpy(out.bytes, &dh, 2);
    for (int j = 0; j < 16; ++j) {
        const uint8_t lo = std::min<uint8_t>(15, uint8_t(int8_t(x[j] * id + 8.5f)));
        const uint8_t hi = std::min<uint8_t>(15, uint8_t(int8_t(x[16 + j] * id + 8.5f)));
        out.bytes[2 + j] = uint8_t(lo | hi << 4);
    }
    return out;
}

// Gaussian blocks of 256 with one scale each (log-uniform over e^[-6, 6]).
std::vector<float> gaussianInput(std::mt19937_64& rng) {
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> logScale(-6.0f, 6.0f);
    std::vector<float> x(static_cast<size_t>(kN));
    for (int64_t b = 0; b < kN / 256; ++b) {
        const float scale = std::exp(logScale(rng));
        for (int j = 0; j < 256; ++j) x[size_t(b * 256 + j)] = normal(rng) * scale;
    }
    return x;
}

std::vector<float> roundTrip(DType type, const std::vector<float>& x, std::vector<uint8_t>& bytes) {
    bytes.assign(rowBytes(type, size_t(kN)), 0);
    quantizeRow(type, x.data(), bytes.data(), kN);
    std::vector<float> back(size_t(kN), std::numeric_limits<float>::quiet_NaN());
    dequantizeRow(WeightMatrix{type, bytes.data(), 1, kN}, 0, back.data());
    return back;
}

TEST(QuantizeRow, FloatTypesRoundToNearestEven) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const std::vector<float> x = quantizeInput(rng);
    std::vector<uint8_t> bytes;
    const std::vector<float> f32 = roundTrip(DType::F32, x, bytes);
    EXPECT_EQ(std::memcmp(f32.data(), x.data(), x.size() * sizeof(float)), 0);
    const std::vector<float> f16 = roundTrip(DType::F16, x, bytes);
    for (int64_t i = 0; i < kN; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        ASSERT_EQ(h, floatToHalf(x[size_t(i)])) << "element " << i;
        ASSERT_EQ(f16[size_t(i)], halfToFloat(h)) << "element " << i;
    }
    const std::vector<float> bf16 = roundTrip(DType::BF16, x, bytes);
    for (int64_t i = 0; i < kN; ++i) {
        uint16_t b;
        std::memcpy(&b, bytes.data() + 2 * i, 2);
        ASSERT_EQ(b, floatToBf16(x[size_t(i)])) << "element " << i;
        ASSERT_EQ(bf16[size_t(i)], bf16ToFloat(b)) << "element " << i;
    }
}

// The vectorized F16 conversion against the scalar one where rounding is
// delicate: ties, the subnormal range, the overflow threshold, infinities.
TEST(QuantizeRow, F16EdgeValuesMatchTheScalarConversion) {
    const float ulpAt1 = 1.0f / 1024.0f;
    const std::vector<float> x = {
        1.0f + ulpAt1 / 2,  1.0f + 3 * ulpAt1 / 2, -(1.0f + ulpAt1 / 2), 65504.0f, 65519.0f, 65520.0f, -65520.0f,
        std::ldexp(1.0f, -24), std::ldexp(1.0f, -25), std::ldexp(3.0f, -25), std::ldexp(1.0f, -26), -0.0f,
        std::ldexp(1.0f, -14), std::ldexp(1023.0f, -24), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity(), 1e-30f, 3.14159265f, 0.0f};
    std::vector<uint16_t> halves(x.size());
    quantizeRow(DType::F16, x.data(), halves.data(), int64_t(x.size()));
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(halves[i], floatToHalf(x[i])) << "x = " << x[i];
}

// |x - dequant(x)| <= |d|/2 from rounding q, plus |q| * |d - fp16(d)| from
// storing the scale as fp16, plus a little for x * (1/d) in float.
TEST(QuantizeRow, Q8_0MatchesGgmlAndRoundTripsWithinHalfAStep) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const std::vector<float> x = quantizeInput(rng);
    std::vector<uint8_t> bytes;
    const std::vector<float> back = roundTrip(DType::Q8_0, x, bytes);
    for (int64_t b = 0; b < kN / 32; ++b) {
        const Q8Ref ref = refQuantizeQ8(x.data() + b * 32);
        ASSERT_EQ(std::memcmp(ref.bytes, bytes.data() + b * 34, 34), 0) << "block " << b;
        uint16_t dh;
        std::memcpy(&dh, ref.bytes, 2);
        const double scaleError = std::fabs(double(ref.d) - double(halfToFloat(dh)));
        for (int j = 0; j < 32; ++j) {
            const size_t i = size_t(b * 32 + j);
            const double q = double(int8_t(ref.bytes[2 + j]));
            const double bound = std::fabs(double(ref.d)) * (0.5 + 1e-4) + std::fabs(q) * scaleError;
            ASSERT_LE(std::fabs(double(x[i]) - double(back[i])), bound) << "block " << b << ", element " << j;
        }
    }
}

// As Q8_0, except that ggml's Q4_0 maps the largest magnitude to -8 and its
// opposite end clamps from 8 to 7: elements with x/d > 7.5 may be off by |d|.
TEST(QuantizeRow, Q4_0MatchesGgmlAndRoundTripsWithinHalfAStep) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const std::vector<float> x = quantizeInput(rng);
    std::vector<uint8_t> bytes;
    const std::vector<float> back = roundTrip(DType::Q4_0, x, bytes);
    for (int64_t b = 0; b < kN / 32; ++b) {
        const Q4Ref ref = refQuantizeQ4(x.data() + b * 32);
        ASSERT_EQ(std::memcmp(ref.bytes, bytes.data() + b * 18, 18), 0) << "block " << b;
        uint16_t dh;
        std::memcpy(&dh, ref.bytes, 2);
        const double d = double(ref.d);
        const double scaleError = std::fabs(d - double(halfToFloat(dh)));
        for (int j = 0; j < 32; ++j) {
            const size_t i = size_t(b * 32 + j);
            const uint8_t packed = ref.bytes[2 + j % 16];
            const int q = (j < 16 ? packed & 0xf : packed >> 4) - 8;
            const bool clampEdge = d != 0.0 && double(x[i]) / d > 7.5;
            const double bound = std::fabs(d) * ((clampEdge ? 1.0 : 0.5) + 1e-4) + std::abs(q) * scaleError;
            ASSERT_LE(std::fabs(double(x[i]) - double(back[i])), bound) << "block " << b << ", element " << j;
        }
    }
}

const DType kNewTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::string typeName(const ::testing::TestParamInfo<DType>& info) { return std::string(dtypeName(info.param)); }

class QuantizeRoundTrip : public ::testing::TestWithParam<DType> {};

// Every element decodes to the level of its (sub-)block nearest to x, given
// the scale and offset stored (decoded independently, reference_blocks.h),
// or to the nearer end of the block's range when x lies outside it (ggml
// clamps: Q5_0's +16 to 15; K-quant fits may clip). The slack covers
// rounding in the quantizer and, for Q4_1 / Q5_0 / Q5_1, its use of the
// scale and offset before they are stored as fp16 (2^-11 relative each).
TEST_P(QuantizeRoundTrip, EveryElementAtTheNearestStoredLevel) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const DType type = GetParam();
    for (const std::vector<float>& x : {quantizeInput(rng), gaussianInput(rng)}) {
        std::vector<uint8_t> bytes;
        const std::vector<float> back = roundTrip(type, x, bytes);
        const std::vector<test::RefElement> stored = test::refDecode(type, bytes.data(), kN);
        for (size_t i = 0; i < x.size(); ++i) {
            const test::RefElement& e = stored[i];
            const double xi = double(x[i]);
            const double slack = 0x1p-10 * (e.magnitude + std::fabs(xi)) + 0x1p-23;
            ASSERT_LE(std::fabs(double(back[i]) - e.value), (0x1p-24 + 0x1p-50) * std::fabs(e.value))
                << "element " << i;
            if (xi >= e.lo && xi <= e.hi) {
                ASSERT_LE(std::fabs(xi - double(back[i])), e.step / 2 + slack)
                    << "element " << i << ": x " << xi << ", decoded " << back[i] << ", step " << e.step;
            } else {
                ASSERT_LE(std::fabs(std::clamp(xi, e.lo, e.hi) - double(back[i])), slack)
                    << "element " << i << ": x " << xi << " outside [" << e.lo << ", " << e.hi << "], decoded "
                    << back[i];
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(NewTypes, QuantizeRoundTrip, ::testing::ValuesIn(kNewTypes), typeName);

// A K-quant type with the bounds of the fit-quality tests below.
struct KQuantCase {
    DType type;
    double rmsBound;       // GaussianRmsErrorIsSmall
    double rangeFraction;  // ErrorIsAFractionOfTheSuperBlockRange
};

const KQuantCase kKQuantCases[] = {
    {DType::Q2_K, 0.4, 0.3},   {DType::Q3_K, 0.22, 0.18},   {DType::Q4_K, 0.1, 0.075},
    {DType::Q5_K, 0.05, 0.04}, {DType::Q6_K, 0.025, 0.022},
};

class KQuantFit : public ::testing::TestWithParam<KQuantCase> {};

// The K-quant searches (ggml's make_qkx2_quants / make_qx_quants) and the
// 4-/6-/8-bit sub-block scales keep the RMS error of a Gaussian super-block
// within rmsBound standard deviations: a little above the ideal
// step/sqrt(12) of a sub-block's range in 3 / 7 / 15 / 31 / 63 steps
// (Q2_K's and Q3_K's sub-blocks are 16 elements). A wrong scale packing or
// search comes out far above. Worst super-block of 100000 seen: 0.37
// (Q2_K), 0.20 (Q3_K), 0.087 (Q4_K).
TEST_P(KQuantFit, GaussianRmsErrorIsSmall) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const KQuantCase& c = GetParam();
    const std::vector<float> x = gaussianInput(rng);
    std::vector<uint8_t> bytes;
    const std::vector<float> back = roundTrip(c.type, x, bytes);
    for (int64_t b = 0; b < kN / 256; ++b) {
        double sumX2 = 0.0;
        double sumE2 = 0.0;
        for (size_t i = size_t(b * 256); i < size_t(b * 256 + 256); ++i) {
            sumX2 += double(x[i]) * double(x[i]);
            sumE2 += (double(x[i]) - double(back[i])) * (double(x[i]) - double(back[i]));
        }
        EXPECT_LE(std::sqrt(sumE2 / sumX2), c.rmsBound) << "super-block " << b;
    }
}

// Every element within rangeFraction of its super-block's range (the span of
// its values and 0) on both inputs: the fit spends its levels and sub-block
// scales on the data, whatever the magnitudes of the blocks of 32 inside
// (the nearest-level test above would also pass with degenerate scales).
// Worst seen over 40000 super-blocks of each input: 0.23 (Q2_K), 0.13
// (Q3_K), 0.053 (Q4_K), 0.030 (Q5_K), 0.016 (Q6_K).
TEST_P(KQuantFit, ErrorIsAFractionOfTheSuperBlockRange) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const KQuantCase& c = GetParam();
    for (const std::vector<float>& x : {quantizeInput(rng), gaussianInput(rng)}) {
        std::vector<uint8_t> bytes;
        const std::vector<float> back = roundTrip(c.type, x, bytes);
        for (int64_t b = 0; b < kN / 256; ++b) {
            const auto first = x.begin() + b * 256;
            const double lo = std::min(0.0f, *std::min_element(first, first + 256));
            const double hi = std::max(0.0f, *std::max_element(first, first + 256));
            for (size_t i = size_t(b * 256); i < size_t(b * 256 + 256); ++i) {
                ASSERT_LE(std::fabs(double(x[i]) - double(back[i])), c.rangeFraction * (hi - lo))
                    << "super-block " << b << ", element " << i << ": x " << x[i] << ", decoded " << back[i];
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(KQuants, KQuantFit, ::testing::ValuesIn(kKQuantCases),
                         [](const ::testing::TestParamInfo<KQuantCase>& info) {
                             return std::string(dtypeName(info.param.type));
                         });

}  // namespace
}  // namespace pagoda::cpu

// elementwise.h against float64 references. Bounds are in units of
// u = 2^-24 (f32 rounding) relative to the reference value.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/elementwise.h"

namespace pagoda::cpu {
namespace {

constexpr double kU = 0x1p-24;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> uniformVector(int64_t n, float lo, float hi, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> uniform(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v) e = uniform(rng);
    return v;
}

// Fails on NaN.
#define EXPECT_WITHIN(actual, expected, bound) \
    EXPECT_TRUE(std::fabs(double(actual) - (expected)) <= (bound)) \
        << #actual " = " << (actual) << ", expected " << (expected) << ", bound " << (bound)

TEST(Elementwise, RmsNormMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int64_t kRows = 3;
    constexpr float kEps = 1e-5f;
    for (const int64_t n : {1, 7, 8, 17, 4096}) {
        SCOPED_TRACE("n " + std::to_string(n));
        const std::vector<float> x = uniformVector(kRows * n, -4.0f, 4.0f, rng);
        const std::vector<float> weight = uniformVector(n, -2.0f, 2.0f, rng);
        std::vector<float> y(x.size(), kNaN);
        rmsNorm(x.data(), weight.data(), y.data(), kRows, n, kEps);
        std::vector<float> inPlace = x;
        rmsNorm(inPlace.data(), weight.data(), inPlace.data(), kRows, n, kEps);
        // Sum of squares: n/16 + 4 chained roundings, halved by the sqrt; then 3 more.
        const double tol = (double(n) / 16.0 + 8.0) * kU;
        for (int64_t r = 0; r < kRows; ++r) {
            double sumSq = 0.0;
            for (int64_t c = 0; c < n; ++c) sumSq += double(x[size_t(r * n + c)]) * x[size_t(r * n + c)];
            const double scale = 1.0 / std::sqrt(sumSq / double(n) + kEps);
            for (int64_t c = 0; c < n; ++c) {
                const size_t i = size_t(r * n + c);
                const double expected = double(x[i]) * scale * weight[size_t(c)];
                EXPECT_WITHIN(y[i], expected, tol * std::fabs(expected));
                EXPECT_EQ(inPlace[i], y[i]);
            }
        }
    }
}

TEST(Elementwise, RopeMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int kHeads = 3;
    for (const RopeStyle style : {RopeStyle::Normal, RopeStyle::NeoX}) {
        for (const int headDim : {64, 128}) {
            for (const int ropeDim : {headDim, headDim / 2, 2}) {
                for (const float base : {10000.0f, 1000000.0f}) {
                    for (const int position : {0, 1, 17, 4095, 100000}) {
                        SCOPED_TRACE("style " + std::to_string(int(style)) + ", headDim " + std::to_string(headDim) +
                                     ", ropeDim " + std::to_string(ropeDim) + ", base " + std::to_string(base) +
                                     ", position " + std::to_string(position));
                        const std::vector<float> x = uniformVector(kHeads * headDim, -3.0f, 3.0f, rng);
                        std::vector<float> y = x;
                        rope(y.data(), kHeads, position, RopeParams{headDim, ropeDim, base, style});
                        for (int h = 0; h < kHeads; ++h) {
                            const float* in = x.data() + h * headDim;
                            const float* out = y.data() + h * headDim;
                            for (int i = 0; i < ropeDim / 2; ++i) {
                                const int i0 = style == RopeStyle::Normal ? 2 * i : i;
                                const int i1 = style == RopeStyle::Normal ? 2 * i + 1 : i + ropeDim / 2;
                                const double theta = position * std::pow(double(base), -2.0 * i / ropeDim);
                                const double a = in[i0];
                                const double b = in[i1];
                                const double bound = 2.0 * kU * (std::fabs(a) + std::fabs(b));
                                EXPECT_WITHIN(out[i0], a * std::cos(theta) - b * std::sin(theta), bound);
                                EXPECT_WITHIN(out[i1], a * std::sin(theta) + b * std::cos(theta), bound);
                            }
                            for (int d = ropeDim; d < headDim; ++d) EXPECT_EQ(out[d], in[d]) << "dim " << d;
                        }
                    }
                }
            }
        }
    }
}

TEST(Elementwise, SwigluMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (const int64_t n : {1, 7, 8, 100, 1000}) {
        SCOPED_TRACE("n " + std::to_string(n));
        std::vector<float> gate = uniformVector(n, -20.0f, 20.0f, rng);
        const std::vector<float> up = uniformVector(n, -3.0f, 3.0f, rng);
        gate[0] = n > 1 ? -100.0f : 0.0f;
        if (n > 2) gate[1] = 100.0f;
        std::vector<float> out(size_t(n), kNaN);
        swiglu(gate.data(), up.data(), out.data(), n);
        std::vector<float> inPlace = gate;
        swiglu(inPlace.data(), up.data(), inPlace.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const double g = gate[size_t(i)];
            const double expected = g / (1.0 + std::exp(-g)) * up[size_t(i)];
            // exp within 2 ulp, then 3 roundings; below 1e-30 only the magnitude matters.
            EXPECT_WITHIN(out[size_t(i)], expected, 8.0 * kU * std::fabs(expected) + 1e-30) << "g " << g;
            EXPECT_EQ(inPlace[size_t(i)], out[size_t(i)]);
        }
    }
}

TEST(Elementwise, GegluMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (const int64_t n : {1, 7, 8, 100, 1000}) {
        SCOPED_TRACE("n " + std::to_string(n));
        std::vector<float> gate = uniformVector(n, -8.0f, 8.0f, rng);
        const std::vector<float> up = uniformVector(n, -3.0f, 3.0f, rng);
        gate[0] = n > 1 ? -100.0f : 0.0f;
        if (n > 2) gate[1] = 100.0f;
        std::vector<float> out(size_t(n), kNaN);
        geglu(gate.data(), up.data(), out.data(), n);
        std::vector<float> inPlace = gate;
        geglu(inPlace.data(), up.data(), inPlace.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const double g = gate[size_t(i)];
            // 0.5 (1 + tanh z) = 1 / (1 + exp(-2z)), in float64 (tanh itself
            // saturates to -1 where the result is still far from 0).
            const double arg = 2.0 * std::sqrt(2.0 / std::numbers::pi) * (g + 0.044715 * g * g * g);
            const double expected = g / (1.0 + std::exp(-arg)) * up[size_t(i)];
            // exp's argument carries the cubic's rounding: a relative error of
            // about |arg| ulp in the result, on top of exp's and 4 roundings.
            EXPECT_WITHIN(out[size_t(i)], expected, (8.0 + 4.0 * std::fabs(arg)) * kU * std::fabs(expected) + 1e-30)
                << "g " << g;
            EXPECT_EQ(inPlace[size_t(i)], out[size_t(i)]);
        }
    }
}

TEST(Elementwise, SoftcapMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (const float cap : {50.0f, 30.0f, 2.0f}) {
        for (const int64_t n : {1, 7, 8, 100, 1000}) {
            SCOPED_TRACE("cap " + std::to_string(cap) + " n " + std::to_string(n));
            std::vector<float> x = uniformVector(n, -4.0f * cap, 4.0f * cap, rng);
            x[0] = n > 1 ? -1e30f : 0.0f;
            if (n > 2) x[1] = 1e30f;
            if (n > 3) x[2] = 1e-3f;
            std::vector<float> out = x;
            softcap(out.data(), n, cap);
            for (int64_t i = 0; i < n; ++i) {
                const double expected = double(cap) * std::tanh(double(x[size_t(i)]) / cap);
                // exp's relative error and the division's: about 1e-7 of cap, absolute.
                EXPECT_WITHIN(out[size_t(i)], expected, 4e-7 * cap) << "x " << x[size_t(i)];
            }
        }
    }
    float nan = kNaN;
    softcap(&nan, 1, 50.0f);
    EXPECT_TRUE(std::isnan(nan));
}

TEST(Elementwise, SoftmaxMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (const int64_t n : {1, 5, 8, 33, 1000, 32000}) {
        for (const float range : {1.0f, 30.0f, 1000.0f}) {
            SCOPED_TRACE("n " + std::to_string(n) + ", range " + std::to_string(range));
            const std::vector<float> x = uniformVector(n, -range, range, rng);
            std::vector<float> y = x;
            softmax(y.data(), n);
            double max = -INFINITY;
            for (const float v : x) max = std::max(max, double(v));
            double sum = 0.0;
            for (const float v : x) sum += std::exp(double(v) - max);
            // Rounding x - max in f32 costs |x - max| u relatively after exp; the
            // sum of n positive terms takes n/8 + 3 chained roundings.
            for (int64_t i = 0; i < n; ++i) {
                const double shifted = double(x[size_t(i)]) - max;
                const double expected = std::exp(shifted) / sum;
                const double tol = (std::fabs(shifted) + double(n) / 8.0 + 8.0) * kU;
                EXPECT_WITHIN(y[size_t(i)], expected, tol * expected + 1e-30);
            }
        }
    }
}

TEST(Elementwise, AddInPlaceIsExact) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (const int64_t n : {1, 7, 8, 33, 1000}) {
        const std::vector<float> x = uniformVector(n, -1.0f, 1.0f, rng);
        const std::vector<float> y0 = uniformVector(n, -1.0f, 1.0f, rng);
        std::vector<float> y = y0;
        addInPlace(y.data(), x.data(), n);
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[size_t(i)], y0[size_t(i)] + x[size_t(i)]) << "n " << n;
    }
}

}  // namespace
}  // namespace pagoda::cpu

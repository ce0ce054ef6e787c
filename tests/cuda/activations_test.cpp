// The value functions the device kernels share with the host
// (kernels/cuda/activations.h: GeGLU and soft-capping), built for the host,
// against float64 on fresh random inputs and against the CPU kernels.
// Runs without a device.

#include "kernels/cuda/activations.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda::test {
namespace {

// f32 evaluation: tanhf and expf are within a few ulp, and each of the
// few roundings adds half an ulp, so the values stay within 1e-6 of
// float64 relative to their size. GeGLU's exponential of -2z carries the
// rounding of its argument too, a relative error of about |2z| ulp: its
// bound grows with |2z|, and where exp(-2z) overflows f32 (gates below
// about -7.4) the value is 0 instead of one below 1e-30. GeGLU measures up
// to 1.5e-7 (1 + |2z|) relative (max_relative_error_over_1_plus_2z).
constexpr double kRelative = 1e-6;

TEST(Activations, GegluIsGeluTanhTimesUp) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> gates(-12.0f, 12.0f);
    std::uniform_real_distribution<float> ups(-3.0f, 3.0f);
    const size_t n = 4099;
    std::vector<float> gate(n);
    std::vector<float> up(n);
    for (size_t i = 0; i < n; ++i) {
        gate[i] = gates(rng);
        up[i] = ups(rng);
    }
    std::vector<float> cpu(n);
    cpu::geglu(gate.data(), up.data(), cpu.data(), int64_t(n));
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        const double g = gate[i];
        const double z = std::sqrt(2.0 / std::numbers::pi) * (g + 0.044715 * g * g * g);
        // 0.5 (1 + tanh z) as 1 / (1 + exp(-2z)): the same in exact
        // arithmetic, without float64's cancellation at large negative z.
        const double want = g / (1.0 + std::exp(-2.0 * z)) * double(up[i]);
        const double bound = kRelative * (1.0 + std::fabs(2.0 * z)) * std::fabs(want) + 1e-30;
        const float got = gegluValue(gate[i], up[i]);
        ASSERT_TRUE(std::isfinite(got)) << gate[i] << ", " << up[i];
        const double error = std::fabs(double(got) - want);
        ASSERT_LE(error, bound) << "gate " << gate[i] << ", up " << up[i] << ": got " << got << ", want " << want;
        if (std::fabs(want) > 1e-30) worst = std::max(worst, error / std::fabs(want) / (1.0 + std::fabs(2.0 * z)));
        // The CPU's vector form of the same formula.
        ASSERT_NEAR(got, cpu[i], 4 * bound) << "gate " << gate[i];
    }
    char measured[32];
    std::snprintf(measured, sizeof measured, "%.2e", worst);
    RecordProperty("max_relative_error_over_1_plus_2z", measured);
}

TEST(Activations, SoftcapBendsIntoTheCapAndSaturates) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> values(-400.0f, 400.0f);
    for (const float cap : {2.0f, 30.0f, 50.0f}) {
        SCOPED_TRACE(testing::Message() << "cap " << cap);
        std::vector<float> x(1027);
        for (float& v : x) v = values(rng);
        x[0] = 1e30f;
        x[1] = -1e30f;
        x[2] = 0.0f;
        std::vector<float> cpu = x;
        cpu::softcap(cpu.data(), int64_t(cpu.size()), cap);
        for (size_t i = 0; i < x.size(); ++i) {
            const double want = double(cap) * std::tanh(double(x[i]) / cap);
            const float got = softcapValue(x[i], cap);
            ASSERT_TRUE(std::isfinite(got)) << x[i];
            ASSERT_LE(std::fabs(got), cap) << x[i];
            ASSERT_NEAR(got, want, kRelative * cap) << x[i];
            ASSERT_NEAR(got, cpu[i], 4 * kRelative * cap) << x[i];
        }
    }
}

}  // namespace
}  // namespace pagoda::cuda::test

// The RMSNorm kernels (kernels/cuda/rms_norm_kernel.cuh) without a device:
// their own source, compiled as host C++ (norm_kernel_host.cpp), on the CTA
// emulator, against a float64 RMSNorm: rows shorter than the CTA's 512
// threads, of a whole number of passes and of a partial last pass. The
// fused kernel (residual add, then the norm) must give the same bits as the
// add followed by the plain kernel, in x and in y. Seeds are fresh every
// run.

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tests/cuda/emulation/attention_cases.h"
#include "tests/cuda/emulation/cta_emulator.h"
#include "tests/cuda/emulation/norm_kernel_host.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

constexpr float kEps = 1e-5f;

std::vector<float> uniform(std::mt19937_64& rng, size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& f : v) f = dist(rng);
    return v;
}

// |y - want| <= 1e-5 |want| + 1e-6: the sum of squares of up to 4096
// terms in f32 (each thread's 8 in order, then a tree), a square root and
// two products, each off by a few 2^-24 at most.
void expectNormOf(const std::vector<float>& x, const std::vector<float>& weight, const std::vector<float>& y,
                  int64_t nRows, int64_t n) {
    for (int64_t r = 0; r < nRows; ++r) {
        double squares = 0.0;
        for (int64_t c = 0; c < n; ++c) squares += double(x[size_t(r * n + c)]) * x[size_t(r * n + c)];
        const double scale = 1.0 / std::sqrt(squares / double(n) + double(kEps));
        for (int64_t c = 0; c < n; ++c) {
            const double want = double(x[size_t(r * n + c)]) * scale * weight[size_t(c)];
            const float got = y[size_t(r * n + c)];
            ASSERT_TRUE(std::isfinite(got)) << "row " << r << " col " << c;
            ASSERT_NEAR(got, want, 1e-5 * std::fabs(want) + 1e-6) << "row " << r << " col " << c;
        }
    }
}

class NormEmulation : public testing::TestWithParam<int64_t> {};

TEST_P(NormEmulation, FusedAddAndNormMatchFloat64AndTheUnfusedBits) {
    const int64_t n = GetParam();
    const int64_t nRows = 3;
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const std::vector<float> x0 = uniform(rng, size_t(nRows * n), -3.0f, 3.0f);
    const std::vector<float> delta = uniform(rng, size_t(nRows * n), -1.0f, 1.0f);
    const std::vector<float> weight = uniform(rng, size_t(n), 0.5f, 1.5f);
    emulation::LaunchConfig config;
    config.shuffleThreads = true;
    config.seed = seed;

    // Unfused: the add (one f32 addition per element, as the add kernel),
    // then the plain kernel.
    std::vector<float> added(x0.size());
    for (size_t i = 0; i < x0.size(); ++i) added[i] = x0[i] + delta[i];
    std::vector<float> plain(x0.size(), std::bit_cast<float>(emulation::kUnwritten));
    emulation::expectNoFindings(emulation::runRmsNormKernel(added.data(), weight.data(), plain.data(), nRows, n, kEps,
                                                            config),
                                "rmsNormKernel");
    expectNormOf(added, weight, plain, nRows, n);

    std::vector<float> x = x0;
    std::vector<float> fused(x0.size(), std::bit_cast<float>(emulation::kUnwritten));
    emulation::expectNoFindings(emulation::runAddRmsNormKernel(x.data(), delta.data(), weight.data(), fused.data(),
                                                               nRows, n, kEps, config),
                                "addRmsNormKernel");
    for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(x[i]), std::bit_cast<uint32_t>(added[i])) << "x float " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(fused[i]), std::bit_cast<uint32_t>(plain[i]))
            << "y float " << i << ": fused " << fused[i] << ", unfused " << plain[i];
    }
}

// Shorter than the CTA, one whole pass, a partial last pass, a model's dim.
INSTANTIATE_TEST_SUITE_P(RowLengths, NormEmulation, testing::Values(int64_t(40), int64_t(512), int64_t(1000),
                                                                    int64_t(4096)));

}  // namespace
}  // namespace pagoda::cuda

// The decode matrix-vector kernel (kernels/cuda/matvec_kernel.cuh) without a
// device: its own source, compiled as host C++ (matvec_kernel_host.cpp),
// runs on the CTA emulator for every weight type the CUDA backend reads,
// against a float64 product over the float64 reference decoder
// (tests/kernels/reference_blocks.h). Shapes cover a partial CTA of rows,
// rows shorter than one pass of the CTA's 128 lanes and longer than one,
// each token group (1, 4, 8) full and partial, and several groups of 8. Checked: every output
// within tolerance (NaN never passes), each written once, by the CTA of
// its rows and tokens, nothing around y touched; the weights end right
// below an inaccessible page; each token's result bit for bit the same as
// that token run alone (the kernel's batch invariance); no divergent
// collective or barrier. Seeds are fresh every run.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/quant_blocks.h"
#include "tests/cuda/emulation/attention_cases.h"
#include "tests/cuda/emulation/cta_emulator.h"
#include "tests/cuda/emulation/matvec_kernel_host.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference_blocks.h"

namespace pagoda::cuda {
namespace {

using emulation::GuardedFloats;
using emulation::Index3;
using emulation::kUnwritten;

constexpr int kCtaRows = 4;    // mv::kRows
constexpr int kCtaLanes = 128;  // mv::kWarps * 32 lanes, 8 elements each

// |y - want| <= kTolerance * sum |w x|. Each weight is decoded correctly
// rounded to f32 (quant_blocks_test), each product and sum rounded to f32:
// a lane sums its units in order (at most 2 units of 8 here), then 5
// shuffle rounds and 4 warps, about 25 roundings deep, 25 * 2^-24 = 1.5e-6
// in the worst case. A single wrong element costs some 1/cols of the sum,
// at least 6e-4 here.
constexpr double kTolerance = 1e-5;

struct MatvecCase {
    DType type;
    int64_t rows;
    int64_t cols;
    int64_t nTokens;
    bool shuffledThreads;
};

std::ostream& operator<<(std::ostream& os, const MatvecCase& c) {
    return os << dtypeName(c.type) << " " << c.rows << " x " << c.cols << ", " << c.nTokens << " tokens"
              << (c.shuffledThreads ? ", shuffled threads" : "");
}

// Weights of `type` ending right below an inaccessible page.
class GuardedWeights {
public:
    GuardedWeights(DType type, int64_t rows, int64_t cols)
        : m_bytes(rowBytes(type, size_t(cols)) * size_t(rows)), m_memory((m_bytes + 3) / 4) {}
    uint8_t* data() const { return reinterpret_cast<uint8_t*>(m_memory.data()) + ((m_bytes + 3) / 4 * 4 - m_bytes); }

private:
    size_t m_bytes;
    GuardedFloats m_memory;
};

std::vector<float> randomFloats(std::mt19937_64& rng, size_t n, float amplitude) {
    std::uniform_real_distribution<float> dist(-amplitude, amplitude);
    std::vector<float> v(n);
    for (float& f : v) f = dist(rng);
    return v;
}

// Runs the kernel and checks what it wrote: within its CTA's rows and
// tokens only, once. y: [nTokens][rows] with a guard row of
// kUnwritten on each side.
std::vector<float> runChecked(const MatvecCase& c, const uint8_t* w, const float* x, uint64_t seed) {
    const size_t yFloats = size_t(c.nTokens * c.rows);
    std::vector<float> y(yFloats + 2 * size_t(c.rows), std::bit_cast<float>(kUnwritten));
    float* yProper = y.data() + c.rows;
    std::vector<float> before;
    std::vector<int> writes(y.size(), 0);
    std::vector<std::string> problems;
    emulation::LaunchConfig config;
    config.shuffleThreads = c.shuffledThreads;
    config.seed = seed;
    config.beforeCta = [&](Index3) { before = y; };
    config.afterCta = [&](Index3 block) {
        const int tokensPerCta = emulation::matvecTokenGroup(c.nTokens);
        for (size_t i = 0; i < y.size(); ++i) {
            if (std::bit_cast<uint32_t>(y[i]) == std::bit_cast<uint32_t>(before[i])) continue;
            ++writes[i];
            const long at = long(i) - long(c.rows);
            const long token = at < 0 ? -1 : at / long(c.rows);
            const long row = at < 0 ? -1 : at % long(c.rows);
            const bool owned = at >= 0 && token < c.nTokens && row / kCtaRows == long(block.x) &&
                               token / tokensPerCta == long(block.y);
            if (!owned) emulation::report(problems, emulation::ctaName(block) + " wrote y float " + std::to_string(at));
        }
    };
    const emulation::Findings findings =
        emulation::runMatvecKernel(c.type, w, c.rows, c.cols, x, yProper, c.nTokens, config);
    emulation::expectNoFindings(findings, "matvecKernel");
    EXPECT_TRUE(problems.empty()) << emulation::joined(problems);
    for (size_t i = 0; i < y.size(); ++i) {
        const bool proper = i >= size_t(c.rows) && i < size_t(c.rows) + yFloats;
        EXPECT_EQ(writes[i], proper ? 1 : 0) << "y float " << long(i) - long(c.rows);
    }
    return std::vector<float>(yProper, yProper + yFloats);
}

class MatvecEmulation : public testing::TestWithParam<MatvecCase> {};

TEST_P(MatvecEmulation, MatchesTheFloat64ProductAndWritesEachOutputOnce) {
    const MatvecCase c = GetParam();
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    emulation::explainSegfaults();

    const size_t stride = rowBytes(c.type, size_t(c.cols));
    GuardedWeights weights(c.type, c.rows, c.cols);
    for (int64_t r = 0; r < c.rows; ++r) {
        const std::vector<float> row = randomFloats(rng, size_t(c.cols), 1.0f);
        cpu::quantizeRow(c.type, row.data(), weights.data() + size_t(r) * stride, c.cols);
    }
    const std::vector<float> x = randomFloats(rng, size_t(c.nTokens * c.cols), 2.0f);

    const std::vector<float> y = runChecked(c, weights.data(), x.data(), seed);
    double maxError = 0.0;
    for (int64_t r = 0; r < c.rows; ++r) {
        const std::vector<test::RefElement> w = test::refDecode(c.type, weights.data() + size_t(r) * stride, c.cols);
        for (int64_t t = 0; t < c.nTokens; ++t) {
            double want = 0.0;
            double bound = 0.0;
            for (int64_t k = 0; k < c.cols; ++k) {
                const double term = w[size_t(k)].value * double(x[size_t(t * c.cols + k)]);
                want += term;
                bound += std::fabs(term);
            }
            const float got = y[size_t(t * c.rows + r)];
            ASSERT_TRUE(std::isfinite(got)) << "row " << r << " token " << t;
            ASSERT_NEAR(double(got), want, kTolerance * bound) << "row " << r << " token " << t;
            maxError = std::max(maxError, std::fabs(double(got) - want) / bound);
        }
    }
    RecordProperty("max_error_over_sum_abs", std::to_string(maxError));

    if (c.nTokens == 1) return;
    for (int64_t t = 0; t < c.nTokens; ++t) {
        MatvecCase alone = c;
        alone.nTokens = 1;
        const std::vector<float> single = runChecked(alone, weights.data(), x.data() + t * c.cols, seed);
        for (int64_t r = 0; r < c.rows; ++r) {
            ASSERT_EQ(std::bit_cast<uint32_t>(single[size_t(r)]), std::bit_cast<uint32_t>(y[size_t(t * c.rows + r)]))
                << "token " << t << " of " << c.nTokens << ", row " << r << ": alone " << single[size_t(r)]
                << ", in the batch " << y[size_t(t * c.rows + r)];
        }
    }
}

// Per type: one block's worth of columns (fewer units than a CTA's lanes)
// and more than one pass of the lanes, not a whole number of passes.
std::vector<MatvecCase> cases() {
    const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                           DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};
    std::vector<MatvecCase> out;
    for (DType type : types) {
        const int64_t block = std::max<int64_t>(8, dtypeInfo(type).blockElements);
        const int64_t shortRow = block == 8 ? 40 : block == 32 ? 96 : 256;
        const int64_t longRow = (kCtaLanes * 8 / block + 2) * block;
        out.push_back({type, 9, shortRow, 1, false});
        out.push_back({type, 9, longRow, 1, true});
        out.push_back({type, 4, longRow, 3, false});
        out.push_back({type, 5, shortRow, 4, true});
        out.push_back({type, 6, longRow, 8, false});
        out.push_back({type, 3, shortRow, 5, false});
        out.push_back({type, 5, longRow, 13, false});  // two groups of 8, the second partial
        out.push_back({type, 2, shortRow, 32, true});   // four groups
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, MatvecEmulation, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<MatvecCase>& info) {
                             const MatvecCase& c = info.param;
                             return std::string(dtypeName(c.type)) + "_" + std::to_string(c.rows) + "x" +
                                    std::to_string(c.cols) + "_" + std::to_string(c.nTokens) + "tok" +
                                    (c.shuffledThreads ? "_shuffled" : "");
                         });

}  // namespace
}  // namespace pagoda::cuda

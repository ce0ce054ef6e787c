// The decode matrix-vector kernel (kernels/cuda/matvec_kernel.cuh) without a
// device: its own source, compiled as host C++ (matvec_kernel_host.cpp),
// runs on the CTA emulator for every weight type the CUDA backend reads,
// against a float64 product over the float64 reference decoder
// (tests/kernels/reference_blocks.h). Shapes cover a partial CTA of rows,
// rows shorter than one pass of the CTA's 128 lanes and longer than one,
// each token group (1, 4, 8) full and partial, several groups of 8, and
// launches of two and three matrices. Checked: every output within
// tolerance (NaN never passes), each written once, by the CTA of its
// matrix, rows and tokens, nothing around y touched; the weights end right
// below an inaccessible page; each token's result bit for bit the same as
// that token run alone through its matrix alone (the kernel's batch
// invariance, across tokens and across the matrices of one launch: q, k,
// v; gate, up); no divergent collective or barrier. Seeds are fresh every
// run.
//
// Int8 decode (matvec_q8_kernel.cuh: every block-quantized type): the
// activations rounded by the emulated quantizeActivationsKernel, each
// element within about d / 2 of its value; the int8 product against a float64 product
// with those rounded activations, within float rounding of its scale and
// min terms, and against the activations as they were within the
// rounding's bound; the same ownership and bit-for-bit checks.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
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
    std::vector<int64_t> rows;  // per matrix of the launch (1 to 3)
    int64_t cols;
    int64_t nTokens;
    bool shuffledThreads;
    bool int8 = false;  // matvecQ8Kernel over the activations rounded to int8
};

std::ostream& operator<<(std::ostream& os, const MatvecCase& c) {
    os << dtypeName(c.type);
    for (int64_t r : c.rows) os << " " << r;
    return os << " x " << c.cols << ", " << c.nTokens << " tokens" << (c.shuffledThreads ? ", shuffled threads" : "")
              << (c.int8 ? ", int8" : "");
}

std::string caseSuffix(const MatvecCase& c) {
    return std::string(c.shuffledThreads ? "_shuffled" : "") + (c.int8 ? "_int8" : "");
}

// x [nTokens][cols] rounded to int8 by the emulated quantizeActivationsKernel.
struct RoundedActivations {
    std::vector<int8_t> q;
    std::vector<float> ds;       // [nTokens][cols / 32][2]
    std::vector<double> rounded;  // d * q per element
    // Token t's row onwards (t = 0: all of them), as the kernels take it.
    emulation::Int8Input from(int64_t t, int64_t cols) const {
        return {q.data() + t * cols, ds.data() + t * cols / 32 * 2};
    }
};

// How far an activation rounded to int8 may be from its value, in units
// of its block's d: half, plus x / d's own f32 rounding (|x / d| <= 127:
// 127 * 2^-23), which can tip a value near k + 1/2 to the other side.
constexpr double kRoundingShare = 0.5 + 127.0 / (1 << 23);

// Runs the quantizer on the emulator and checks each block of 32: d = max
// |x| / 127 as f32 divides it, every q in [-127, 127] and x within
// kRoundingShare * d of d * q, ds[1] = d * (sum of q) rounded once.
RoundedActivations quantizeChecked(const std::vector<float>& x, int64_t nTokens, int64_t cols, uint64_t seed) {
    RoundedActivations a;
    a.q.assign(size_t(nTokens * cols), int8_t(0x5a));  // new's 16-byte alignment
    a.ds.assign(size_t(nTokens * cols / 32 * 2), std::bit_cast<float>(kUnwritten));
    emulation::LaunchConfig config;
    config.shuffleThreads = true;
    config.seed = seed;
    const emulation::Findings findings =
        emulation::runQuantizeActivationsKernel(x.data(), nTokens, cols, a.q.data(), a.ds.data(), config);
    emulation::expectNoFindings(findings, "quantizeActivationsKernel");
    a.rounded.resize(x.size());
    for (int64_t b = 0; b < nTokens * cols / 32; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(32 * b + i)]));
        const float d = a.ds[size_t(2 * b)];
        EXPECT_EQ(std::bit_cast<uint32_t>(d), std::bit_cast<uint32_t>(amax / 127.0f)) << "block " << b;
        int sum = 0;
        for (int i = 0; i < 32; ++i) {
            const size_t e = size_t(32 * b + i);
            const int q = a.q[e];
            sum += q;
            a.rounded[e] = double(d) * q;
            EXPECT_LE(std::abs(q), 127) << "element " << e;
            EXPECT_LE(std::fabs(a.rounded[e] - double(x[e])), double(d) * kRoundingShare) << "element " << e;
        }
        EXPECT_EQ(std::bit_cast<uint32_t>(a.ds[size_t(2 * b + 1)]), std::bit_cast<uint32_t>(d * float(sum)))
            << "block " << b;
    }
    return a;
}

// Each element of an int8-kernel row as the kernel splits its product:
// w x = a x - b x, b the part taken from the activation block's sum (Q4_0
// 8 d, Q5_0 16 d, Q4_1 and Q5_1 -m, Q2_K, Q4_K and Q5_K dmin * m; Q8_0,
// Q3_K and Q6_K none: their offsets stay inside the integer sums) and
// a = w + b the part the integer dot product carries.
void int8Parts(DType type, const uint8_t* row, int64_t cols, std::vector<double>& a, std::vector<double>& b) {
    const size_t blockBytes = dtypeInfo(type).blockBytes;
    const int64_t blockElements = dtypeInfo(type).blockElements;
    auto half = [&](int64_t e, size_t offset) {
        uint16_t bits;
        std::memcpy(&bits, row + size_t(e / blockElements) * blockBytes + offset, sizeof bits);
        return double(halfToFloat(bits));
    };
    auto byte = [&](int64_t e, size_t offset) { return row[size_t(e / blockElements) * blockBytes + offset]; };
    b.assign(size_t(cols), 0.0);
    for (int64_t e = 0; e < cols; ++e) {
        switch (type) {
        case DType::Q4_0: b[size_t(e)] = 8.0 * half(e, 0); break;
        case DType::Q5_0: b[size_t(e)] = 16.0 * half(e, 0); break;
        case DType::Q4_1:
        case DType::Q5_1: b[size_t(e)] = -half(e, 2); break;
        case DType::Q2_K:
            b[size_t(e)] = half(e, offsetof(BlockQ2_K, dmin)) *
                           (byte(e, offsetof(BlockQ2_K, scales) + size_t(e % kQK_K / 16)) >> 4);
            break;
        case DType::Q4_K:
        case DType::Q5_K: {
            uint32_t words[3];
            std::memcpy(words, row + size_t(e / kQK_K) * blockBytes + offsetof(BlockQ4_K, scales), sizeof words);
            int scale;
            int min;
            detail::kScaleMin(words, int(e % kQK_K / 32), scale, min);
            b[size_t(e)] = half(e, offsetof(BlockQ4_K, dmin)) * min;
            break;
        }
        default: ASSERT_TRUE(type == DType::Q8_0 || type == DType::Q3_K || type == DType::Q6_K) << dtypeName(type);
        }
    }
    const std::vector<test::RefElement> ref = test::refDecode(type, row, cols);
    a.resize(size_t(cols));
    for (int64_t e = 0; e < cols; ++e) a[size_t(e)] = ref[size_t(e)].value + b[size_t(e)];
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

// A case's activations: x and, for an int8 case, x rounded by the
// emulated quantizer.
struct CaseActivations {
    std::vector<float> x;
    RoundedActivations x8;
    emulation::Int8Input all;
    // The kernels' int8 input: null for a float case.
    const emulation::Int8Input* int8() const { return x8.q.empty() ? nullptr : &all; }
};

CaseActivations caseActivations(const MatvecCase& c, std::mt19937_64& rng, uint64_t seed) {
    CaseActivations a;
    a.x = randomFloats(rng, size_t(c.nTokens * c.cols), 2.0f);
    if (c.int8) {
        a.x8 = quantizeChecked(a.x, c.nTokens, c.cols, seed);
        a.all = a.x8.from(0, c.cols);
    }
    return a;
}

// Runs one launch over the matrices w (rows[i] each) and checks what it
// wrote: each y[i] with a guard row of kUnwritten on each side, every
// element written once, by the CTA of its matrix, rows and tokens, nothing
// else. Returns each matrix's [nTokens][rows[i]] output.
std::vector<std::vector<float>> runChecked(DType type, const std::vector<const uint8_t*>& w,
                                           const std::vector<int64_t>& rows, int64_t cols, const float* x,
                                           const emulation::Int8Input* x8, int64_t nTokens, bool shuffledThreads,
                                           uint64_t seed) {
    const int count = int(rows.size());
    std::vector<std::vector<float>> y(static_cast<size_t>(count));
    std::vector<float*> yProper;
    for (int m = 0; m < count; ++m) {
        y[size_t(m)].assign(size_t((nTokens + 2) * rows[size_t(m)]), std::bit_cast<float>(kUnwritten));
        yProper.push_back(y[size_t(m)].data() + rows[size_t(m)]);
    }
    std::vector<std::vector<float>> before;
    std::vector<std::vector<int>> writes(static_cast<size_t>(count));
    for (int m = 0; m < count; ++m) writes[size_t(m)].assign(y[size_t(m)].size(), 0);
    std::vector<std::string> problems;
    const int tokensPerCta = emulation::matvecTokenGroup(nTokens);
    emulation::LaunchConfig config;
    config.shuffleThreads = shuffledThreads;
    config.seed = seed;
    config.beforeCta = [&](Index3) { before = y; };
    config.afterCta = [&](Index3 block) {
        for (int m = 0; m < count; ++m) {
            const long n = long(rows[size_t(m)]);
            const long first = long(emulation::matvecFirstCta(rows.data(), m));
            for (size_t i = 0; i < y[size_t(m)].size(); ++i) {
                if (std::bit_cast<uint32_t>(y[size_t(m)][i]) == std::bit_cast<uint32_t>(before[size_t(m)][i])) continue;
                ++writes[size_t(m)][i];
                const long at = long(i) - n;
                const long token = at < 0 ? -1 : at / n;
                const long row = at < 0 ? -1 : at % n;
                const bool owned = at >= 0 && token < nTokens && first + row / kCtaRows == long(block.x) &&
                                   token / tokensPerCta == long(block.y);
                if (!owned) {
                    emulation::report(problems, emulation::ctaName(block) + " wrote float " + std::to_string(at) +
                                                    " of matrix " + std::to_string(m) + "'s y");
                }
            }
        }
    };
    const emulation::Findings findings =
        emulation::runMatvecKernel(type, w.data(), rows.data(), yProper.data(), count, cols, x, x8, nTokens, config);
    emulation::expectNoFindings(findings, "matvecKernel");
    EXPECT_TRUE(problems.empty()) << emulation::joined(problems);
    std::vector<std::vector<float>> out;
    for (int m = 0; m < count; ++m) {
        const size_t n = size_t(rows[size_t(m)]);
        for (size_t i = 0; i < y[size_t(m)].size(); ++i) {
            const bool proper = i >= n && i < n + size_t(nTokens) * n;
            EXPECT_EQ(writes[size_t(m)][i], proper ? 1 : 0) << "matrix " << m << ", y float " << long(i) - long(n);
        }
        out.emplace_back(yProper[size_t(m)], yProper[size_t(m)] + size_t(nTokens) * n);
    }
    return out;
}

class MatvecEmulation : public testing::TestWithParam<MatvecCase> {};

TEST_P(MatvecEmulation, MatchesTheFloat64ProductAndWritesEachOutputOnce) {
    const MatvecCase c = GetParam();
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    emulation::explainSegfaults();

    const size_t stride = rowBytes(c.type, size_t(c.cols));
    std::vector<std::unique_ptr<GuardedWeights>> weights;
    std::vector<const uint8_t*> w;
    for (int64_t rows : c.rows) {
        weights.push_back(std::make_unique<GuardedWeights>(c.type, rows, c.cols));
        for (int64_t r = 0; r < rows; ++r) {
            const std::vector<float> row = randomFloats(rng, size_t(c.cols), 1.0f);
            cpu::quantizeRow(c.type, row.data(), weights.back()->data() + size_t(r) * stride, c.cols);
        }
        w.push_back(weights.back()->data());
    }
    const CaseActivations activations = caseActivations(c, rng, seed);
    const std::vector<float>& x = activations.x;
    const RoundedActivations& x8 = activations.x8;

    const std::vector<std::vector<float>> y =
        runChecked(c.type, w, c.rows, c.cols, x.data(), activations.int8(), c.nTokens, c.shuffledThreads, seed);
    double maxError = 0.0;
    for (size_t m = 0; m < c.rows.size(); ++m) {
        const int64_t rows = c.rows[m];
        for (int64_t r = 0; r < rows; ++r) {
            const std::vector<test::RefElement> ref = test::refDecode(c.type, w[m] + size_t(r) * stride, c.cols);
            std::vector<double> scalePart;
            std::vector<double> minPart;
            if (c.int8) int8Parts(c.type, w[m] + size_t(r) * stride, c.cols, scalePart, minPart);
            for (int64_t t = 0; t < c.nTokens; ++t) {
                const std::string where =
                    "matrix " + std::to_string(m) + ", row " + std::to_string(r) + ", token " + std::to_string(t);
                const float got = y[m][size_t(t * rows + r)];
                ASSERT_TRUE(std::isfinite(got)) << where;
                double want = 0.0;
                double bound = 0.0;
                for (int64_t k = 0; k < c.cols; ++k) {
                    const double term = ref[size_t(k)].value * double(x[size_t(t * c.cols + k)]);
                    want += term;
                    bound += std::fabs(term);
                }
                if (!c.int8) {
                    ASSERT_NEAR(double(got), want, kTolerance * bound) << where;
                    maxError = std::max(maxError, std::fabs(double(got) - want) / bound);
                    continue;
                }
                // Against the rounded activations: float rounding of the
                // scale terms (d sc dx times the exact integer dot) and of
                // the min terms (dmin m times dx * sum of a block's q).
                double wantRounded = 0.0;
                double rounding = 0.0;
                double quantization = 0.0;
                for (int64_t j = 0; j < c.cols / 32; ++j) {
                    double minTerm = 0.0;
                    double absWeights = 0.0;
                    for (int64_t i = 32 * j; i < 32 * j + 32; ++i) {
                        const double xr = x8.rounded[size_t(t * c.cols + i)];
                        wantRounded += ref[size_t(i)].value * xr;
                        rounding += std::fabs(scalePart[size_t(i)] * xr);
                        minTerm += minPart[size_t(i)] * xr;
                        absWeights += std::fabs(ref[size_t(i)].value);
                    }
                    rounding += std::fabs(minTerm);
                    quantization += double(x8.ds[size_t(2 * (t * c.cols / 32 + j))]) * kRoundingShare * absWeights;
                }
                ASSERT_NEAR(double(got), wantRounded, kTolerance * rounding) << where << ", rounded activations";
                ASSERT_NEAR(double(got), want, quantization + kTolerance * rounding) << where;
                maxError = std::max(maxError, std::fabs(double(got) - wantRounded) / rounding);
            }
        }
    }
    std::ostringstream largest;
    largest << maxError;
    RecordProperty("max_error_over_sum_abs", largest.str());

    if (c.nTokens == 1 && c.rows.size() == 1) return;
    // Each matrix and token alone: the same bits.
    for (size_t m = 0; m < c.rows.size(); ++m) {
        for (int64_t t = 0; t < c.nTokens; ++t) {
            const emulation::Int8Input token = x8.from(t, c.cols);
            const std::vector<float> single = runChecked(c.type, {w[m]}, {c.rows[m]}, c.cols, x.data() + t * c.cols,
                                                         c.int8 ? &token : nullptr, 1, false, seed)
                                                  .front();
            for (int64_t r = 0; r < c.rows[m]; ++r) {
                const float batched = y[m][size_t(t * c.rows[m] + r)];
                ASSERT_EQ(std::bit_cast<uint32_t>(single[size_t(r)]), std::bit_cast<uint32_t>(batched))
                    << "matrix " << m << " of " << c.rows.size() << ", token " << t << " of " << c.nTokens << ", row "
                    << r << ": alone " << single[size_t(r)] << ", in the launch " << batched;
            }
        }
    }
}

// The gate and up products with their SwiGLU in one launch: every output
// written once, by the CTA of its rows and tokens, nothing around it; each
// bit for bit silu(gate) * up of the two products as matvecs computes them
// (the emulated plain kernel) and swigluValue after them, which is what the
// unfused decode step computes.
class MatvecSwigluEmulation : public testing::TestWithParam<MatvecCase> {};

TEST_P(MatvecSwigluEmulation, EqualsTheTwoProductsAndTheSwigluAfterThem) {
    const MatvecCase c = GetParam();
    const int64_t rows = c.rows.front();
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    emulation::explainSegfaults();

    const size_t stride = rowBytes(c.type, size_t(c.cols));
    GuardedWeights gate(c.type, rows, c.cols);
    GuardedWeights up(c.type, rows, c.cols);
    for (uint8_t* w : {gate.data(), up.data()}) {
        for (int64_t r = 0; r < rows; ++r) {
            const std::vector<float> row = randomFloats(rng, size_t(c.cols), 1.0f);
            cpu::quantizeRow(c.type, row.data(), w + size_t(r) * stride, c.cols);
        }
    }
    const CaseActivations activations = caseActivations(c, rng, seed);
    const std::vector<float>& x = activations.x;
    const std::vector<std::vector<float>> unfused = runChecked(c.type, {gate.data(), up.data()}, {rows, rows}, c.cols,
                                                               x.data(), activations.int8(), c.nTokens, false, seed);

    // out with a guard row of kUnwritten on each side.
    std::vector<float> out(size_t((c.nTokens + 2) * rows), std::bit_cast<float>(kUnwritten));
    std::vector<float> before;
    std::vector<int> writes(out.size(), 0);
    std::vector<std::string> problems;
    const int tokensPerCta = emulation::matvecTokenGroup(c.nTokens);
    emulation::LaunchConfig config;
    config.shuffleThreads = c.shuffledThreads;
    config.seed = seed;
    config.beforeCta = [&](Index3) { before = out; };
    config.afterCta = [&](Index3 block) {
        for (size_t i = 0; i < out.size(); ++i) {
            if (std::bit_cast<uint32_t>(out[i]) == std::bit_cast<uint32_t>(before[i])) continue;
            ++writes[i];
            const long at = long(i) - long(rows);
            const long token = at < 0 ? -1 : at / rows;
            const long row = at < 0 ? -1 : at % rows;
            // A CTA takes kCtaRows / 2 rows of gate and of up.
            if (at < 0 || token >= c.nTokens || row / (kCtaRows / 2) != long(block.x) ||
                token / tokensPerCta != long(block.y)) {
                emulation::report(problems,
                                  emulation::ctaName(block) + " wrote float " + std::to_string(at) + " of out");
            }
        }
    };
    const emulation::Findings findings = emulation::runMatvecSwigluKernel(
        c.type, gate.data(), up.data(), rows, out.data() + rows, c.cols, x.data(), activations.int8(), c.nTokens, config);
    emulation::expectNoFindings(findings, "matvecKernel<Swiglu>");
    EXPECT_TRUE(problems.empty()) << emulation::joined(problems);
    for (size_t i = 0; i < out.size(); ++i) {
        const bool proper = i >= size_t(rows) && i < size_t((c.nTokens + 1) * rows);
        ASSERT_EQ(writes[i], proper ? 1 : 0) << "out float " << long(i) - long(rows);
    }
    for (int64_t t = 0; t < c.nTokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            const size_t at = size_t(t * rows + r);
            const float want = emulation::swigluOnHost(unfused[0][at], unfused[1][at]);
            const float got = out[size_t(rows) + at];
            ASSERT_TRUE(std::isfinite(got)) << "row " << r << ", token " << t;
            ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                << "row " << r << ", token " << t << ": fused " << got << ", unfused " << want;
        }
    }
}

std::vector<MatvecCase> swigluCases() {
    std::vector<MatvecCase> out;
    for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q5_1, DType::Q3_K,
                       DType::Q4_K, DType::Q6_K}) {
        const int64_t block = std::max<int64_t>(8, dtypeInfo(type).blockElements);
        const int64_t longRow = (kCtaLanes * 8 / block + 2) * block;
        // An odd row count (the last CTA takes one row of each), each token
        // group, several groups of 8.
        out.push_back({type, {7}, longRow, 1, true});
        out.push_back({type, {4}, block, 4, false});
        out.push_back({type, {5}, longRow, 13, true});
        out.push_back({type, {2}, block, 32, false});
        if (emulation::hasInt8Matvec(type)) {
            out.push_back({type, {7}, longRow, 1, true, true});
            out.push_back({type, {5}, longRow, 13, false, true});
        }
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, MatvecSwigluEmulation, testing::ValuesIn(swigluCases()),
                         [](const testing::TestParamInfo<MatvecCase>& info) {
                             const MatvecCase& c = info.param;
                             return std::string(dtypeName(c.type)) + "_" + std::to_string(c.rows.front()) + "x" +
                                    std::to_string(c.cols) + "_" + std::to_string(c.nTokens) + "tok" +
                                    caseSuffix(c);
                         });

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
        out.push_back({type, {9}, shortRow, 1, false});
        out.push_back({type, {9}, longRow, 1, true});
        out.push_back({type, {4}, longRow, 3, false});
        out.push_back({type, {5}, shortRow, 4, true});
        out.push_back({type, {6}, longRow, 8, false});
        out.push_back({type, {3}, shortRow, 5, false});
        out.push_back({type, {5}, longRow, 13, false});  // two groups of 8, the second partial
        out.push_back({type, {2}, shortRow, 32, true});  // four groups
        // q, k and v in one launch (k and v shorter, as with GQA); gate and up.
        out.push_back({type, {9, 3, 5}, longRow, 1, true});
        out.push_back({type, {4, 7}, shortRow, 5, false});
        if (emulation::hasInt8Matvec(type)) {
            // The int8 kernel: a lane takes 32 elements, so the long row is
            // longer than one pass of the lanes too.
            const int64_t int8Row = (kCtaLanes * 32 / block + 2) * block;
            out.push_back({type, {9}, shortRow, 1, false, true});
            out.push_back({type, {9}, int8Row, 1, true, true});
            out.push_back({type, {4}, int8Row, 3, false, true});
            out.push_back({type, {6}, shortRow, 8, true, true});
            out.push_back({type, {5}, int8Row, 13, false, true});
            out.push_back({type, {2}, shortRow, 32, true, true});
            out.push_back({type, {9, 3, 5}, int8Row, 1, true, true});
            out.push_back({type, {4, 7}, shortRow, 5, false, true});
        }
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, MatvecEmulation, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<MatvecCase>& info) {
                             const MatvecCase& c = info.param;
                             std::string name = std::string(dtypeName(c.type));
                             for (int64_t r : c.rows) name.append(1, '_').append(std::to_string(r));
                             return name + "x" + std::to_string(c.cols) + "_" + std::to_string(c.nTokens) + "tok" +
                                    caseSuffix(c);
                         });

}  // namespace
}  // namespace pagoda::cuda

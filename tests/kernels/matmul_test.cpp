// matmul and dequantizeRow against a float64 reference. Weights are random
// encodings built here byte by byte from the GGUF format description and
// decoded here with scalar code; nothing in the reference calls the kernels.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/matmul.h"

namespace pagoda {

// Readable test parameters in gtest's messages.
void PrintTo(DType type, std::ostream* os) { *os << dtypeName(type); }

namespace cpu {

void PrintTo(SimdLevel level, std::ostream* os) { *os << simdLevelName(level); }

namespace {

using test::refBf16ToDouble;
using test::refHalfToDouble;

// A weight matrix in its encoded form plus the exact value of every element.
struct TestWeights {
    std::vector<uint8_t> bytes;  // [rows][rowBytes(type, cols)]
    std::vector<double> values;  // [rows][cols]
};

// Random fp16 with the given exponent range (0 = subnormal) and sign.
uint16_t randomHalf(std::mt19937_64& rng, int minExponent, int maxExponent) {
    std::uniform_int_distribution<int> exponent(minExponent, maxExponent);
    return uint16_t((rng() & 1) << 15 | exponent(rng) << 10 | (rng() & 0x3ff));
}

TestWeights randomWeights(DType type, int64_t rows, int64_t cols, std::mt19937_64& rng) {
    TestWeights w;
    w.bytes.resize(size_t(rows) * rowBytes(type, size_t(cols)));
    w.values.resize(size_t(rows * cols));
    uint8_t* out = w.bytes.data();
    const auto put16 = [&out](uint16_t v) {
        std::memcpy(out, &v, 2);
        out += 2;
    };
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int64_t i = 0; i < rows * cols;) {
        switch (type) {
        case DType::F32: {
            const float v = uniform(rng);
            std::memcpy(out, &v, 4);
            out += 4;
            w.values[size_t(i++)] = v;
            break;
        }
        case DType::F16: {  // includes subnormals
            const uint16_t h = randomHalf(rng, 0, 16);
            put16(h);
            w.values[size_t(i++)] = refHalfToDouble(h);
            break;
        }
        case DType::BF16: {
            std::uniform_int_distribution<int> exponent(100, 130);
            const uint16_t b = uint16_t((rng() & 1) << 15 | exponent(rng) << 7 | (rng() & 0x7f));
            put16(b);
            w.values[size_t(i++)] = refBf16ToDouble(b);
            break;
        }
        case DType::Q8_0: {  // 34 bytes: fp16 d, then 32 int8 q; value = d * q
            const uint16_t d = randomHalf(rng, 5, 14);
            put16(d);
            for (int j = 0; j < 32; ++j) {
                const auto q = int8_t(byte(rng));
                *out++ = uint8_t(q);
                w.values[size_t(i + j)] = refHalfToDouble(d) * q;
            }
            i += 32;
            break;
        }
        case DType::Q4_0: {  // 18 bytes: fp16 d, then 16 bytes; element j low nibble, j+16 high
            const uint16_t d = randomHalf(rng, 5, 14);
            put16(d);
            for (int j = 0; j < 16; ++j) {
                const auto q = uint8_t(byte(rng));
                *out++ = q;
                w.values[size_t(i + j)] = refHalfToDouble(d) * ((q & 0xf) - 8);
                w.values[size_t(i + j + 16)] = refHalfToDouble(d) * ((q >> 4) - 8);
            }
            i += 32;
            break;
        }
        default:
            ADD_FAILURE() << "no test encoder for " << dtypeName(type);
            return w;
        }
    }
    return w;
}

std::vector<float> randomActivations(int64_t n, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = uniform(rng);
    return x;
}

// Every kernel reduces one output through at most cols/8 + 16 chained f32
// roundings (AVX2 prefill: 8 lanes per FMA chain, plus horizontal sums and
// panel sums; decode chains are half as long), so with u = 2^-24
// |y - exact| <= (cols/8 + 16) * u * sum_c |w_c x_c|. Conversions from
// F16/BF16/Q8_0/Q4_0 to f32 are exact.
double tolerance(int64_t cols) { return (double(cols) / 8.0 + 16.0) * 0x1p-24; }

struct Reference {
    std::vector<double> y;       // [nTokens][rows]
    std::vector<double> absSum;  // [nTokens][rows]: sum_c |w_c x_c|
};

Reference reference(const TestWeights& w, const std::vector<float>& x, int64_t rows, int64_t cols,
                    int64_t nTokens) {
    Reference ref{std::vector<double>(size_t(rows * nTokens)), std::vector<double>(size_t(rows * nTokens))};
    for (int64_t t = 0; t < nTokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            double sum = 0.0;
            double absSum = 0.0;
            for (int64_t c = 0; c < cols; ++c) {
                const double p = w.values[size_t(r * cols + c)] * double(x[size_t(t * cols + c)]);
                sum += p;
                absSum += std::fabs(p);
            }
            ref.y[size_t(t * rows + r)] = sum;
            ref.absSum[size_t(t * rows + r)] = absSum;
        }
    }
    return ref;
}

std::string configName(int64_t rows, int64_t cols, int64_t nTokens, int nThreads) {
    return "rows " + std::to_string(rows) + ", cols " + std::to_string(cols) + ", nTokens " +
           std::to_string(nTokens) + ", threads " + std::to_string(nThreads);
}

// Runs matmul into a NaN-poisoned y and checks every element; reports the
// first bad element of a configuration only.
void checkMatmul(const CpuContext& ctx, DType type, const TestWeights& w, const std::vector<float>& x,
                 const Reference& ref, int64_t rows, int64_t cols, int64_t nTokens) {
    std::vector<float> y(size_t(rows * nTokens), std::numeric_limits<float>::quiet_NaN());
    matmul(ctx, WeightMatrix{type, w.bytes.data(), rows, cols}, x.data(), y.data(), nTokens);
    const double tol = tolerance(cols);
    for (size_t i = 0; i < y.size(); ++i) {
        const double error = std::fabs(double(y[i]) - ref.y[i]);
        if (!(error <= tol * ref.absSum[i])) {  // NaN fails
            ADD_FAILURE() << configName(rows, cols, nTokens, ctx.pool->size()) << ": y[token " << i / size_t(rows)
                          << "][row " << i % size_t(rows) << "] = " << y[i] << ", reference " << ref.y[i]
                          << ", error " << error << " > bound " << tol * ref.absSum[i];
            return;
        }
    }
}

std::vector<int64_t> colsToTest(DType type) {
    std::vector<int64_t> cols = {32, 96, 4096 + 32};
    if (dtypeInfo(type).blockElements == 1) cols.insert(cols.end(), {1, 3, 17});
    return cols;
}

using MatmulParam = std::tuple<DType, SimdLevel>;

class MatmulTest : public ::testing::TestWithParam<MatmulParam> {
protected:
    void SetUp() override {
        if (simd() == SimdLevel::Avx512 && detectSimdLevel() != SimdLevel::Avx512) {
            GTEST_SKIP() << "AVX-512 F/BW/VL/DQ not available (CPU lacks it, or PAGODA_SIMD=avx2)";
        }
    }
    DType type() const { return std::get<0>(GetParam()); }
    SimdLevel simd() const { return std::get<1>(GetParam()); }

    std::array<std::unique_ptr<ThreadPool>, 3> m_pools = {
        std::make_unique<ThreadPool>(1), std::make_unique<ThreadPool>(2), std::make_unique<ThreadPool>(3)};
};

TEST_P(MatmulTest, MatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (const int64_t cols : colsToTest(type())) {
        for (const int64_t rows : {1, 7, 33, 130}) {
            const TestWeights w = randomWeights(type(), rows, cols, rng);
            for (const int64_t nTokens : {1, 2, 5, 17}) {
                const std::vector<float> x = randomActivations(nTokens * cols, rng);
                const Reference ref = reference(w, x, rows, cols, nTokens);
                for (const auto& pool : m_pools) {
                    checkMatmul(CpuContext{pool.get(), simd()}, type(), w, x, ref, rows, cols, nTokens);
                }
            }
        }
    }
}

// Crosses the prefill kernel's token (64) and column (1024) panel edges.
TEST_P(MatmulTest, LargeBatchMatchesFloat64Reference) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int64_t kRows = 29;
    constexpr int64_t kCols = 2048 + 96;
    constexpr int64_t kTokens = 70;
    const TestWeights w = randomWeights(type(), kRows, kCols, rng);
    const std::vector<float> x = randomActivations(kTokens * kCols, rng);
    const Reference ref = reference(w, x, kRows, kCols, kTokens);
    checkMatmul(CpuContext{m_pools[1].get(), simd()}, type(), w, x, ref, kRows, kCols, kTokens);
}

std::string matmulParamName(const ::testing::TestParamInfo<MatmulParam>& info) {
    return std::string(dtypeName(std::get<0>(info.param))) + "_" +
           std::string(simdLevelName(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTest,
                         ::testing::Combine(::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                                              DType::Q4_0),
                                            ::testing::Values(SimdLevel::Avx2, SimdLevel::Avx512)),
                         matmulParamName);

class DequantizeRowTest : public ::testing::TestWithParam<DType> {};

// Every supported encoding converts to f32 exactly.
TEST_P(DequantizeRowTest, IsExact) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const DType type = GetParam();
    for (const int64_t cols : colsToTest(type)) {
        constexpr int64_t kRows = 5;
        const TestWeights w = randomWeights(type, kRows, cols, rng);
        std::vector<float> out(static_cast<size_t>(cols));
        for (int64_t row = 0; row < kRows; ++row) {
            std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
            dequantizeRow(WeightMatrix{type, w.bytes.data(), kRows, cols}, row, out.data());
            for (int64_t c = 0; c < cols; ++c) {
                ASSERT_EQ(double(out[size_t(c)]), w.values[size_t(row * cols + c)])
                    << "cols " << cols << ", row " << row << ", col " << c;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DequantizeRowTest,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtypeName(info.param)); });

}  // namespace
}  // namespace cpu
}  // namespace pagoda

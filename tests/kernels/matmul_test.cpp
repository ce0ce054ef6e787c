// matmul and dequantizeRow against a float64 reference. Weights are random
// encodings built here byte by byte from the GGUF format description and
// decoded by the tests' own scalar decoder (reference_blocks.h); nothing in
// the reference calls the kernels.

#include <gtest/gtest.h>

#include <algorithm>
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
#include "kernels/half.h"
#include "reference_blocks.h"

namespace pagoda {

// Readable test parameters in gtest's messages.
void PrintTo(DType type, std::ostream* os) { *os << dtypeName(type); }

namespace cpu {

void PrintTo(SimdLevel level, std::ostream* os) { *os << simdLevelName(level); }

namespace {

using test::RefElement;

// A weight matrix in its encoded form plus every element as the format
// defines it.
struct TestWeights {
    std::vector<uint8_t> bytes;        // [rows][rowBytes(type, cols)]
    std::vector<RefElement> elements;  // [rows][cols]
};

// Types whose values scale * q + offset need not fit in f32: the kernels
// round them (or add the two terms separately).
bool hasOffset(DType type) {
    return type == DType::Q4_1 || type == DType::Q5_1 || type == DType::Q2_K || type == DType::Q4_K ||
           type == DType::Q5_K;
}

// Random fp16 with the given exponent range (0 = subnormal) and sign.
uint16_t randomHalf(std::mt19937_64& rng, int minExponent, int maxExponent) {
    std::uniform_int_distribution<int> exponent(minExponent, maxExponent);
    return uint16_t((rng() & 1) << 15 | exponent(rng) << 10 | (rng() & 0x3ff));
}

// How a row's fp16 scale and offset fields are drawn: ordinary values, or
// one of the extremes (largest finite, subnormal, signed zero).
enum class HalfKind { Normal, Max, Subnormal, Zero };

uint16_t halfOfKind(HalfKind kind, std::mt19937_64& rng) {
    const auto sign = uint16_t((rng() & 1) << 15);
    switch (kind) {
    case HalfKind::Normal: return randomHalf(rng, 5, 14);
    case HalfKind::Max: return uint16_t(sign | 0x7bff);
    case HalfKind::Subnormal: return randomHalf(rng, 0, 0);
    case HalfKind::Zero: return sign;
    }
    return 0;
}

// A row's K-quant sub-block scales: random, all 0, or all largest (6-bit
// 63; Q2_K's 4-bit 15; Q3_K's -32 and 31, Q6_K's int8 -128 and 127).
enum class ScalesKind { Random, Zero, Max };

struct RowKinds {
    HalfKind scale;
    HalfKind offset;
    ScalesKind subScales;
};

// Every combination appears within the first 48 rows; row 0 is ordinary.
RowKinds rowKinds(int64_t row) {
    return {HalfKind(row % 4), HalfKind(row / 4 % 4), ScalesKind(row / 16 % 3)};
}

// One block of `type`: random bytes, then the scale fields set as `kinds`
// says (byte offsets from the block layouts in kernels/dtype.h).
void randomBlock(DType type, const RowKinds& kinds, std::mt19937_64& rng, uint8_t* block) {
    const DTypeInfo info = dtypeInfo(type);
    for (uint32_t i = 0; i < info.blockBytes; ++i) block[i] = uint8_t(rng());
    const auto put16 = [](uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); };
    switch (type) {
    case DType::F32: {
        const float v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
        std::memcpy(block, &v, 4);
        break;
    }
    case DType::F16: put16(block, randomHalf(rng, 0, 16)); break;  // includes subnormals
    case DType::BF16: {
        std::uniform_int_distribution<int> exponent(100, 130);
        put16(block, uint16_t((rng() & 1) << 15 | exponent(rng) << 7 | (rng() & 0x7f)));
        break;
    }
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0: put16(block, halfOfKind(kinds.scale, rng)); break;
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
        put16(block, halfOfKind(kinds.scale, rng));
        put16(block + 2, halfOfKind(kinds.offset, rng));
        if (type == DType::Q4_K || type == DType::Q5_K) {
            if (kinds.subScales == ScalesKind::Zero) std::fill_n(block + 4, 12, uint8_t(0));
            if (kinds.subScales == ScalesKind::Max) std::fill_n(block + 4, 12, uint8_t(0xff));
        }
        break;
    case DType::Q2_K:
        put16(block + 80, halfOfKind(kinds.scale, rng));
        put16(block + 82, halfOfKind(kinds.offset, rng));
        if (kinds.subScales == ScalesKind::Zero) std::fill_n(block, 16, uint8_t(0));
        if (kinds.subScales == ScalesKind::Max) std::fill_n(block, 16, uint8_t(0xff));
        break;
    case DType::Q3_K:
        put16(block + 108, halfOfKind(kinds.scale, rng));
        if (kinds.subScales != ScalesKind::Random) {
            // Stored 6-bit scales (value - 32): 32 for zero; 0 and 63 alternating for the largest.
            uint8_t* scales = block + 96;
            std::fill_n(scales, 12, uint8_t(0));
            for (int j = 0; j < 16; ++j) {
                const int sc = kinds.subScales == ScalesKind::Zero ? 32 : j % 2 == 0 ? 0 : 63;
                scales[j % 8] |= uint8_t((sc & 0xf) << (j < 8 ? 0 : 4));
                scales[8 + j % 4] |= uint8_t((sc >> 4) << (2 * (j / 4)));
            }
        }
        break;
    case DType::Q6_K:
        put16(block + 208, halfOfKind(kinds.scale, rng));
        for (int j = 0; j < 16; ++j) {
            if (kinds.subScales == ScalesKind::Zero) block[192 + j] = 0;
            if (kinds.subScales == ScalesKind::Max) block[192 + j] = j % 2 == 0 ? 0x80 : 0x7f;
        }
        break;
    default: ADD_FAILURE() << "no test encoder for " << dtypeName(type); break;
    }
}

TestWeights randomWeights(DType type, int64_t rows, int64_t cols, std::mt19937_64& rng) {
    const DTypeInfo info = dtypeInfo(type);
    TestWeights w;
    w.bytes.resize(size_t(rows) * rowBytes(type, size_t(cols)));
    uint8_t* block = w.bytes.data();
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t b = 0; b < cols / info.blockElements; ++b, block += info.blockBytes) {
            randomBlock(type, rowKinds(r), rng, block);
        }
    }
    w.elements = test::refDecode(type, w.bytes.data(), rows * cols);
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
// panel sums; decode chains are shorter). Conversions of weights without an
// offset to f32 are exact; with an offset, a kernel either rounds each
// weight once (one more rounding) or adds scale * q and the offset terms
// separately (AVX2 decode), so the bound is against the size of the terms:
// with u = 2^-24, |y - exact| <= (cols/8 + 16 [+ 1]) * u * sum_c m_c |x_c|,
// m_c = |scale q| + |offset| of element c (= |w_c| without an offset).
double tolerance(DType type, int64_t cols) {
    return (double(cols) / 8.0 + 16.0 + (hasOffset(type) ? 1.0 : 0.0)) * 0x1p-24;
}

// Products with these weight types and CpuContext::int8Matmul quantize x (matmul.h): one scale
// d = max |x| / 127 per block of this many elements, x_c ~ d q_c with q_c =
// round(x_c / d) computed as x_c * fl(1 / d). That product is within
// 127 * 2u of x_c / d, so |x_c - d q_c| <= (1/2 + 2^-14) max|x| / 127
// (2^-14 also covers the rounding of d). Blocks of 32 then keep d rounded
// to f16 (relative error <= 2^-11, times |q_c| <= 127): delta_c adds
// 127 * 2^-11 max|x| / 127 there. 0: x stays f32.
int64_t activationBlock(DType type) {
    switch (type) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1: return 32;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: return 256;
    default: return 0;
    }
}

// The integer path computes exactly sum_c w_c d q_c per block, then
// scales and sums in f32 through chains no longer than the float kernels'.
// So |y - exact| <= tolerance * sum_c m_c (|x_c| + delta_c) + sum_c m_c delta_c.
struct Reference {
    std::vector<double> y;       // [nTokens][rows]
    std::vector<double> absSum;  // [nTokens][rows]: sum_c m_c |x_c|
    std::vector<double> xError;  // [nTokens][rows]: sum_c m_c delta_c (0 where x can't be quantized)
};

Reference reference(DType type, const TestWeights& w, const std::vector<float>& x, int64_t rows, int64_t cols,
                    int64_t nTokens) {
    const size_t n = size_t(rows * nTokens);
    Reference ref{std::vector<double>(n), std::vector<double>(n), std::vector<double>(n)};
    const int64_t block = activationBlock(type);
    std::vector<double> delta(size_t(cols), 0.0);  // [cols], this token's
    for (int64_t t = 0; t < nTokens; ++t) {
        const float* xt = x.data() + t * cols;
        for (int64_t b0 = 0; block != 0 && b0 < cols; b0 += block) {
            double amax = 0.0;
            for (int64_t c = b0; c < b0 + block; ++c) amax = std::max(amax, std::fabs(double(xt[c])));
            const double f16Scale = block == 32 ? 127.0 * 0x1p-11 : 0.0;
            std::fill_n(delta.begin() + b0, block, (0.5 + 0x1p-14 + f16Scale) * amax / 127.0);
        }
        for (int64_t r = 0; r < rows; ++r) {
            double sum = 0.0;
            double absSum = 0.0;
            double xError = 0.0;
            for (int64_t c = 0; c < cols; ++c) {
                const RefElement& e = w.elements[size_t(r * cols + c)];
                const double xc = double(xt[c]);
                sum += e.value * xc;
                absSum += e.magnitude * std::fabs(xc);
                xError += e.magnitude * delta[size_t(c)];
            }
            ref.y[size_t(t * rows + r)] = sum;
            ref.absSum[size_t(t * rows + r)] = absSum;
            ref.xError[size_t(t * rows + r)] = xError;
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
    const double tol = tolerance(type, cols);
    const bool quantized = ctx.int8Matmul && activationBlock(type) != 0;
    for (size_t i = 0; i < y.size(); ++i) {
        const double error = std::fabs(double(y[i]) - ref.y[i]);
        const double bound =
            quantized ? tol * (ref.absSum[i] + ref.xError[i]) + ref.xError[i] : tol * ref.absSum[i];
        if (!(error <= bound)) {  // NaN fails
            ADD_FAILURE() << configName(rows, cols, nTokens, ctx.pool->size())
                          << (quantized ? ", int8" : "") << ": y[token " << i / size_t(rows)
                          << "][row " << i % size_t(rows) << "] = " << y[i] << ", reference " << ref.y[i]
                          << ", error " << error << " > bound " << bound;
            return;
        }
    }
}

// One block, a few, and past the decode chunk; float types also get tails.
std::vector<int64_t> colsToTest(DType type) {
    const int64_t block = std::max<int64_t>(32, dtypeInfo(type).blockElements);
    std::vector<int64_t> cols = {block, 3 * block, 4096 + block};
    if (dtypeInfo(type).blockElements == 1) cols.insert(cols.end(), {1, 3, 17});
    return cols;
}

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                        DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Decode (1); the small-batch kernel (2 to 16 tokens: passes of every size
// from 2 up to AVX2's 6 and AVX-512's 8 tokens, one pass or several); the
// tiled prefill kernel (17).
constexpr int64_t kTokenCounts[] = {1, 2, 3, 4, 6, 7, 8, 9, 16, 17};

using MatmulParam = std::tuple<DType, SimdLevel>;

// CpuContext::vnni for the integer kernels a level reaches: at Avx2 AVX2's
// (false) and AVX-VNNI's (true, where the CPU has it); at Avx512 AVX-512
// VNNI's (false there would repeat AVX2's).
std::vector<bool> vnniChoices(SimdLevel simd) {
    return simd == SimdLevel::Avx2 ? std::vector<bool>{false, true} : std::vector<bool>{true};
}

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
        for (const int64_t rows : {1, 7, 33, 131}) {
            const TestWeights w = randomWeights(type(), rows, cols, rng);
            for (const int64_t nTokens : kTokenCounts) {
                const std::vector<float> x = randomActivations(nTokens * cols, rng);
                const Reference ref = reference(type(), w, x, rows, cols, nTokens);
                for (const auto& pool : m_pools) {
                    checkMatmul(CpuContext{pool.get(), simd(), false}, type(), w, x, ref, rows, cols, nTokens);
                    for (const bool vnni : vnniChoices(simd())) {
                        checkMatmul(CpuContext{pool.get(), simd(), true, vnni}, type(), w, x, ref, rows, cols,
                                    nTokens);
                    }
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
    const int64_t kCols = 2048 + 3 * std::max<int64_t>(32, dtypeInfo(type()).blockElements);
    constexpr int64_t kTokens = 70;
    const TestWeights w = randomWeights(type(), kRows, kCols, rng);
    const std::vector<float> x = randomActivations(kTokens * kCols, rng);
    const Reference ref = reference(type(), w, x, kRows, kCols, kTokens);
    checkMatmul(CpuContext{m_pools[1].get(), simd(), false}, type(), w, x, ref, kRows, kCols, kTokens);
    for (const bool vnni : vnniChoices(simd())) {
        checkMatmul(CpuContext{m_pools[1].get(), simd(), true, vnni}, type(), w, x, ref, kRows, kCols, kTokens);
    }
}

// The integer path computes the product with x rounded to int8 exactly, up
// to the f32 sums: x quantized here as the kernels document it (blocks of 32
// as llama.cpp's Q8_0: d = max |x| / 127, q = x * fl(1 / d) rounded to
// nearest even, d then rounded to f16; of 256 as its Q8_K: s = 127 / max |x|,
// q = x * s rounded, d = fl(1 / s)), the product taken in
// float64 with every weight as the format defines it, and the bound only
// the f32 sums' (tolerance above). The float64 reference test bounds the
// rounding of x instead, so it cannot tell one rounding of x from another.
class Int8MatmulTest : public MatmulTest {};

TEST_P(Int8MatmulTest, IsTheProductWithXRoundedAsDocumented) {
    const int64_t block = activationBlock(type());
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int64_t kRows = 33;
    constexpr int64_t kTokens = 7;  // a group of 4 tokens, then 3 alone
    const int64_t cols = 4 * std::max<int64_t>(block, dtypeInfo(type()).blockElements);
    const TestWeights w = randomWeights(type(), kRows, cols, rng);
    const std::vector<float> x = randomActivations(kTokens * cols, rng);
    std::vector<double> rounded(x.size());
    for (int64_t b0 = 0; b0 < kTokens * cols; b0 += block) {
        float amax = 0.0f;
        for (int64_t c = b0; c < b0 + block; ++c) amax = std::max(amax, std::fabs(x[size_t(c)]));
        float inverse = 0.0f;
        float scale = 0.0f;
        if (block == 32) {
            const float d = amax / 127.0f;
            inverse = d != 0.0f ? 1.0f / d : 0.0f;
            scale = halfToFloat(floatToHalf(d));
        } else if (amax != 0.0f) {
            inverse = 127.0f / amax;
            scale = 1.0f / inverse;
        }
        for (int64_t c = b0; c < b0 + block; ++c) {
            rounded[size_t(c)] = double(scale) * std::nearbyint(double(x[size_t(c)] * inverse));
        }
    }
    for (const bool vnni : vnniChoices(simd())) {
        SCOPED_TRACE(testing::Message() << "vnni " << vnni);
        std::vector<float> y(size_t(kTokens * kRows), std::numeric_limits<float>::quiet_NaN());
        matmul(CpuContext{m_pools[1].get(), simd(), true, vnni}, WeightMatrix{type(), w.bytes.data(), kRows, cols},
               x.data(), y.data(), kTokens);
        for (int64_t t = 0; t < kTokens; ++t) {
            for (int64_t r = 0; r < kRows; ++r) {
                double exact = 0.0;
                double size = 0.0;
                for (int64_t c = 0; c < cols; ++c) {
                    const RefElement& e = w.elements[size_t(r * cols + c)];
                    exact += e.value * rounded[size_t(t * cols + c)];
                    size += e.magnitude * std::fabs(rounded[size_t(t * cols + c)]);
                }
                const double got = double(y[size_t(t * kRows + r)]);
                EXPECT_LE(std::fabs(got - exact), tolerance(type(), cols) * size)
                    << "token " << t << ", row " << r << ": " << got << ", exact " << exact;
            }
        }
    }
}

// AVX-VNNI's multiply-adds give AVX2's integer sums, and the float
// operations around them are the same: the same bits, for every token
// count.
TEST_P(Int8MatmulTest, AvxVnniGivesTheBitsOfAvx2) {
    if (simd() != SimdLevel::Avx2) GTEST_SKIP() << "AVX-VNNI is the Avx2 level's";
    if (!detectAvxVnni()) GTEST_SKIP() << "the CPU has no AVX-VNNI";
    CpuContext avx2{m_pools[1].get(), simd(), true, false};
    CpuContext avxVnni{m_pools[1].get(), simd(), true, true};
    ASSERT_EQ(int8Kernel(avx2), Int8Kernel::Avx2);
    ASSERT_EQ(int8Kernel(avxVnni), Int8Kernel::AvxVnni);
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int64_t kRows = 37;
    const int64_t cols = 3 * std::max<int64_t>(32, dtypeInfo(type()).blockElements);
    const TestWeights w = randomWeights(type(), kRows, cols, rng);
    const WeightMatrix matrix{type(), w.bytes.data(), kRows, cols};
    for (const int64_t nTokens : {1, 5, 70}) {
        const std::vector<float> x = randomActivations(nTokens * cols, rng);
        std::vector<float> want(size_t(nTokens * kRows));
        std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
        matmul(avx2, matrix, x.data(), want.data(), nTokens);
        matmul(avxVnni, matrix, x.data(), got.data(), nTokens);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << nTokens << " tokens";
    }
}

// Each token's outputs are the same bits computed alone (decode) and with
// any number of others (continuous batching's steps, prefill chunks), on
// any number of threads: batch invariance holds exactly on the int8 path.
TEST_P(Int8MatmulTest, TokensAreTheSameBitsAloneAndInABatch) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int64_t kRows = 37;  // row groups of 4 and single rows
    const int64_t cols = 3 * std::max<int64_t>(32, dtypeInfo(type()).blockElements);
    const TestWeights w = randomWeights(type(), kRows, cols, rng);
    const WeightMatrix matrix{type(), w.bytes.data(), kRows, cols};
    constexpr int64_t kMaxTokens = 70;  // past a panel of 64 tokens
    const std::vector<float> x = randomActivations(kMaxTokens * cols, rng);
    for (const bool vnni : vnniChoices(simd())) {
        std::vector<float> alone(size_t(kMaxTokens * kRows));
        for (int64_t t = 0; t < kMaxTokens; ++t) {
            matmul(CpuContext{m_pools[0].get(), simd(), true, vnni}, matrix, x.data() + t * cols,
                   alone.data() + t * kRows, 1);
        }
        for (const int64_t nTokens : {2, 3, 4, 5, 9, 17, 70}) {
            for (const auto& pool : m_pools) {
                std::vector<float> batch(size_t(nTokens * kRows), std::numeric_limits<float>::quiet_NaN());
                matmul(CpuContext{pool.get(), simd(), true, vnni}, matrix, x.data(), batch.data(), nTokens);
                for (size_t i = 0; i < batch.size(); ++i) {
                    if (std::memcmp(&batch[i], &alone[i], sizeof(float)) != 0) {
                        ADD_FAILURE() << "vnni " << vnni << ", " << nTokens << " tokens, " << pool->size()
                                      << " threads: y[token " << i / kRows << "][row " << i % kRows
                                      << "] = " << batch[i] << ", alone " << alone[i];
                        break;
                    }
                }
            }
        }
    }
}

// A NaN or inf in x reaches every output, as it does in the float
// product; integer decode must not clamp it into a finite code.
TEST_P(MatmulTest, NonFiniteActivationGivesNonFiniteOutput) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr int64_t kRows = 48;  // every RowKinds
    const int64_t cols = 3 * std::max<int64_t>(32, dtypeInfo(type()).blockElements);
    const TestWeights w = randomWeights(type(), kRows, cols, rng);
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> x = randomActivations(cols, rng);
        x[size_t(cols / 2)] = bad;
        for (const bool int8Matmul : {false, true}) {
            std::vector<float> y(size_t(kRows), 0.0f);
            matmul(CpuContext{m_pools[1].get(), simd(), int8Matmul},
                   WeightMatrix{type(), w.bytes.data(), kRows, cols}, x.data(), y.data(), 1);
            for (int64_t r = 0; r < kRows; ++r) {
                EXPECT_FALSE(std::isfinite(y[size_t(r)]))
                    << "x[" << cols / 2 << "] = " << bad << ", int8Matmul " << int8Matmul << ", row " << r;
            }
        }
    }
}

std::string matmulParamName(const ::testing::TestParamInfo<MatmulParam>& info) {
    return std::string(dtypeName(std::get<0>(info.param))) + "_" +
           std::string(simdLevelName(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTest,
                         ::testing::Combine(::testing::ValuesIn(kTypes),
                                            ::testing::Values(SimdLevel::Avx2, SimdLevel::Avx512)),
                         matmulParamName);
// The types with int8 kernels (activationBlock).
INSTANTIATE_TEST_SUITE_P(BlockTypes, Int8MatmulTest,
                         ::testing::Combine(::testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                                              DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                                              DType::Q5_K, DType::Q6_K),
                                            ::testing::Values(SimdLevel::Avx2, SimdLevel::Avx512)),
                         matmulParamName);

class DequantizeRowTest : public ::testing::TestWithParam<DType> {};

// Conversions to f32 are exact, except for values scale * q + offset that
// f32 can't hold: those are correctly rounded (|error| <= u |w|; plus the
// float64 reference's own rounding).
TEST_P(DequantizeRowTest, IsExactOrCorrectlyRounded) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const DType type = GetParam();
    const double bound = hasOffset(type) ? 0x1p-24 + 0x1p-50 : 0.0;
    for (const int64_t cols : colsToTest(type)) {
        constexpr int64_t kRows = 48;  // every RowKinds
        const TestWeights w = randomWeights(type, kRows, cols, rng);
        std::vector<float> out(static_cast<size_t>(cols));
        for (int64_t row = 0; row < kRows; ++row) {
            std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
            dequantizeRow(WeightMatrix{type, w.bytes.data(), kRows, cols}, row, out.data());
            for (int64_t c = 0; c < cols; ++c) {
                const double expected = w.elements[size_t(row * cols + c)].value;
                ASSERT_LE(std::fabs(double(out[size_t(c)]) - expected), bound * std::fabs(expected))
                    << "cols " << cols << ", row " << row << ", col " << c << ": " << out[size_t(c)] << " vs "
                    << expected;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DequantizeRowTest, ::testing::ValuesIn(kTypes),
                         [](const ::testing::TestParamInfo<DType>& info) {
                             return std::string(dtypeName(info.param));
                         });

}  // namespace
}  // namespace cpu
}  // namespace pagoda

// The CUDA kernels' weight decoder (kernels/cuda/quant_blocks.h), built for
// the host: every element of every block-quantized type, from rows the CPU
// quantized and from random bytes, through each entry point the kernels
// use (decode8 for the matvec and the tiled matmul, dequantElement for the
// embedding), against the float64 reference decoder
// of tests/kernels/reference_blocks.h. Runs without a device.

#include "kernels/cuda/quant_blocks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/device_weight.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/kernels/reference_blocks.h"

namespace pagoda::cuda::test {
namespace {

using pagoda::test::RefElement;

constexpr DType kQuantTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                 DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Byte offsets of a block's fp16 fields (scales, offsets): kept finite in
// random blocks.
std::vector<size_t> halfFields(DType type) {
    switch (type) {
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K: return {0, 2};
    case DType::Q2_K: return {80, 82};
    case DType::Q3_K: return {108};
    case DType::Q6_K: return {208};
    default: return {0};
    }
}

// An fp16 bit pattern made finite: an all-ones exponent (inf, nan) loses
// its top bit.
void makeHalfFinite(uint8_t* p) {
    if ((p[1] & 0x7c) == 0x7c) p[1] &= uint8_t(~0x40);
}

// nQuantized rows quantized from random floats of several magnitudes (one
// all zero), then nRandom rows of random bytes with finite fp16 fields.
std::vector<uint8_t> makeRows(std::mt19937_64& rng, DType type, int64_t cols, int nQuantized, int nRandom) {
    const size_t stride = rowBytes(type, size_t(cols));
    const DTypeInfo info = dtypeInfo(type);
    std::vector<uint8_t> rows(stride * size_t(nQuantized + nRandom));
    const float amplitudes[] = {0.0f, 1e-4f, 1.0f, 300.0f, 1e4f};
    std::vector<float> values(static_cast<size_t>(cols));
    for (int r = 0; r < nQuantized; ++r) {
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        const float amplitude = amplitudes[size_t(r) % std::size(amplitudes)];
        // Some rows all of one sign, which moves Q4_1/Q5_1/K-quant offsets away from zero.
        const float shift = r % 3 == 0 ? amplitude : 0.0f;
        for (float& v : values) v = dist(rng) * amplitude + shift;
        cpu::quantizeRow(type, values.data(), rows.data() + size_t(r) * stride, cols);
    }
    std::uniform_int_distribution<int> byte(0, 255);
    const std::vector<size_t> fields = halfFields(type);
    for (int r = nQuantized; r < nQuantized + nRandom; ++r) {
        uint8_t* row = rows.data() + size_t(r) * stride;
        for (size_t i = 0; i < stride; ++i) row[i] = uint8_t(byte(rng));
        for (size_t block = 0; block < stride / info.blockBytes; ++block) {
            for (size_t field : fields) makeHalfFinite(row + block * info.blockBytes + field);
        }
    }
    return rows;
}

// Decoded values are one f32 rounding of the exact value (see
// quant_blocks.h): within half an ulp, |got - v| <= 2^-24 |v|. NaN and inf
// never pass.
testing::AssertionResult correctlyRounded(float got, const RefElement& want) {
    if (std::isfinite(got) && std::fabs(double(got) - want.value) <= 0x1p-24 * std::fabs(want.value)) {
        return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << "got " << got << ", want " << want.value << " (error "
                                       << double(got) - want.value << ")";
}

template <DType Q>
void expectTraitsDecodeAsTheReference(const std::vector<uint8_t>& rows, int64_t nRows, int64_t cols) {
    using Traits = QuantTraits<Q>;
    static_assert(sizeof(typename Traits::Block) % 2 == 0);
    ASSERT_EQ(uint32_t(Traits::kElements), dtypeInfo(Q).blockElements);
    ASSERT_EQ(sizeof(typename Traits::Block), dtypeInfo(Q).blockBytes);
    const size_t stride = rowBytes(Q, size_t(cols));
    const int64_t nBlocks = cols / Traits::kElements;
    for (int64_t r = 0; r < nRows; ++r) {
        const uint8_t* row = rows.data() + size_t(r) * stride;
        const std::vector<RefElement> want = pagoda::test::refDecode(Q, row, cols);
        const auto* blocks = reinterpret_cast<const typename Traits::Block*>(row);
        for (int64_t b = 0; b < nBlocks; ++b) {
            for (int chunk = 0; chunk < Traits::kElements / 32; ++chunk) {
                const int64_t first = b * Traits::kElements + 32 * chunk;
                for (int e = 0; e < 4; ++e) {
                    float eight[8];
                    Traits::decode8(blocks[b], chunk, e, eight);
                    for (int i = 0; i < 8; ++i) {
                        const int64_t c = first + 8 * e + i;
                        ASSERT_TRUE(correctlyRounded(eight[i], want[size_t(c)])) << "decode8, row " << r << " col " << c;
                    }
                }
            }
        }
        for (int64_t c = 0; c < cols; ++c) {
            ASSERT_TRUE(correctlyRounded(dequantElement(Q, row, c), want[size_t(c)]))
                << "dequantElement, row " << r << " col " << c;
        }
    }
}

void expectDecodeAsTheReference(DType type, const std::vector<uint8_t>& rows, int64_t nRows, int64_t cols) {
    switch (type) {
    case DType::Q8_0: return expectTraitsDecodeAsTheReference<DType::Q8_0>(rows, nRows, cols);
    case DType::Q4_0: return expectTraitsDecodeAsTheReference<DType::Q4_0>(rows, nRows, cols);
    case DType::Q4_1: return expectTraitsDecodeAsTheReference<DType::Q4_1>(rows, nRows, cols);
    case DType::Q5_0: return expectTraitsDecodeAsTheReference<DType::Q5_0>(rows, nRows, cols);
    case DType::Q5_1: return expectTraitsDecodeAsTheReference<DType::Q5_1>(rows, nRows, cols);
    case DType::Q2_K: return expectTraitsDecodeAsTheReference<DType::Q2_K>(rows, nRows, cols);
    case DType::Q3_K: return expectTraitsDecodeAsTheReference<DType::Q3_K>(rows, nRows, cols);
    case DType::Q4_K: return expectTraitsDecodeAsTheReference<DType::Q4_K>(rows, nRows, cols);
    case DType::Q5_K: return expectTraitsDecodeAsTheReference<DType::Q5_K>(rows, nRows, cols);
    case DType::Q6_K: return expectTraitsDecodeAsTheReference<DType::Q6_K>(rows, nRows, cols);
    default: FAIL() << "no QuantTraits for " << dtypeName(type);
    }
}

class QuantBlocks : public testing::TestWithParam<DType> {};

TEST_P(QuantBlocks, QuantizedRowsDecodeAsTheReference) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t cols = 1024;  // 4 K-quant blocks, 32 of the others
    const int nRows = 40;
    expectDecodeAsTheReference(GetParam(), makeRows(rng, GetParam(), cols, nRows, 0), nRows, cols);
}

TEST_P(QuantBlocks, RandomBytesDecodeAsTheReference) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t cols = 1024;
    const int nRows = 64;
    expectDecodeAsTheReference(GetParam(), makeRows(rng, GetParam(), cols, 0, nRows), nRows, cols);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantBlocks, testing::ValuesIn(kQuantTypes),
                         [](const testing::TestParamInfo<DType>& info) { return std::string(dtypeName(info.param)); });

// F32, F16 and BF16 elements: random bit patterns (finite), decoded exactly.
TEST(QuantBlocksFloat, DequantElementReadsFloatTypesExactly) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t n = 4096;
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
        SCOPED_TRACE(std::string(dtypeName(type)));
        const size_t size = dtypeInfo(type).blockBytes;
        std::vector<uint8_t> row(rowBytes(type, size_t(n)));
        std::uniform_int_distribution<int> byte(0, 255);
        for (uint8_t& b : row) b = uint8_t(byte(rng));
        for (size_t i = 0; i < row.size(); i += size) {
            uint8_t* top = &row[i + size - 1];  // sign and the exponent's high bits
            if (type == DType::F16) {
                makeHalfFinite(&row[i]);
            } else if ((*top & 0x7f) == 0x7f && (row[i + size - 2] & 0x80) != 0) {
                *top &= uint8_t(~0x40);  // f32 / bf16: an all-ones exponent
            }
        }
        const std::vector<RefElement> want = pagoda::test::refDecode(type, row.data(), n);
        for (int64_t c = 0; c < n; ++c) {
            const float got = dequantElement(type, row.data(), c);
            ASSERT_TRUE(std::isfinite(got)) << "element " << c;
            ASSERT_EQ(double(got), want[size_t(c)].value) << "element " << c;
        }
    }
}

TEST(QuantBlocksTypes, EveryTypeTheCpuComputesWithIsACudaWeightType) {
    for (uint32_t raw = 0; raw < 64; ++raw) {
        if (!dtypeInfo(raw)) continue;
        const DType type = DType(raw);
        const bool quantized = dtypeInfo(type).blockElements > 1;
        EXPECT_EQ(isCudaWeightType(type), isComputeSupported(type)) << dtypeName(type);
        EXPECT_EQ(isCudaQuantType(type), isComputeSupported(type) && quantized) << dtypeName(type);
    }
    for (DType type : kQuantTypes) EXPECT_TRUE(isCudaQuantType(type)) << dtypeName(type);
}

}  // namespace
}  // namespace pagoda::cuda::test

// Weight-matrix products on the device against a float64 reference over the
// dequantized weights: cuBLAS(Lt) for F32/F16/BF16 (activations rounded to
// the weight's 16-bit type, so the bound scales with its precision), and
// the kernels that read quantized blocks in place (Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; matvec and tiled paths) and matvec
// for the float types; their f16 expansion and its cuBLAS product (whole
// and in panels); the launchers' shape checks (without a device).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/matvec.h"
#include "kernels/cuda/quant_matmul.h"
#include "kernels/cuda/swiglu.h"
#include "kernels/half.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/reference_blocks.h"

namespace pagoda::cuda::test {
namespace {

using MatmulOps = CudaKernelTest;

struct Problem {
    std::vector<uint8_t> weights;  // [rows][rowBytes]
    std::vector<float> x;          // [nTokens][cols]
    std::vector<double> want;      // [nTokens][rows]
    std::vector<double> bound;     // [nTokens][rows]: sum |w x|, the scale of the rounding error
};

Problem makeProblem(std::mt19937_64& rng, DType type, int64_t rows, int64_t cols, int64_t nTokens) {
    Problem p;
    const size_t stride = rowBytes(type, size_t(cols));
    p.weights.resize(stride * size_t(rows));
    std::vector<float> dequantized(size_t(rows * cols));
    const cpu::WeightMatrix host{type, p.weights.data(), rows, cols};
    for (int64_t r = 0; r < rows; ++r) {
        const std::vector<float> row = randomFloats(rng, size_t(cols));
        cpu::quantizeRow(type, row.data(), p.weights.data() + size_t(r) * stride, cols);
        cpu::dequantizeRow(host, r, dequantized.data() + r * cols);
    }
    p.x = randomFloats(rng, size_t(nTokens * cols), 2.0f);
    p.want.assign(size_t(nTokens * rows), 0.0);
    p.bound.assign(p.want.size(), 0.0);
    for (int64_t t = 0; t < nTokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
                const double term = double(dequantized[r * cols + c]) * double(p.x[t * cols + c]);
                p.want[t * rows + r] += term;
                p.bound[t * rows + r] += std::fabs(term);
            }
        }
    }
    return p;
}

// Relative to sum |w x|: f32 accumulation ~1e-6; activations rounded to
// f16 (2^-11) or bf16 (2^-8).
double tolerance(DType type) {
    switch (type) {
    case DType::F16: return 2e-3;
    case DType::BF16: return 1e-2;
    default: return 2e-5;
    }
}

void expectClose(const std::vector<float>& got, const Problem& p, DType type) {
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], p.want[i], tolerance(type) * p.bound[i] + 1e-6) << "element " << i;
    }
}

TEST_F(MatmulOps, CublasGemmF32F16Bf16MatchesTheReference) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
        for (int64_t nTokens : {1, 3, 8, 17, 64}) {
            SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens");
            const int64_t rows = 96;
            const int64_t cols = 256;
            const Problem p = makeProblem(rng, type, rows, cols, nTokens);
            DeviceBuffer dW = upload(p.weights);
            DeviceBuffer dX = upload(p.x);
            DeviceBuffer dY = upload(std::vector<float>(size_t(nTokens * rows)));
            const DeviceWeight w{type, dW.data(), rows, cols};
            DeviceBuffer scratch = upload(std::vector<uint8_t>(std::max<size_t>(1, gemmScratchBytes(w, nTokens))));
            expectOk(gemm(context().blas(), stream(), w, dX.as<float>(), dY.as<float>(), nTokens, scratch.data()));
            const std::vector<float> got = download<float>(dY, size_t(nTokens * rows));
            expectClose(got, p, type);
            if (type == DType::F32) continue;
            // In two steps, as products with one input run (one conversion): the same bits.
            DeviceBuffer dTwoSteps = upload(std::vector<float>(size_t(nTokens * rows), NAN));
            expectOk(convertActivations(stream(), w, dX.as<float>(), nTokens, scratch.data()));
            expectOk(gemmConverted(context().blas(), stream(), w, scratch.data(), dTwoSteps.as<float>(), nTokens));
            EXPECT_EQ(download<uint32_t>(dTwoSteps, got.size()), download<uint32_t>(dY, got.size()));
        }
    }
}

// The launchers' checks come before any CUDA call: they run without a device.
TEST(GemmChecks, TwoStepsTakeOnly16BitFloatWeights) {
    alignas(16) static float x[16];
    const Status f32 = convertActivations(nullptr, {DType::F32, x, 4, 4}, x, 1, x);
    ASSERT_FALSE(f32.ok());
    EXPECT_EQ(f32.message(), "convertActivations: weight type f32 (f16 or bf16)");
    const Status q4k = gemmConverted({}, nullptr, {DType::Q4_K, x, 4, 256}, x, x, 1);
    ASSERT_FALSE(q4k.ok());
    EXPECT_EQ(q4k.message(), "gemm: weight type q4_k on converted activations");
    EXPECT_FALSE(gemmConverted({}, nullptr, {DType::F16, x, 0, 256}, x, x, 1).ok());
    EXPECT_TRUE(gemmConverted({}, nullptr, {DType::F16, x, 4, 256}, x, x, 0).ok());  // nothing to launch
}

// The Transformer's activation views are 64-byte aligned: cuBLASLt must be
// planned for that, not for its default of 256 bytes.
TEST_F(MatmulOps, CublasLtGemmRunsOnBuffersAlignedTo64Bytes) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    constexpr size_t kOffsetFloats = 16;
    for (DType type : {DType::F16, DType::BF16}) {
        SCOPED_TRACE(dtypeName(type));
        const int64_t rows = 96;
        const int64_t cols = 256;
        const int64_t nTokens = 5;
        const Problem p = makeProblem(rng, type, rows, cols, nTokens);
        DeviceBuffer dW = upload(p.weights);
        DeviceBuffer dX = upload(p.x);
        DeviceBuffer dY = upload(std::vector<float>(kOffsetFloats + size_t(nTokens * rows)));
        const DeviceWeight w{type, dW.data(), rows, cols};
        DeviceBuffer scratch = upload(std::vector<float>(kOffsetFloats + gemmScratchBytes(w, nTokens) / sizeof(float)));
        float* y = dY.as<float>() + kOffsetFloats;
        ASSERT_EQ(gemmPointerAlignment(y), 64u);
        expectOk(gemm(context().blas(), stream(), w, dX.as<float>(), y, nTokens, scratch.as<float>() + kOffsetFloats));
        const std::vector<float> got = download<float>(dY, kOffsetFloats + size_t(nTokens * rows));
        expectClose(std::vector<float>(got.begin() + kOffsetFloats, got.end()), p, type);
    }
}

TEST(GemmPlanning, PointerAlignmentIsThePowerOfTwoDividingTheAddressUpTo256) {
    alignas(512) static std::byte buffer[1024];
    EXPECT_EQ(gemmPointerAlignment(buffer), 256u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 256), 256u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 512), 256u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 64), 64u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 192), 64u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 128), 128u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 4), 4u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 6), 2u);
    EXPECT_EQ(gemmPointerAlignment(buffer + 7), 1u);
}

const DType kQuantTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                              DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

TEST_F(MatmulOps, QuantizedKernelsReadBlocksInPlace) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (DType type : kQuantTypes) {
        // Shapes: 67 rows (a partial warp group and tile); columns of one
        // block, and of several K-quant blocks; 96 (3 blocks) for the
        // 32-element types.
        std::vector<std::pair<int64_t, int64_t>> shapes = {{67, 256}, {128, 1024}};
        if (dtypeInfo(type).blockElements == 32) shapes.push_back({67, 96});
        // 1: matvec; 2, 3: groups of 4; 5, 8: groups of 8; 9, 17, 33, 64, 70: tiled.
        for (int64_t nTokens : {1, 2, 3, 5, 8, 9, 17, 33, 64, 70}) {
            for (auto [rows, cols] : shapes) {
                SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens, " << rows << " x "
                                                << cols);
                const Problem p = makeProblem(rng, type, rows, cols, nTokens);
                DeviceBuffer dW = upload(p.weights);
                DeviceBuffer dX = upload(p.x);
                DeviceBuffer dY = upload(std::vector<float>(size_t(nTokens * rows)));
                expectOk(quantMatmul(stream(), {type, dW.data(), rows, cols}, dX.as<float>(), dY.as<float>(), nTokens));
                expectClose(download<float>(dY, size_t(nTokens * rows)), p, type);
            }
        }
    }
}

// matvec for every weight type, in each token group (1, 4, 8; beyond 8 in
// groups of 8, as CUDA graph captures use it for the quantized types); the
// activations stay f32, so the bound is the f32 one whatever the type.
TEST_F(MatmulOps, MatvecReadsEveryWeightTypeWithF32Activations) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    std::vector<DType> types = {DType::F32, DType::F16, DType::BF16};
    types.insert(types.end(), std::begin(kQuantTypes), std::end(kQuantTypes));
    for (DType type : types) {
        const int64_t block = std::max<int64_t>(8, dtypeInfo(type).blockElements);
        for (int64_t nTokens : {1, 3, 5, 8, 13, 32}) {
            for (auto [rows, cols] : {std::pair<int64_t, int64_t>{67, block * 5}, {130, block * 131}}) {
                SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens, " << rows << " x "
                                                << cols);
                const Problem p = makeProblem(rng, type, rows, cols, nTokens);
                DeviceBuffer dW = upload(p.weights);
                DeviceBuffer dX = upload(p.x);
                DeviceBuffer dY = upload(std::vector<float>(size_t(nTokens * rows), NAN));
                expectOk(matvec(stream(), {type, dW.data(), rows, cols}, dX.as<float>(), dY.as<float>(), nTokens));
                expectClose(download<float>(dY, size_t(nTokens * rows)), p, DType::F32);
            }
        }
    }
}

// Three matrices of one type in one launch (q, k and v): each output the
// bits of its matrix alone.
TEST_F(MatmulOps, MatvecsOfSeveralMatricesGiveEachMatrixsOwnBits) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (DType type : {DType::F16, DType::Q4_K}) {
        for (int64_t nTokens : {1, 5}) {
            SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens");
            const int64_t cols = 512;
            const int64_t rows[] = {67, 16, 33};
            std::vector<DeviceBuffer> weights;
            std::vector<DeviceBuffer> outputs;
            DeviceWeight w[3];
            float* y[3];
            const Problem first = makeProblem(rng, type, rows[0], cols, nTokens);
            DeviceBuffer dX = upload(first.x);
            for (int i = 0; i < 3; ++i) {
                const Problem p = i == 0 ? first : makeProblem(rng, type, rows[i], cols, nTokens);
                weights.push_back(upload(p.weights));
                outputs.push_back(upload(std::vector<float>(size_t(nTokens * rows[i]), NAN)));
                w[i] = {type, weights.back().data(), rows[i], cols};
                y[i] = outputs.back().as<float>();
            }
            expectOk(matvecs(stream(), w, y, 3, dX.as<float>(), nTokens));
            for (int i = 0; i < 3; ++i) {
                DeviceBuffer alone = upload(std::vector<float>(size_t(nTokens * rows[i]), NAN));
                expectOk(matvec(stream(), w[i], dX.as<float>(), alone.as<float>(), nTokens));
                EXPECT_EQ(download<uint32_t>(outputs[size_t(i)], size_t(nTokens * rows[i])),
                          download<uint32_t>(alone, size_t(nTokens * rows[i])))
                    << "matrix " << i;
            }
        }
    }
}

// Gate and up with their SwiGLU in one launch: the bits of the two
// products (matvecs) and the swiglu kernel after them.
TEST_F(MatmulOps, MatvecSwigluGivesTheBitsOfTheProductsAndTheSwigluKernel) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
        for (int64_t nTokens : {1, 3, 8, 13, 32}) {
            SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens");
            const int64_t rows = 67;
            const int64_t cols = std::max<int64_t>(8, dtypeInfo(type).blockElements) * 9;
            const Problem gate = makeProblem(rng, type, rows, cols, nTokens);
            const Problem up = makeProblem(rng, type, rows, cols, nTokens);
            DeviceBuffer dGate = upload(gate.weights);
            DeviceBuffer dUp = upload(up.weights);
            DeviceBuffer dX = upload(gate.x);
            const DeviceWeight g{type, dGate.data(), rows, cols};
            const DeviceWeight u{type, dUp.data(), rows, cols};
            const size_t n = size_t(nTokens * rows);
            DeviceBuffer fused = upload(std::vector<float>(n, NAN));
            expectOk(matvecSwiglu(stream(), g, u, dX.as<float>(), fused.as<float>(), nTokens));
            DeviceBuffer gateOut = upload(std::vector<float>(n, NAN));
            DeviceBuffer upOut = upload(std::vector<float>(n, NAN));
            const DeviceWeight both[] = {g, u};
            float* const ys[] = {gateOut.as<float>(), upOut.as<float>()};
            expectOk(matvecs(stream(), both, ys, 2, dX.as<float>(), nTokens));
            expectOk(swiglu(stream(), gateOut.as<float>(), upOut.as<float>(), gateOut.as<float>(), int64_t(n)));
            const std::vector<float> got = download<float>(fused, n);
            for (float v : got) ASSERT_TRUE(std::isfinite(v));
            EXPECT_EQ(download<uint32_t>(fused, n), download<uint32_t>(gateOut, n));
        }
    }
    // Gate and up of different shapes are refused.
    DeviceBuffer dummy = upload(std::vector<float>(64));
    const Status rows = matvecSwiglu(stream(), {DType::F32, dummy.data(), 4, 8}, {DType::F32, dummy.data(), 2, 8},
                                     dummy.as<float>(), dummy.as<float>(), 1);
    ASSERT_FALSE(rows.ok());
    EXPECT_EQ(rows.message(), "matvecSwiglu: gate is a 4 x 8 f32 matrix, up a 2 x 8 f32 matrix");
}

// Int8 decode (every block-quantized type): the activations rounded per block of 32
// (each within about d / 2 of its value, d = max |x| / 127), so each
// output within the sum over blocks of that times sum |w| of the f32
// product, plus f32 rounding;
// matvecs and the fused SwiGLU give the bits of one matrix alone and of
// the two products with the swiglu kernel after them.
TEST_F(MatmulOps, Int8MatvecStaysWithinTheActivationRoundingsBound) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (DType type : kQuantTypes) {
        for (int64_t nTokens : {1, 3, 8, 13}) {
            for (auto [rows, cols] : {std::pair<int64_t, int64_t>{67, 256}, {130, 256 * 19}}) {
                SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens, " << rows << " x "
                                                << cols);
                const Problem p = makeProblem(rng, type, rows, cols, nTokens);
                const std::vector<pagoda::test::RefElement> w =
                    pagoda::test::refDecode(type, p.weights.data(), rows * cols);
                DeviceBuffer dW = upload(p.weights);
                DeviceBuffer dX = upload(p.x);
                DeviceBuffer workspace = upload(std::vector<uint8_t>(int8ActivationBytes(cols, nTokens)));
                const StatusOr<Int8Activations> x8 =
                    quantizeActivations(stream(), dX.as<float>(), cols, nTokens, workspace.data());
                ASSERT_TRUE(x8.ok()) << x8.status().message();
                const DeviceWeight weight{type, dW.data(), rows, cols};
                ASSERT_TRUE(matvecInt8Takes(weight));
                DeviceBuffer dY = upload(std::vector<float>(size_t(nTokens * rows), NAN));
                float* y = dY.as<float>();
                expectOk(matvecsInt8(stream(), &weight, &y, 1, x8.value()));
                const std::vector<float> got = download<float>(dY, size_t(nTokens * rows));
                for (int64_t t = 0; t < nTokens; ++t) {
                    for (int64_t r = 0; r < rows; ++r) {
                        double quantization = 0.0;
                        for (int64_t b = 0; b < cols / 32; ++b) {
                            double amax = 0.0;
                            double absW = 0.0;
                            for (int64_t i = 32 * b; i < 32 * b + 32; ++i) {
                                amax = std::max(amax, std::fabs(double(p.x[size_t(t * cols + i)])));
                                absW += std::fabs(w[size_t(r * cols + i)].value);
                            }
                            // Half of d, plus x / d's rounding (127 ulps) and d's.
                            quantization += amax / 127.0 * (0.5 + 2e-5) * absW;
                        }
                        const size_t at = size_t(t * rows + r);
                        ASSERT_TRUE(std::isfinite(got[at])) << "token " << t << ", row " << r;
                        ASSERT_NEAR(got[at], p.want[at], quantization + tolerance(DType::F32) * p.bound[at] + 1e-6)
                            << "token " << t << ", row " << r;
                    }
                }
                // Three matrices in one launch, and gate with up fused.
                DeviceBuffer ys3 = upload(std::vector<float>(size_t(3 * nTokens * rows), NAN));
                const DeviceWeight three[] = {weight, weight, weight};
                float* const outs[] = {ys3.as<float>(), ys3.as<float>() + nTokens * rows,
                                       ys3.as<float>() + 2 * nTokens * rows};
                expectOk(matvecsInt8(stream(), three, outs, 3, x8.value()));
                const std::vector<uint32_t> alone = download<uint32_t>(dY, size_t(nTokens * rows));
                const std::vector<uint32_t> grouped = download<uint32_t>(ys3, size_t(3 * nTokens * rows));
                for (int m = 0; m < 3; ++m) {
                    EXPECT_TRUE(std::equal(alone.begin(), alone.end(), grouped.begin() + m * nTokens * rows)) << m;
                }
                DeviceBuffer fused = upload(std::vector<float>(size_t(nTokens * rows), NAN));
                expectOk(matvecSwigluInt8(stream(), weight, weight, x8.value(), fused.as<float>()));
                expectOk(swiglu(stream(), y, y, y, nTokens * rows));
                EXPECT_EQ(download<uint32_t>(fused, size_t(nTokens * rows)),
                          download<uint32_t>(dY, size_t(nTokens * rows)));
            }
        }
    }
}

TEST_F(MatmulOps, LaunchersRejectTypesTheyDoNotRead) {
    DeviceBuffer dummy = upload(std::vector<float>(64));
    EXPECT_FALSE(quantMatmul(stream(), {DType::F16, dummy.data(), 1, 32}, dummy.as<float>(), dummy.as<float>(), 1).ok());
    EXPECT_FALSE(quantMatmul(stream(), {DType::Q8_0, dummy.data(), 1, 48}, dummy.as<float>(), dummy.as<float>(), 1).ok());
    EXPECT_FALSE(gemm(context().blas(), stream(), {DType::Q4_0, dummy.data(), 1, 32}, dummy.as<float>(),
                      dummy.as<float>(), 1, nullptr)
                     .ok());
}

// Each element once rounded to f16 (the decoded f32 is exact or correctly
// rounded, so at most half an f16 ulp plus the f16 subnormal step away).
TEST_F(MatmulOps, DequantizeToF16MatchesTheReference) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (DType type : kQuantTypes) {
        SCOPED_TRACE(dtypeName(type));
        const int64_t rows = 67;
        const int64_t cols = 512;
        const Problem p = makeProblem(rng, type, rows, cols, 1);
        const std::vector<pagoda::test::RefElement> want = pagoda::test::refDecode(type, p.weights.data(), rows * cols);
        DeviceBuffer dW = upload(p.weights);
        DeviceBuffer dOut = upload(std::vector<uint16_t>(size_t(rows * cols)));
        const int64_t first = 5;  // rows [5, 67): a row range, as a panel is
        expectOk(dequantizeToF16(stream(), {type, dW.data(), rows, cols}, first, rows, dOut.data()));
        const std::vector<uint16_t> got = download<uint16_t>(dOut, size_t((rows - first) * cols));
        for (size_t i = 0; i < got.size(); ++i) {
            const double value = want[size_t(first * cols) + i].value;
            ASSERT_NEAR(halfToFloat(got[i]), value, std::fabs(value) * 0x1p-11 + 0x1p-24) << "element " << i;
        }
    }
}

TEST_F(MatmulOps, DequantizedGemmMatchesTheReferenceWholeAndInPanels) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t rows = 200;
    const int64_t cols = 512;
    for (DType type : kQuantTypes) {
        for (int64_t nTokens : {17, 64}) {
            const Problem p = makeProblem(rng, type, rows, cols, nTokens);
            DeviceBuffer dW = upload(p.weights);
            DeviceBuffer dX = upload(p.x);
            DeviceBuffer panel = upload(std::vector<uint16_t>(size_t(rows * cols)));
            DeviceBuffer product = upload(std::vector<float>(size_t(nTokens * rows)));
            DeviceBuffer scratch = upload(std::vector<uint8_t>(gemmScratchBytes({DType::F16, nullptr, rows, cols}, nTokens)));
            for (int64_t panelRows : {rows, int64_t(64)}) {  // one panel; 64 + 64 + 64 + 8 rows
                SCOPED_TRACE(testing::Message() << dtypeName(type) << ", " << nTokens << " tokens, panels of "
                                                << panelRows << " rows");
                DeviceBuffer dY = upload(std::vector<float>(size_t(nTokens * rows), NAN));
                expectOk(dequantizedGemm(context().blas(), stream(), {type, dW.data(), rows, cols}, dX.as<float>(),
                                         dY.as<float>(), nTokens, panelRows, panel.data(), product.as<float>(),
                                         scratch.data()));
                expectClose(download<float>(dY, size_t(nTokens * rows)), p, DType::F16);  // f16 activations
            }
        }
    }
}

// The launcher's checks come before any CUDA call: they run without a device.
TEST(DequantizeChecks, OnlyBlockQuantizedRowsOfTheMatrixAlignedTo16Bytes) {
    alignas(16) static uint16_t out[64];
    EXPECT_FALSE(dequantizeToF16(nullptr, {DType::F16, out, 4, 256}, 0, 4, out).ok());
    const Status rows = dequantizeToF16(nullptr, {DType::Q4_K, out, 4, 256}, 2, 5, out);
    ASSERT_FALSE(rows.ok());
    EXPECT_EQ(rows.message(), "dequantizeToF16: rows [2, 5) of a 4 x 256 q4_k matrix");
    EXPECT_FALSE(dequantizeToF16(nullptr, {DType::Q8_0, out, 4, 48}, 0, 4, out).ok());
    EXPECT_FALSE(dequantizeToF16(nullptr, {DType::Q8_0, out, 4, 64}, 0, 4, out + 1).ok());
    EXPECT_TRUE(dequantizeToF16(nullptr, {DType::Q8_0, out, 4, 64}, 3, 3, out).ok());  // no rows: nothing to launch
    const Status misaligned = dequantizeToF16(nullptr, {DType::Q5_K, out + 2, 4, 256}, 0, 4, out);
    ASSERT_FALSE(misaligned.ok());
    EXPECT_EQ(misaligned.message(), "dequantizeToF16: q5_k blocks misaligned");
    EXPECT_TRUE(dequantizeToF16(nullptr, {DType::Q6_K, out + 1, 4, 256}, 0, 0, out).ok());  // 2-byte blocks
}

// The launcher's checks come before any CUDA call: they run without a device.
TEST(QuantMatmulChecks, ColumnsMustBeAMultipleOfTheBlockSize) {
    alignas(16) static float x[16];
    const Status misfit = quantMatmul(nullptr, {DType::Q4_K, x, 4, 288}, x, x, 1);
    ASSERT_FALSE(misfit.ok());
    EXPECT_EQ(misfit.message(),
              "quantMatmul: 1 tokens through a 4 x 288 q4_k matrix (columns must be a multiple of 256)");
    EXPECT_FALSE(quantMatmul(nullptr, {DType::Q6_K, x, 4, 128}, x, x, 1).ok());
    EXPECT_FALSE(quantMatmul(nullptr, {DType::Q5_0, x, 4, 48}, x, x, 1).ok());
    const Status f16 = quantMatmul(nullptr, {DType::F16, x, 4, 256}, x, x, 1);
    ASSERT_FALSE(f16.ok());
    EXPECT_NE(f16.message().find("weight type f16"), std::string::npos) << f16.message();
    for (DType type : kQuantTypes) {  // valid shapes, no tokens: nothing to launch
        EXPECT_TRUE(quantMatmul(nullptr, {type, x, 4, 512}, x, x, 0).ok()) << dtypeName(type);
    }
    const Status misaligned = quantMatmul(nullptr, {DType::Q4_K, x + 1, 4, 256}, x, x, 1);
    ASSERT_FALSE(misaligned.ok());
    EXPECT_EQ(misaligned.message(), "quantMatmul: q4_k blocks misaligned");
}

// The launcher's checks come before any CUDA call: they run without a device.
TEST(MatvecChecks, FloatRowsAligned16ColumnsOfWholeBlocksAtMost32Tokens) {
    alignas(16) static float x[64];
    EXPECT_TRUE(matvecTakes({DType::F16, x, 4, 40}));
    EXPECT_FALSE(matvecTakes({DType::F16, x, 4, 36}));  // rows 72 bytes apart
    EXPECT_FALSE(matvecTakes({DType::F16, x + 1, 4, 40}));
    EXPECT_TRUE(matvecTakes({DType::Q4_0, x + 1, 4, 64}));  // blocks need 2-byte alignment only
    EXPECT_FALSE(matvecTakes({DType::Q4_K, x, 4, 128}));
    EXPECT_TRUE(matvecTakes({DType::Q4_K, x + 2, 4, 256}));  // K-quant blocks are read in 8-byte words
    EXPECT_FALSE(matvecTakes({DType::Q4_K, x + 1, 4, 256}));
    EXPECT_FALSE(matvecTakes({DType::Q5_K, x + 1, 4, 256}));
    EXPECT_FALSE(matvecTakes({DType::Q8_0, x, 0, 64}));
    const Status shape = matvec(nullptr, {DType::BF16, x, 4, 36}, x, x, 1);
    ASSERT_FALSE(shape.ok());
    EXPECT_EQ(shape.message(),
              "matvec: a 4 x 36 bf16 matrix (f32, f16, bf16 with 16-byte aligned rows, or block-quantized with "
              "aligned blocks; columns a multiple of 8 and of the block size)");
    const Status tokens = matvec(nullptr, {DType::F32, x, 4, 8}, x, x, 33);
    ASSERT_FALSE(tokens.ok());
    EXPECT_EQ(tokens.message(), "matvec: 33 tokens (at most 32)");
    EXPECT_FALSE(matvec(nullptr, {DType::F32, x, 4, 8}, x + 1, x, 1).ok());
    EXPECT_TRUE(matvec(nullptr, {DType::F32, x, 4, 8}, x, x, 0).ok());  // no tokens: nothing to launch

    // One launch: one type, one column count, at most three matrices.
    const DeviceWeight mixed[] = {{DType::Q4_K, x, 4, 256}, {DType::Q6_K, x, 4, 256}};
    float* ys[] = {x, x, x, x};
    const Status types = matvecs(nullptr, mixed, ys, 2, x, 1);
    ASSERT_FALSE(types.ok());
    EXPECT_EQ(types.message(), "matvec: a 4 x 256 q6_k matrix in one launch with a 4 x 256 q4_k matrix");
    const DeviceWeight widths[] = {{DType::F16, x, 4, 64}, {DType::F16, x, 4, 32}};
    EXPECT_FALSE(matvecs(nullptr, widths, ys, 2, x, 1).ok());
    const DeviceWeight four[] = {{DType::F16, x, 4, 64}, {DType::F16, x, 4, 64}, {DType::F16, x, 4, 64},
                                 {DType::F16, x, 4, 64}};
    EXPECT_EQ(matvecs(nullptr, four, ys, 4, x, 1).message(), "matvec: 4 matrices in one launch (1 to 3)");
    EXPECT_TRUE(matvecs(nullptr, four, ys, 3, x, 0).ok());
}

// The int8 launchers' checks come before any CUDA call.
TEST(MatvecChecks, Int8TakesQuantizedRowsAlignedForItsLoadsAndActivationsOfItsWidth) {
    alignas(16) static float x[64];
    EXPECT_TRUE(matvecInt8Takes({DType::Q4_K, x, 4, 256}));
    EXPECT_FALSE(matvecInt8Takes({DType::Q4_K, x + 2, 4, 256}));  // the float matvec takes 8-byte alignment
    EXPECT_TRUE(matvecInt8Takes({DType::Q8_0, x + 1, 4, 64}));  // 16-bit loads
    EXPECT_TRUE(matvecInt8Takes({DType::Q4_0, x + 1, 4, 64}));
    EXPECT_TRUE(matvecInt8Takes({DType::Q6_K, x + 1, 4, 256}));  // 210-byte blocks: 16-bit loads
    EXPECT_TRUE(matvecInt8Takes({DType::Q5_K, x, 4, 256}));
    EXPECT_FALSE(matvecInt8Takes({DType::Q5_K, x + 2, 4, 256}));
    EXPECT_TRUE(matvecInt8Takes({DType::Q3_K, x + 1, 4, 256}));  // 110-byte blocks: 16-bit loads
    EXPECT_TRUE(matvecInt8Takes({DType::Q5_0, x + 1, 4, 64}));
    EXPECT_TRUE(matvecInt8Takes({DType::Q4_1, x + 1, 4, 64}));  // 20-byte blocks: 32-bit loads
    EXPECT_FALSE(matvecInt8Takes({DType::Q4_1, reinterpret_cast<uint16_t*>(x) + 1, 4, 64}));
    EXPECT_TRUE(matvecInt8Takes({DType::Q5_1, x + 1, 4, 64}));
    EXPECT_TRUE(matvecInt8Takes({DType::Q2_K, x + 1, 4, 256}));
    EXPECT_FALSE(matvecInt8Takes({DType::Q2_K, reinterpret_cast<uint16_t*>(x) + 1, 4, 256}));
    EXPECT_FALSE(matvecInt8Takes({DType::F16, x, 4, 256}));
    EXPECT_EQ(int8ActivationBytes(256, 3), size_t(768 + 3 * 8 * 2 * 4));
    EXPECT_EQ(int8ActivationBytes(40 * 32, 1), size_t(1280 + 40 * 2 * 4));
    const Int8Activations narrow{reinterpret_cast<const int8_t*>(x), x, 512, 1};
    const DeviceWeight w{DType::Q4_K, x, 4, 256};
    float* y = x;
    const Status width = matvecsInt8(nullptr, &w, &y, 1, narrow);
    ASSERT_FALSE(width.ok());
    EXPECT_EQ(width.message(),
              "matvec: no int8 product of a 4 x 256 q4_k matrix with 512 int8 activations (the block-quantized "
              "types; Q4_K, Q5_K with 16-byte aligned rows)");
    const auto odd = quantizeActivations(nullptr, x, 48, 1, x);
    ASSERT_FALSE(odd.ok());
    EXPECT_EQ(odd.status().message(), "quantizeActivations: 1 x 48 (columns a multiple of 32, a 16-byte aligned workspace)");
    EXPECT_TRUE(quantizeActivations(nullptr, x, 64, 0, x).ok());  // no tokens: nothing to launch
}

// How CudaBackend::matmuls shares launches among products with one input.
TEST(MatvecGroups, OneTypeAndWidthAtMostThreeInOrder) {
    const DeviceWeight q4k{DType::Q4_K, nullptr, 4096, 4096};
    const DeviceWeight q6k{DType::Q6_K, nullptr, 1024, 4096};
    const DeviceWeight f16{DType::F16, nullptr, 1024, 4096};
    const DeviceWeight wide{DType::F16, nullptr, 1024, 8192};
    using Groups = std::vector<std::vector<int>>;
    // q, k and v of one type: one launch.
    EXPECT_EQ(matvecGroups({f16, f16, f16}, {true, true, true}), (Groups{{0, 1, 2}}));
    // A Q4_K_M layer: q and k Q4_K, v Q6_K.
    EXPECT_EQ(matvecGroups({q4k, q4k, q6k}, {true, true, true}), (Groups{{0, 1}, {2}}));
    EXPECT_EQ(matvecGroups({q4k, q6k, q4k}, {true, true, true}), (Groups{{0, 2}, {1}}));
    // Products matvec does not run are left out; widths do not mix; three at most.
    EXPECT_EQ(matvecGroups({f16, f16, f16}, {true, false, true}), (Groups{{0, 2}}));
    EXPECT_EQ(matvecGroups({f16, wide}, {true, true}), (Groups{{0}, {1}}));
    EXPECT_EQ(matvecGroups({f16, f16, f16, f16}, {true, true, true, true}), (Groups{{0, 1, 2}, {3}}));
    EXPECT_EQ(matvecGroups({f16, f16}, {false, false}), Groups{});
}

}  // namespace
}  // namespace pagoda::cuda::test

// Embedding (every CUDA weight type), RMSNorm (alone and fused with the
// residual add), RoPE, SwiGLU, GeGLU, scaling, soft-capping, residual adds
// and K/V stores on the device against the CPU kernels, on fresh random
// inputs; the embedding's and the norms' launcher checks (without a
// device).

#include <gtest/gtest.h>

#include <cstring>
#include <tuple>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/kv_store.h"
#include "kernels/cuda/residual_add.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/scale.h"
#include "kernels/cuda/swiglu.h"
#include "tests/cuda/cuda_test_util.h"

namespace pagoda::cuda::test {
namespace {

using ElementwiseOps = CudaKernelTest;

TEST_F(ElementwiseOps, EmbeddingDequantizesRowsOfEveryTypeExactly) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t rows = 37;
    const int64_t cols = 768;  // 3 K-quant blocks
    for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                       DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
        SCOPED_TRACE(std::string(dtypeName(type)));
        std::vector<uint8_t> table(rowBytes(type, cols) * rows);
        for (int64_t r = 0; r < rows; ++r) {
            const std::vector<float> row = randomFloats(rng, cols);
            cpu::quantizeRow(type, row.data(), table.data() + r * rowBytes(type, cols), cols);
        }
        const std::vector<int32_t> ids = {0, 36, 5, 5, 17, -1, 37};
        DeviceBuffer dTable = upload(table);
        DeviceBuffer dIds = upload(ids);
        DeviceBuffer dOut = upload(std::vector<float>(ids.size() * cols));
        expectOk(embedRows(stream(), {type, dTable.data(), rows, cols}, dIds.as<int32_t>(), int(ids.size()),
                           dOut.as<float>()));
        const std::vector<float> got = download<float>(dOut, ids.size() * cols);
        const cpu::WeightMatrix host{type, table.data(), rows, cols};
        std::vector<float> want(cols);
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] >= 0 && ids[i] < rows) {
                cpu::dequantizeRow(host, ids[i], want.data());
            } else {
                std::fill(want.begin(), want.end(), 0.0f);  // out of range: zeros
            }
            for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(got[i * cols + c], want[c]) << "id " << ids[i] << " col " << c;
        }
    }
}

// The launcher's checks come before any CUDA call: they run without a device.
TEST(EmbeddingChecks, TablesOfOtherTypesOrPartialBlocksAreRejected) {
    alignas(16) static float buffer[16];
    const auto* ids = reinterpret_cast<const int32_t*>(buffer);
    const Status partial = embedRows(nullptr, {DType::Q6_K, buffer, 4, 96}, ids, 1, buffer);
    ASSERT_FALSE(partial.ok());
    EXPECT_EQ(partial.message(), "embedRows: 1 ids into a 4 x 96 q6_k table (columns must be a multiple of 256)");
    EXPECT_FALSE(embedRows(nullptr, {DType::Q8_K, buffer, 4, 256}, ids, 1, buffer).ok());
    EXPECT_TRUE(embedRows(nullptr, {DType::Q4_K, buffer, 4, 256}, ids, 0, buffer).ok());  // nothing to launch
    const Status misaligned = embedRows(nullptr, {DType::Q4_K, buffer + 1, 4, 256}, ids, 1, buffer);
    ASSERT_FALSE(misaligned.ok());
    EXPECT_EQ(misaligned.message(), "embedRows: q4_k blocks misaligned");
}

// The launchers' checks come before any CUDA call: they run without a device.
TEST(NormChecks, RowsWidthAndEpsilonAreCheckedFirst) {
    const Status fused = addRmsNorm(nullptr, nullptr, nullptr, nullptr, nullptr, -1, 8, 1e-5f);
    ASSERT_FALSE(fused.ok());
    EXPECT_EQ(fused.message(), "addRmsNorm: -1 rows of 8, eps 0.000010");
    EXPECT_FALSE(rmsNorm(nullptr, nullptr, nullptr, nullptr, 1, 0, 1e-5f).ok());
    EXPECT_FALSE(addRmsNorm(nullptr, nullptr, nullptr, nullptr, nullptr, 1, 8, -1.0f).ok());
    EXPECT_TRUE(addRmsNorm(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 8, 1e-5f).ok());  // nothing to launch
}

// RMSNorm in place; then fused with the residual add before it: x updated
// as the CPU's add, y as its RMSNorm of the sum, and the bits of the add
// and norm kernels run one after the other.
TEST(RopeChecks, TheFusedStoreHoldsAnglesFor128PairsAndNeedsMatchingHeads) {
    const DeviceKvView pools{nullptr, nullptr, 2, 16, 128};
    const Status wide = ropeStoreKv(nullptr, nullptr, nullptr, nullptr, 1, 4, nullptr, nullptr, {512, 512, 1e4f, false},
                                    {nullptr, nullptr, 2, 16, 512}, nullptr, nullptr);
    ASSERT_FALSE(wide.ok());
    EXPECT_EQ(wide.message(), "ropeStoreKv: rope dim 512 (at most 256) of heads of 512 into pools of 2 KV heads of 512, "
                              "blocks of 16");
    EXPECT_FALSE(ropeStoreKv(nullptr, nullptr, nullptr, nullptr, 1, 4, nullptr, nullptr, {64, 64, 1e4f, false}, pools,
                             nullptr, nullptr)
                     .ok());
    EXPECT_FALSE(ropeStoreKv(nullptr, nullptr, nullptr, nullptr, 1, 4, nullptr, nullptr, {128, 130, 1e4f, false},
                             pools, nullptr, nullptr)
                     .ok());
    EXPECT_TRUE(ropeStoreKv(nullptr, nullptr, nullptr, nullptr, 0, 4, nullptr, nullptr, {128, 128, 1e4f, false}, pools,
                            nullptr, nullptr)
                    .ok());  // no tokens: nothing to launch
}

TEST_F(ElementwiseOps, RmsNormAloneAndFusedWithTheAddMatchTheCpu) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (int64_t n : {1, 64, 768, 4096, 5000}) {
        SCOPED_TRACE(testing::Message() << "rows of " << n);
        const int64_t nRows = 5;
        const std::vector<float> x = randomFloats(rng, nRows * n, 3.0f);
        const std::vector<float> delta = randomFloats(rng, nRows * n);
        const std::vector<float> weight = randomFloats(rng, n);
        auto expectNorm = [&](const std::vector<float>& got, const std::vector<float>& of) {
            std::vector<float> want(of.size());
            cpu::rmsNorm(of.data(), weight.data(), want.data(), nRows, n, 1e-5f);
            for (size_t i = 0; i < got.size(); ++i) {
                ASSERT_NEAR(got[i], want[i], 2e-5f * (1.0f + std::fabs(want[i]))) << i;
            }
        };
        DeviceBuffer dw = upload(weight);
        DeviceBuffer dDelta = upload(delta);

        DeviceBuffer dUnfused = upload(x);
        expectOk(rmsNorm(stream(), dUnfused.as<float>(), dw.as<float>(), dUnfused.as<float>(), nRows, n, 1e-5f));
        expectNorm(download<float>(dUnfused, x.size()), x);

        std::vector<float> sum = x;
        cpu::addInPlace(sum.data(), delta.data(), nRows * n);
        DeviceBuffer dx = upload(x);
        DeviceBuffer dy = upload(std::vector<float>(x.size(), NAN));
        expectOk(addRmsNorm(stream(), dx.as<float>(), dDelta.as<float>(), dw.as<float>(), dy.as<float>(), nRows, n,
                            1e-5f));
        EXPECT_EQ(download<float>(dx, x.size()), sum);
        const std::vector<float> fused = download<float>(dy, x.size());
        expectNorm(fused, sum);

        dUnfused = upload(x);
        expectOk(add(stream(), dUnfused.as<float>(), dDelta.as<float>(), nRows * n));
        expectOk(rmsNorm(stream(), dUnfused.as<float>(), dw.as<float>(), dUnfused.as<float>(), nRows, n, 1e-5f));
        EXPECT_EQ(download<uint32_t>(dUnfused, x.size()), download<uint32_t>(dy, x.size()));
    }
}

TEST_F(ElementwiseOps, RopeMatchesTheCpuInBothStylesAtLongPositions) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const std::vector<int32_t> positions = {0, 1, 17, 4095, 40000, 131071};
    for (bool neox : {false, true}) {
        for (auto [headDim, ropeDim] : {std::pair{64, 64}, std::pair{128, 128}, std::pair{80, 32}}) {
            const int nHeads = 3;
            const int nTokens = int(positions.size());
            const std::vector<float> x = randomFloats(rng, size_t(nTokens) * nHeads * headDim);
            std::vector<float> want = x;
            const cpu::RopeParams params{headDim, ropeDim, 500000.0f, neox ? cpu::RopeStyle::NeoX : cpu::RopeStyle::Normal};
            for (int t = 0; t < nTokens; ++t) cpu::rope(want.data() + size_t(t) * nHeads * headDim, nHeads, positions[t], params);
            DeviceBuffer dx = upload(x);
            DeviceBuffer dPositions = upload(positions);
            expectOk(rope(stream(), dx.as<float>(), nTokens, nHeads, dPositions.as<int32_t>(),
                          {headDim, ropeDim, 500000.0f, neox}));
            const std::vector<float> got = download<float>(dx, x.size());
            for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6f) << (neox ? "neox " : "normal ") << i;
        }
    }
}

TEST_F(ElementwiseOps, SwigluAndResidualAddsMatchTheCpu) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t nRows = 7;
    const int64_t n = 1000;
    const std::vector<float> gate = randomFloats(rng, nRows * n, 8.0f);
    const std::vector<float> up = randomFloats(rng, nRows * n, 2.0f);
    const std::vector<float> bias = randomFloats(rng, n);
    std::vector<float> want(gate.size());
    cpu::swiglu(gate.data(), up.data(), want.data(), int64_t(gate.size()));
    DeviceBuffer dGate = upload(gate);
    DeviceBuffer dUp = upload(up);
    DeviceBuffer dBias = upload(bias);
    expectOk(swiglu(stream(), dGate.as<float>(), dUp.as<float>(), dGate.as<float>(), int64_t(gate.size())));
    std::vector<float> got = download<float>(dGate, gate.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << i;

    // up += swiglu result, then + bias per row: exact float adds.
    std::vector<float> sum = up;
    cpu::addInPlace(sum.data(), got.data(), int64_t(sum.size()));
    for (int64_t r = 0; r < nRows; ++r) cpu::addInPlace(sum.data() + r * n, bias.data(), n);
    expectOk(add(stream(), dUp.as<float>(), dGate.as<float>(), int64_t(up.size())));
    expectOk(addBias(stream(), dUp.as<float>(), dBias.as<float>(), nRows, n));
    EXPECT_EQ(download<float>(dUp, up.size()), sum);
}

// Gemma's operations: the GELU-gated feed-forward, the embedding scale
// (exact) and soft-capping, in place, against the CPU's.
TEST_F(ElementwiseOps, GegluScaleAndSoftcapMatchTheCpu) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int64_t n = 7001;
    const std::vector<float> gate = randomFloats(rng, size_t(n), 8.0f);
    const std::vector<float> up = randomFloats(rng, size_t(n), 2.0f);
    std::vector<float> want(static_cast<size_t>(n));
    cpu::geglu(gate.data(), up.data(), want.data(), n);
    DeviceBuffer dGate = upload(gate);
    DeviceBuffer dUp = upload(up);
    expectOk(geglu(stream(), dGate.as<float>(), dUp.as<float>(), dGate.as<float>(), n));
    std::vector<float> got = download<float>(dGate, size_t(n));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << i;

    const std::vector<float> x = randomFloats(rng, size_t(n), 100.0f);
    want = x;
    for (float& v : want) v *= 39.191835f;  // CpuOps::scale
    DeviceBuffer dX = upload(x);
    expectOk(scale(stream(), dX.as<float>(), 39.191835f, n));
    EXPECT_EQ(download<float>(dX, size_t(n)), want);

    want = x;
    cpu::softcap(want.data(), n, 30.0f);
    dX = upload(x);
    expectOk(softcap(stream(), dX.as<float>(), 30.0f, n));
    got = download<float>(dX, size_t(n));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * 30.0f) << i;
}

TEST_F(ElementwiseOps, StoreKvWritesF16RowsToTheirSlotsAsTheCpuDoes) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int nKvHeads = 2;
    const int blockSize = 16;
    const int headDim = 64;
    const int numBlocks = 6;
    const size_t poolElements = size_t(numBlocks) * nKvHeads * blockSize * headDim;
    const std::vector<int32_t> slots = {0, 17, 95, 40, 41};
    const int nTokens = int(slots.size());
    const std::vector<float> k = randomFloats(rng, size_t(nTokens) * nKvHeads * headDim, 4.0f);
    const std::vector<float> v = randomFloats(rng, k.size(), 4.0f);
    std::vector<uint16_t> wantK(poolElements, 0);
    std::vector<uint16_t> wantV(poolElements, 0);
    const cpu::PagedKvView view{DType::F16, wantK.data(), wantV.data(), nKvHeads, blockSize, headDim};
    cpu::storeKv(view, wantK.data(), wantV.data(), k.data(), v.data(), slots.data(), nTokens);

    DeviceBuffer dK = upload(std::vector<uint16_t>(poolElements, 0));
    DeviceBuffer dV = upload(std::vector<uint16_t>(poolElements, 0));
    // A padding slot (-1) writes nothing.
    std::vector<int32_t> padded = slots;
    padded.push_back(-1);
    std::vector<float> kPadded = k;
    kPadded.resize(k.size() + size_t(nKvHeads) * headDim, 1.0f);
    std::vector<float> vPadded = v;
    vPadded.resize(kPadded.size(), 1.0f);
    DeviceBuffer dKeys = upload(kPadded);
    DeviceBuffer dValues = upload(vPadded);
    DeviceBuffer dSlots = upload(padded);
    const DeviceKvView pools{dK.data(), dV.data(), nKvHeads, blockSize, headDim};
    expectOk(storeKv(stream(), pools, dK.data(), dV.data(), dKeys.as<float>(), dValues.as<float>(),
                     dSlots.as<int32_t>(), int(padded.size())));
    EXPECT_EQ(download<uint16_t>(dK, poolElements), wantK);
    EXPECT_EQ(download<uint16_t>(dV, poolElements), wantV);
}

// Q8_0 pools: storeKv and the fused RoPE and store write the bytes of the
// CPU's store (each block's f16 scale and int8s) at the tokens' slots, the
// fused kernel those of k as rope() rotates it.
TEST_F(ElementwiseOps, StoreKvWritesQ8RowsAsTheCpuDoes) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int nHeads = 8;
    const int nKvHeads = 2;
    const int blockSize = 16;
    const int headDim = 128;
    const int numBlocks = 6;
    const size_t poolBytes = size_t(numBlocks) * nKvHeads * blockSize * (headDim / 32 * 34);
    const std::vector<int32_t> slots = {0, 17, 95, 40};
    const std::vector<int32_t> positions = {0, 17, 95, 4000};
    const int nTokens = int(slots.size());
    const std::vector<float> q = randomFloats(rng, size_t(nTokens) * nHeads * headDim, 4.0f);
    const std::vector<float> k = randomFloats(rng, size_t(nTokens) * nKvHeads * headDim, 4.0f);
    const std::vector<float> v = randomFloats(rng, k.size(), 4.0f);
    const RopeShape shape{headDim, headDim, 1e6f, true};
    DeviceBuffer dPositions = upload(positions);
    DeviceBuffer dRotated = upload(k);
    expectOk(rope(stream(), dRotated.as<float>(), nTokens, nKvHeads, dPositions.as<int32_t>(), shape));
    const std::vector<float> rotated = download<float>(dRotated, k.size());
    for (const bool fused : {false, true}) {
        SCOPED_TRACE(fused ? "ropeStoreKv" : "storeKv");
        const std::vector<float>& stored = fused ? rotated : k;
        std::vector<uint8_t> wantK(poolBytes, 0);
        std::vector<uint8_t> wantV(poolBytes, 0);
        const cpu::PagedKvView view{DType::Q8_0, wantK.data(), wantV.data(), nKvHeads, blockSize, headDim};
        cpu::storeKv(view, wantK.data(), wantV.data(), stored.data(), v.data(), slots.data(), nTokens);

        DeviceBuffer dK = upload(std::vector<uint8_t>(poolBytes, 0));
        DeviceBuffer dV = upload(std::vector<uint8_t>(poolBytes, 0));
        DeviceBuffer dQ = upload(q);
        DeviceBuffer dKeys = upload(k);
        DeviceBuffer dValues = upload(v);
        DeviceBuffer dSlots = upload(slots);
        const DeviceKvView pools{dK.data(), dV.data(), nKvHeads, blockSize, headDim, true};
        if (fused) {
            expectOk(ropeStoreKv(stream(), dQ.as<float>(), dKeys.as<float>(), dValues.as<float>(), nTokens, nHeads,
                                 dPositions.as<int32_t>(), dSlots.as<int32_t>(), shape, pools, dK.data(), dV.data()));
        } else {
            expectOk(storeKv(stream(), pools, dK.data(), dV.data(), dKeys.as<float>(), dValues.as<float>(),
                             dSlots.as<int32_t>(), nTokens));
        }
        EXPECT_EQ(download<uint8_t>(dK, poolBytes), wantK);
        EXPECT_EQ(download<uint8_t>(dV, poolBytes), wantV);
    }
}

// The fused RoPE and K/V store: the bits of rope() on q and k and storeKv()
// after them, in q, k and both pools (GQA, NeoX, a partial rotary dim).
TEST_F(ElementwiseOps, RopeStoreKvGivesTheBitsOfRopeThenStoreKv) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int nHeads = 8;
    const int nKvHeads = 2;
    const int blockSize = 16;
    const int numBlocks = 4;
    const std::vector<int32_t> positions = {3, 40000, 17, 4095};
    const std::vector<int32_t> slots = {0, 17, -1, 63};
    const int nTokens = int(positions.size());
    for (auto [headDim, ropeDim, neox] : {std::tuple{128, 128, false}, std::tuple{80, 32, true}}) {
        SCOPED_TRACE(testing::Message() << "head dim " << headDim << ", rope dim " << ropeDim);
        const RopeShape shape{headDim, ropeDim, 1e6f, neox};
        const size_t poolElements = size_t(numBlocks) * nKvHeads * blockSize * headDim;
        const std::vector<float> q = randomFloats(rng, size_t(nTokens) * nHeads * headDim);
        const std::vector<float> k = randomFloats(rng, size_t(nTokens) * nKvHeads * headDim);
        const std::vector<float> v = randomFloats(rng, k.size());
        DeviceBuffer dPositions = upload(positions);
        DeviceBuffer dSlots = upload(slots);
        DeviceBuffer dv = upload(v);
        struct Run {
            DeviceBuffer q, k, kPool, vPool;
        };
        auto fresh = [&] {
            return Run{upload(q), upload(k), upload(std::vector<uint16_t>(poolElements, 0x7e5a)),
                       upload(std::vector<uint16_t>(poolElements, 0x7e5a))};
        };
        Run separate = fresh();
        const DeviceKvView pools{separate.kPool.data(), separate.vPool.data(), nKvHeads, blockSize, headDim};
        expectOk(rope(stream(), separate.q.as<float>(), nTokens, nHeads, dPositions.as<int32_t>(), shape));
        expectOk(rope(stream(), separate.k.as<float>(), nTokens, nKvHeads, dPositions.as<int32_t>(), shape));
        expectOk(storeKv(stream(), pools, separate.kPool.data(), separate.vPool.data(), separate.k.as<float>(),
                         dv.as<float>(), dSlots.as<int32_t>(), nTokens));
        Run fused = fresh();
        expectOk(ropeStoreKv(stream(), fused.q.as<float>(), fused.k.as<float>(), dv.as<float>(), nTokens, nHeads,
                             dPositions.as<int32_t>(), dSlots.as<int32_t>(), shape, pools, fused.kPool.data(),
                             fused.vPool.data()));
        EXPECT_EQ(download<uint32_t>(fused.q, q.size()), download<uint32_t>(separate.q, q.size()));
        EXPECT_EQ(download<uint32_t>(fused.k, k.size()), download<uint32_t>(separate.k, k.size()));
        EXPECT_EQ(download<uint16_t>(fused.kPool, poolElements), download<uint16_t>(separate.kPool, poolElements));
        EXPECT_EQ(download<uint16_t>(fused.vPool, poolElements), download<uint16_t>(separate.vPool, poolElements));
    }
}

TEST_F(ElementwiseOps, LaunchersRejectBadShapes) {
    EXPECT_FALSE(rmsNorm(stream(), nullptr, nullptr, nullptr, 1, 0, 1e-5f).ok());
    EXPECT_FALSE(rope(stream(), nullptr, 1, 1, nullptr, {64, 65, 10000.0f, false}).ok());
    // A K-quant row is whole 256-element blocks.
    EXPECT_FALSE(embedRows(stream(), {DType::Q4_K, nullptr, 1, 128}, nullptr, 1, nullptr).ok());
    EXPECT_TRUE(swiglu(stream(), nullptr, nullptr, nullptr, 0).ok());
    EXPECT_FALSE(softcap(stream(), nullptr, 0.0f, 1).ok());
}

}  // namespace
}  // namespace pagoda::cuda::test

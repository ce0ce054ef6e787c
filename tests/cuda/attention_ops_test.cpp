// Paged attention on the device against the CPU's attention on the same f16
// pools: the split-context decode kernel (long contexts split across CTAs),
// the tensor-core prefill kernel, the naive materialized path and the
// expanded-KV (GQA off) baseline; MHA, GQA and MQA; head dims with and
// without a prefill kernel; full causal and sliding window with released
// blocks below it; soft-capped scores; f16 and Q8_0 pools.

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/kv_store.h"
#include "tests/cuda/cuda_test_util.h"

namespace pagoda::cuda::test {
namespace {

using AttentionOps = CudaKernelTest;

struct Case {
    int nHeads;
    int nKvHeads;
    int headDim;
    int window;
    float softcap = 0.0f;  // > 0: the scores soft-capped (Gemma 2)
    bool q8 = false;       // Q8_0 pools (head dims that are multiples of 32)
};

struct Chunk {
    int nQueries;
    int startPos;
};

// Decode tokens at a long and a short context, a prefill chunk from the
// start, one continuing a sequence, and a two-query chunk.
const Chunk kChunks[] = {{1, 900}, {1, 5}, {70, 0}, {20, 50}, {2, 300}};
constexpr int kBlockSize = 16;

void runCase(AttentionOps& test, const Case& c, bool naive, bool expandKv, size_t sharedPerSm,
             std::mt19937_64& rng) {
    SCOPED_TRACE(testing::Message() << c.nHeads << " heads / " << c.nKvHeads << " KV heads, head dim " << c.headDim
                                    << ", window " << c.window << ", softcap " << c.softcap
                                    << (c.q8 ? ", q8_0 KV" : "")
                                    << (naive ? ", naive" : ", flash")
                                    << (expandKv ? ", expanded KV" : "") << ", prefill K/V tiles of "
                                    << prefillKvTile(c.headDim, sharedPerSm));
    // Every sequence's blocks, shuffled over the pool.
    std::vector<std::vector<int32_t>> tables;
    int numBlocks = 0;
    for (const Chunk& chunk : kChunks) {
        const int blocks = (chunk.startPos + chunk.nQueries + kBlockSize - 1) / kBlockSize;
        tables.emplace_back(size_t(blocks));
        std::iota(tables.back().begin(), tables.back().end(), numBlocks);
        numBlocks += blocks;
    }
    std::vector<int32_t> permutation(size_t(numBlocks), 0);
    std::iota(permutation.begin(), permutation.end(), 0);
    std::shuffle(permutation.begin(), permutation.end(), rng);
    for (auto& table : tables) {
        for (int32_t& block : table) block = permutation[size_t(block)];
    }

    const size_t rowBytes = c.q8 ? size_t(c.headDim) / 32 * 34 : 2 * size_t(c.headDim);
    const size_t poolBytes = size_t(numBlocks) * c.nKvHeads * kBlockSize * rowBytes;
    std::vector<uint8_t> kPool(poolBytes, 0);
    std::vector<uint8_t> vPool(poolBytes, 0);
    const cpu::PagedKvView view{c.q8 ? DType::Q8_0 : DType::F16, kPool.data(), vPool.data(), c.nKvHeads, kBlockSize,
                                c.headDim};
    std::vector<cpu::AttentionSequence> sequences;
    std::vector<AttentionSequenceSpec> specs;
    int nTokens = 0;
    for (size_t s = 0; s < std::size(kChunks); ++s) {
        const Chunk& chunk = kChunks[s];
        const int length = chunk.startPos + chunk.nQueries;
        const std::vector<float> k = randomFloats(rng, size_t(length) * c.nKvHeads * c.headDim);
        const std::vector<float> v = randomFloats(rng, k.size());
        std::vector<int32_t> slots(static_cast<size_t>(length));
        for (int p = 0; p < length; ++p) slots[p] = tables[s][p / kBlockSize] * kBlockSize + p % kBlockSize;
        cpu::storeKv(view, kPool.data(), vPool.data(), k.data(), v.data(), slots.data(), length);
        // Blocks wholly below the first query's window are released.
        if (c.window > 0) {
            const int firstKept = std::max(0, chunk.startPos - c.window + 1) / kBlockSize;
            for (int b = 0; b < firstKept; ++b) tables[s][b] = -1;
        }
        sequences.push_back({nTokens, chunk.nQueries, chunk.startPos, tables[s].data()});
        specs.push_back({nTokens, chunk.nQueries, chunk.startPos, tables[s].data(), int(tables[s].size())});
        nTokens += chunk.nQueries;
    }
    const std::vector<float> q = randomFloats(rng, size_t(nTokens) * c.nHeads * c.headDim, 2.0f);
    std::vector<float> want(q.size());
    cpu::AttentionParams params;
    params.q = q.data();
    params.out = want.data();
    params.nHeads = c.nHeads;
    params.scale = 1.0f / std::sqrt(float(c.headDim));
    params.window = c.window;
    params.softcap = c.softcap;
    params.kv = view;
    params.sequences = sequences;
    cpu::attention(cpu::CpuContext{}, params);

    AttentionPlanOptions options;
    options.naive = naive;
    options.expandKv = expandKv;
    options.smCount = test.context().device().smCount;
    options.sharedBytesPerSm = sharedPerSm;
    const StatusOr<int> resident = decodeCtasPerSm(c.headDim, expandKv ? 1 : c.nHeads / c.nKvHeads, c.q8);
    ASSERT_TRUE(resident.ok()) << resident.status().message();
    options.decodeCtasPerSm = resident.value();
    auto plan = planAttention({c.nHeads, c.nKvHeads, c.headDim, kBlockSize, c.window}, specs, options);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    DeviceBuffer dK = test.upload(kPool);
    DeviceBuffer dV = test.upload(vPool);
    DeviceBuffer dQ = test.upload(q);
    DeviceBuffer dOut = test.upload(std::vector<float>(q.size(), -7.0f));
    DeviceBuffer dPacked = test.upload(plan->packed);
    DeviceBuffer workspace = test.upload(std::vector<uint8_t>(std::max<size_t>(1, plan->workspaceBytes())));
    AttentionArgs args;
    args.q = dQ.as<float>();
    args.out = dOut.as<float>();
    args.nHeads = c.nHeads;
    args.scale = params.scale;
    args.window = c.window;
    args.softcap = c.softcap;
    args.kv = {dK.data(), dV.data(), c.nKvHeads, kBlockSize, c.headDim, c.q8};
    CudaKernelTest::expectOk(runAttention(test.stream(), args, plan.value(), dPacked.as<int32_t>(), workspace.data()));
    const std::vector<float> got = test.download<float>(dOut, q.size());

    // The tensor-core prefill rounds q and the probabilities (and Q8_0 K/V
    // rows) to f16.
    const bool tensorCores = !naive && hasPrefillKernel(c.headDim);
    int row = 0;
    for (const Chunk& chunk : kChunks) {
        const float tolerance = tensorCores && chunk.nQueries > 1 ? 4e-3f : 2e-4f;
        for (int i = 0; i < chunk.nQueries; ++i, ++row) {
            for (int e = 0; e < c.nHeads * c.headDim; ++e) {
                const size_t at = size_t(row) * c.nHeads * c.headDim + e;
                ASSERT_NEAR(got[at], want[at], tolerance) << "query row " << row << ", element " << e;
            }
        }
    }
}

TEST_F(AttentionOps, MatchesTheCpuOnEveryPath) {
    const uint64_t seed = pagoda::test::freshSeed();
    SCOPED_TRACE(pagoda::test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (int headDim : {64, 128, 16, 80}) {
        // MHA; GQA 4:1; MQA with more query heads than one decode CTA takes.
        for (auto [heads, kvHeads] : {std::pair{4, 4}, std::pair{8, 2}, std::pair{12, 1}}) {
            // Full and windowed; soft-capped scores (a cap of 2 bends most of
            // these); Q8_0 pools where the head dim allows.
            for (auto [window, softcap, q8] : {std::tuple{0, 0.0f, false}, std::tuple{37, 0.0f, false},
                                               std::tuple{0, 2.0f, false}, std::tuple{37, 0.0f, true}}) {
                if (q8 && headDim % 32 != 0) continue;
                for (bool naive : {false, true}) {
                    for (bool expandKv : {false, true}) {
                        // The prefill tile size this device gets, and at head
                        // dim 128 on a device with room for 64 also 32.
                        const size_t sharedSizes[] = {context().sharedBytesPerSm(), 0};
                        const bool oneTile = prefillKvTile(headDim, sharedSizes[0]) == prefillKvTile(headDim, 0);
                        for (size_t sharedPerSm : sharedSizes) {
                            if (sharedPerSm == 0 && oneTile) continue;
                            runCase(*this, {heads, kvHeads, headDim, window, softcap, q8}, naive, expandKv,
                                    sharedPerSm, rng);
                            if (HasFatalFailure()) return;
                        }
                    }
                }
            }
        }
    }
}

// What the split planner is given: the occupancy of the very kernel the
// launcher picks, at least one CTA and no more than an SM's 32.
TEST_F(AttentionOps, DecodeOccupancyIsKnownForEveryKernel) {
    for (int headDim : {16, 64, 80, 128, 256}) {
        for (int group : {1, 2, 3, 4, 8, 12}) {
            for (const bool q8 : {false, true}) {
                if (q8 && headDim % 32 != 0) continue;
                const StatusOr<int> ctas = decodeCtasPerSm(headDim, group, q8);
                ASSERT_TRUE(ctas.ok()) << ctas.status().message();
                EXPECT_GE(ctas.value(), 1) << "head dim " << headDim << ", group " << group << ", q8 " << q8;
                EXPECT_LE(ctas.value(), 32) << "head dim " << headDim << ", group " << group << ", q8 " << q8;
            }
        }
    }
    const StatusOr<int> tooWide = decodeCtasPerSm(300, 1);
    ASSERT_FALSE(tooWide.ok());
    EXPECT_NE(tooWide.status().message().find("no kernel for head dim 300"), std::string::npos);
}

}  // namespace
}  // namespace pagoda::cuda::test

// Host-side attention planning: routing of rows to the decode and prefill
// kernels, the flash-decoding split, packed descriptors, workspace sizes,
// expanded-KV tables and graph padding (no device needed).

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/cuda/attention_plan.h"

namespace pagoda::cuda {
namespace {

std::vector<int32_t> identityTable(int n) {
    std::vector<int32_t> table(size_t(n), 0);
    std::iota(table.begin(), table.end(), 0);
    return table;
}

TEST(DecodeSplits, CoverTheContextInWholeBlocks) {
    for (int context : {1, 15, 16, 17, 255, 256, 1000, 4096, 16384, 100000}) {
        for (int64_t ctas : {1, 8, 32, 200, 5000}) {
            for (int blockSize : {1, 16, 32}) {
                const DecodeSplitPlan plan = planDecodeSplits(context, ctas, 216, blockSize);
                SCOPED_TRACE(testing::Message() << "context " << context << ", ctas " << ctas << ", block " << blockSize);
                EXPECT_GE(plan.nSplits, 1);
                EXPECT_LE(plan.nSplits, kMaxSplits);
                EXPECT_EQ(plan.splitTokens % blockSize, 0);
                EXPECT_GE(int64_t(plan.nSplits) * plan.splitTokens, context);
                EXPECT_LT(int64_t(plan.nSplits - 1) * plan.splitTokens, context) << "an empty split";
            }
        }
    }
}

TEST(DecodeSplits, SplitLongContextsOfSmallBatchesAndNotShortOnes) {
    // One row, 8 KV heads, on 132 SMs of 2 resident CTAs: 8 CTAs would idle
    // the GPU. 32 splits fill 256 of the 264 places; 28 (224) are the
    // fewest within 85% of that.
    const DecodeSplitPlan longOne = planDecodeSplits(32768, 8, 264, 16);
    EXPECT_EQ(longOne.nSplits, 28);
    // Short contexts stay whole: a split streams at least kMinSplitTokens (64).
    EXPECT_EQ(planDecodeSplits(50, 8, 264, 16).nSplits, 1);
    EXPECT_EQ(planDecodeSplits(200, 8, 264, 16).nSplits, 4);
    EXPECT_EQ(planDecodeSplits(600, 8, 264, 16).nSplits, 10);
    // A batch that fills 80% of the resident CTAs is not split.
    EXPECT_EQ(planDecodeSplits(32768, 64 * 8, 264, 16).nSplits, 1);
    EXPECT_EQ(planDecodeSplits(32768, 212, 264, 16).nSplits, 1);
    // 211 CTAs (just under 80%) are split 5 ways: 1055 CTAs, all but one
    // of 4 waves.
    EXPECT_EQ(planDecodeSplits(32768, 211, 264, 16).nSplits, 5);
    EXPECT_EQ(planDecodeSplits(0, 8, 264, 16).nSplits, 1);
}

// Splits come in whole waves of the resident CTAs, as few as come within
// 85% of the best wave efficiency.
TEST(DecodeSplits, FillWholeWavesOfResidentCtas) {
    // 7b at batch 8 (256 CTAs) where 1188 are resident (9 per SM on 132):
    // 4 splits fill 86% of one wave; 5 would run a second wave of 92 CTAs.
    EXPECT_EQ(planDecodeSplits(3584, 256, 1188, 16).nSplits, 4);
    // The best is 23 splits (5888 CTAs: 99% of 5 waves), but 4 come within 85%.
    EXPECT_EQ(planDecodeSplits(3584, 256, 1188, 16).splitTokens, 896);
    // Where only 2 are resident per SM, 256 CTAs fill 97% of 264: no split.
    EXPECT_EQ(planDecodeSplits(3584, 256, 264, 16).nSplits, 1);
    // 7b at batch 1 (32 CTAs): kMaxSplits (32) fill 86% of one wave; 28
    // splits of 128 are the fewest within 85% of that.
    EXPECT_EQ(planDecodeSplits(3584, 32, 1188, 16).nSplits, 28);
    // The count is judged by the splits it gives, not the one asked for:
    // asking for 27 at 4096 gives splits of 160, so 26 of them.
    const DecodeSplitPlan graph = planDecodeSplits(4096, 32, 1188, 16);
    EXPECT_EQ(graph.nSplits, 29);
    EXPECT_EQ(graph.splitTokens, 144);
}

// The kernel cuts each row's own context over the plan's splits, so a row
// shorter than the planned context (a CUDA graph is planned for the
// model's whole context) still uses many of them.
TEST(DecodeSplits, EachRowSpreadsItsOwnContextOverThePlannedSplits) {
    for (int maxContext : {64, 1000, 4096, 32768}) {
        for (int64_t ctas : {1, 32, 200}) {
            const DecodeSplitPlan plan = planDecodeSplits(maxContext, ctas, 264, 16);
            EXPECT_EQ(decodeSplitTokens(maxContext, plan.nSplits, 16), plan.splitTokens);
            for (int context : {1, 63, 64, 65, 544, 1000, 4095, 4096, 32768}) {
                if (context > maxContext) continue;
                SCOPED_TRACE(testing::Message() << "plan for " << maxContext << " over " << ctas << " CTAs, row "
                                                << context);
                const int tokens = decodeSplitTokens(context, plan.nSplits, 16);
                EXPECT_EQ(tokens % 16, 0);
                EXPECT_GE(tokens, kMinSplitTokens);
                EXPECT_LE(tokens, plan.splitTokens);
                EXPECT_GE(int64_t(plan.nSplits) * tokens, context) << "positions past the last split";
                // Splits of the row's even share (at least 64) rounded up
                // to a whole block: at most 16 positions longer than the
                // share, so no fewer than n * context / (context + 16n).
                const int used = (context + tokens - 1) / tokens;
                const int64_t n = plan.nSplits;
                EXPECT_GE(used, std::min<int64_t>(n * context / (context + 16 * n), context / (kMinSplitTokens + 16)));
            }
        }
    }
    // A graph of 7b at batch 1 on an H200 (32 CTAs, 1188 resident) is
    // planned for 4096 positions: 29 splits of 144. A 544-position row
    // takes 9 of them, 64 positions each, where one uniform split size
    // would give it 4, the first 144 positions long.
    const DecodeSplitPlan graph = planDecodeSplits(4096, 32, 1188, 16);
    EXPECT_EQ(graph.nSplits, 29);
    EXPECT_EQ(decodeSplitTokens(544, graph.nSplits, 16), 64);
}

TEST(AttentionPlan, RoutesDecodeRowsAndPrefillTiles) {
    const AttentionGeometry g{8, 2, 128, 16, 0};
    const std::vector<int32_t> tableA = identityTable(10);
    const std::vector<int32_t> tableB = {20, 21, 22, 23, 24, 25, 26, 27, 28};
    const std::vector<int32_t> tableC = {30, 31};
    // A decode token at 150, a 130-token prefill chunk from 10, a decode token at 17.
    const std::vector<AttentionSequenceSpec> seqs = {
        {0, 1, 150, tableA.data(), 10}, {1, 130, 10, tableB.data(), 9}, {131, 1, 17, tableC.data(), 2}};
    AttentionPlanOptions options;
    options.smCount = 100;
    auto plan = planAttention(g, seqs, options);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const AttentionPlan& p = plan.value();
    EXPECT_EQ(p.nSeqs, 3);
    EXPECT_EQ(p.nRows, 2);
    EXPECT_EQ(p.nTiles, 2);  // 128 + 2 queries
    EXPECT_EQ(p.kvHeads, 2);
    const std::vector<int32_t> seqDescs(p.packed.begin(), p.packed.begin() + 12);
    EXPECT_EQ(seqDescs, (std::vector<int32_t>{0, 1, 150, 0, 1, 130, 10, 10, 131, 1, 17, 19}));
    EXPECT_EQ(p.tableOffset, 12u);
    EXPECT_EQ(p.packed[p.tableOffset + 10], 20);  // sequence 1's table follows sequence 0's 10 entries
    const std::vector<int32_t> rows(p.packed.begin() + long(p.rowOffset), p.packed.begin() + long(p.tileOffset));
    EXPECT_EQ(rows, (std::vector<int32_t>{0, 0, 2, 0}));
    const std::vector<int32_t> tiles(p.packed.begin() + long(p.tileOffset), p.packed.begin() + long(p.copyOffset));
    // Longest first: queries 128-129 read positions 0-139, queries 0-127 0-137.
    EXPECT_EQ(tiles, (std::vector<int32_t>{1, 128, 1, 0}));
    // Decode context 151 on 2 rows x 2 KV heads (4 CTAs for 2 x 100 SMs):
    // 3 splits of 64 positions, partials per row, head and split.
    EXPECT_EQ(p.split.nSplits, 3);
    EXPECT_EQ(p.split.splitTokens, 64);
    EXPECT_EQ(p.partialBytes, size_t(2) * 8 * 3 * (2 + 128) * sizeof(float));
    EXPECT_GE(p.workspaceBytes(), p.partialBytes);
}

TEST(AttentionPlan, PrefillTilesOfEverySequenceAreOrderedByThePositionsTheyRead) {
    const std::vector<int32_t> tableA = identityTable(19);
    const std::vector<int32_t> tableB = identityTable(66);
    // 300 queries from position 0 (tiles reading 128, 256 and 300
    // positions); 50 from position 1000 (1050).
    const std::vector<AttentionSequenceSpec> seqs = {{0, 300, 0, tableA.data(), 19},
                                                     {300, 50, 1000, tableB.data(), 66}};
    auto tilesOf = [&](int window) {
        auto plan = planAttention({4, 4, 64, 16, window}, seqs, {});
        EXPECT_TRUE(plan.ok()) << plan.status().message();
        return std::vector<int32_t>(plan->packed.begin() + long(plan->tileOffset),
                                    plan->packed.begin() + long(plan->copyOffset));
    };
    EXPECT_EQ(tilesOf(0), (std::vector<int32_t>{1, 0, 0, 256, 0, 128, 0, 0}));
    // A window of 200: 256 positions (queries 128-255), 249 (1000-1049),
    // 243 (256-299), 128 (0-127).
    EXPECT_EQ(tilesOf(200), (std::vector<int32_t>{0, 128, 1, 0, 0, 256, 0, 0}));
}

TEST(AttentionPlan, HeadDimsWithoutATensorCoreKernelRunPrefillRowsThroughTheDecodeKernel) {
    const AttentionGeometry g{4, 4, 80, 16, 0};
    const std::vector<int32_t> table = identityTable(2);
    auto plan = planAttention(g, {{0, 20, 0, table.data(), 2}}, {});
    ASSERT_TRUE(plan.ok());
    EXPECT_EQ(plan->nTiles, 0);
    EXPECT_EQ(plan->nRows, 20);
    EXPECT_FALSE(hasPrefillKernel(80));
    EXPECT_TRUE(hasPrefillKernel(64));
    EXPECT_TRUE(hasPrefillKernel(128));
}

TEST(AttentionPlan, PrefillKvTilesAre64WhereTwoCtasOfThemFitAnSm) {
    // Shared memory per SM (CUDA programming guide, compute capabilities):
    // 228 KiB on sm_90, 164 KiB on sm_80, 100 KiB on sm_86 and sm_89.
    EXPECT_EQ(prefillKvTile(128, 228 * 1024), 64);
    EXPECT_EQ(prefillKvTile(128, 164 * 1024), 32);
    EXPECT_EQ(prefillKvTile(128, 100 * 1024), 32);
    EXPECT_EQ(prefillKvTile(128, 0), 32);
    EXPECT_EQ(prefillKvTile(64, 100 * 1024), 64);
    // The bound: two CTAs and the runtime's 1 KiB reserved for each.
    const size_t twoCtas = 2 * (prefillSharedBytes(128, 64) + 1024);
    EXPECT_EQ(prefillKvTile(128, twoCtas), 64);
    EXPECT_EQ(prefillKvTile(128, twoCtas - 1), 32);
    EXPECT_EQ(prefillSharedBytes(128, 64), size_t(128 + 4 * 64) * 136 * 2);

    const AttentionGeometry g{4, 4, 128, 16, 0};
    const std::vector<int32_t> table = identityTable(2);
    AttentionPlanOptions options;
    options.sharedBytesPerSm = 228 * 1024;
    auto hopper = planAttention(g, {{0, 20, 0, table.data(), 2}}, options);
    ASSERT_TRUE(hopper.ok());
    EXPECT_EQ(hopper->prefillKvTile, 64);
    options.sharedBytesPerSm = 164 * 1024;
    auto ampere = planAttention(g, {{0, 20, 0, table.data(), 2}}, options);
    ASSERT_TRUE(ampere.ok());
    EXPECT_EQ(ampere->prefillKvTile, 32);
}

TEST(AttentionPlan, DecodeCtasTakeTheirGroupRoundedUpToAPowerOfTwo) {
    EXPECT_EQ(decodeHeadsPerCta(128, 1), 1);  // MHA: one head's state per CTA
    EXPECT_EQ(decodeHeadsPerCta(128, 2), 2);
    EXPECT_EQ(decodeHeadsPerCta(64, 3), 4);
    EXPECT_EQ(decodeHeadsPerCta(128, 4), 4);
    EXPECT_EQ(decodeHeadsPerCta(128, 7), 8);
    EXPECT_EQ(decodeHeadsPerCta(64, 32), 8);
    EXPECT_EQ(decodeHeadsPerCta(80, 12), 4);
    EXPECT_EQ(decodeHeadsPerCta(96, 1), 1);
}

TEST(AttentionPlan, SplitPartialsAreSizedPerRowHeadAndSplit) {
    const AttentionGeometry g{32, 8, 128, 16, 0};
    const std::vector<int32_t> table = identityTable(256);
    AttentionPlanOptions options;
    options.smCount = 132;
    auto plan = planAttention(g, {{0, 1, 4000, table.data(), 256}}, options);
    ASSERT_TRUE(plan.ok());
    ASSERT_GT(plan->split.nSplits, 1);
    EXPECT_EQ(plan->partialBytes, size_t(1) * 32 * plan->split.nSplits * (2 + 128) * sizeof(float));
    EXPECT_GE(plan->workspaceBytes(), plan->partialBytes);
}

// The splits are planned for the resident CTAs the backend reports: 8 MHA
// rows of 32 heads (256 CTAs) fill 2 per SM of 132, not 9.
TEST(AttentionPlan, PlansSplitsForTheDecodeCtasAnSmHolds) {
    const AttentionGeometry g{32, 32, 128, 16, 0};
    const std::vector<int32_t> table = identityTable(224);
    std::vector<AttentionSequenceSpec> seqs(8, {0, 1, 3583, table.data(), 224});
    for (int r = 0; r < 8; ++r) seqs[size_t(r)].queryOffset = r;
    AttentionPlanOptions options;
    options.smCount = 132;
    options.decodeCtasPerSm = 2;
    auto two = planAttention(g, seqs, options);
    options.decodeCtasPerSm = 9;
    auto nine = planAttention(g, seqs, options);
    ASSERT_TRUE(two.ok() && nine.ok());
    EXPECT_EQ(two->split.nSplits, 1);
    EXPECT_EQ(nine->split.nSplits, 4);
    EXPECT_EQ(nine->partialBytes, size_t(8) * 32 * 4 * (2 + 128) * sizeof(float));
}

TEST(AttentionPlan, NaiveRunsEveryRowAndSizesTheScoreMatrixByTheLongestContext) {
    const AttentionGeometry g{4, 2, 64, 16, 0};
    const std::vector<int32_t> table = identityTable(8);
    AttentionPlanOptions options;
    options.naive = true;
    auto plan = planAttention(g, {{0, 1, 99, table.data(), 7}, {1, 40, 0, table.data(), 3}}, options);
    ASSERT_TRUE(plan.ok());
    EXPECT_TRUE(plan->naive);
    EXPECT_EQ(plan->nRows, 41);
    EXPECT_EQ(plan->nTiles, 0);
    EXPECT_EQ(plan->naiveContext, 100);
    EXPECT_EQ(plan->scoreBytes, size_t(41) * 4 * 100 * sizeof(float));
}

TEST(AttentionPlan, SlidingWindowBoundsTheContextAndAllowsReleasedBlocksBelowIt) {
    const AttentionGeometry g{2, 1, 64, 16, 32};
    // Blocks 0-4 left the window of a query at position 100 (window start 69).
    const std::vector<int32_t> table = {-1, -1, -1, -1, 7, 8, 9};
    auto plan = planAttention(g, {{0, 1, 100, table.data(), 7}}, {});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const std::vector<int32_t> released = {-1, -1, -1, -1, -1, 8, 9};
    auto bad = planAttention(g, {{0, 1, 100, released.data(), 7}}, {});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().message(), "attention sequence 0: block 4 is released but inside the window");
}

TEST(AttentionPlan, ExpandedKvRenumbersTheBlocksAndListsTheCopies) {
    const AttentionGeometry g{8, 2, 64, 16, 0};
    const std::vector<int32_t> a = {5, 9};
    const std::vector<int32_t> b = {3};
    AttentionPlanOptions options;
    options.expandKv = true;
    auto plan = planAttention(g, {{0, 1, 20, a.data(), 2}, {1, 1, 3, b.data(), 1}}, options);
    ASSERT_TRUE(plan.ok());
    EXPECT_TRUE(plan->expanded);
    EXPECT_EQ(plan->kvHeads, 8);
    EXPECT_EQ(plan->expandedBlocks, 3);
    EXPECT_EQ(plan->nCopies, 3);
    const std::vector<int32_t> tables(plan->packed.begin() + long(plan->tableOffset),
                                      plan->packed.begin() + long(plan->rowOffset));
    EXPECT_EQ(tables, (std::vector<int32_t>{0, 1, 2}));
    const std::vector<int32_t> copies(plan->packed.begin() + long(plan->copyOffset), plan->packed.end());
    EXPECT_EQ(copies, (std::vector<int32_t>{5, 0, 9, 1, 3, 2}));
    EXPECT_EQ(plan->expandedBytes, size_t(2) * 3 * 8 * 16 * 64 * 2);
    const AttentionWorkspaceLayout layout = attentionWorkspaceLayout(plan.value());
    EXPECT_EQ(layout.expandedK % 256, 0u);
    EXPECT_EQ(layout.expandedV - layout.expandedK, plan->expandedBytes / 2);
    EXPECT_GE(layout.total, plan->expandedBytes);
}

TEST(AttentionPlan, ExpandedKvCopiesMultiHeadKvToo) {
    // The baseline copies whatever the head layout: MHA included.
    const std::vector<int32_t> a = {4};
    AttentionPlanOptions options;
    options.expandKv = true;
    auto plan = planAttention({4, 4, 64, 16, 0}, {{0, 1, 3, a.data(), 1}}, options);
    ASSERT_TRUE(plan.ok());
    EXPECT_TRUE(plan->expanded);
    EXPECT_EQ(plan->nCopies, 1);
    EXPECT_EQ(plan->packed[plan->tableOffset], 0);
}

TEST(AttentionPlan, GraphPaddingKeepsTheLayoutFixed) {
    const AttentionGeometry g{4, 4, 128, 16, 0};
    const std::vector<int32_t> t0 = identityTable(3);
    const std::vector<int32_t> t1 = {7};
    AttentionPlanOptions options;
    options.fixedContext = 4096;
    options.padRowsTo = 8;
    options.fixedSeqs = 8;
    options.fixedTableInts = 8 * 256;
    auto small = planAttention(g, {{0, 1, 40, t0.data(), 3}, {1, 1, 5, t1.data(), 1}}, options);
    const std::vector<int32_t> t2 = identityTable(200);
    auto large = planAttention(g, {{0, 1, 3000, t2.data(), 200}}, options);
    ASSERT_TRUE(small.ok() && large.ok());
    for (const AttentionPlan* p : {&small.value(), &large.value()}) {
        EXPECT_EQ(p->nRows, 8);
        EXPECT_EQ(p->tableOffset, 32u);
        EXPECT_EQ(p->rowOffset, 32u + 8 * 256);
        EXPECT_EQ(p->packed.size(), 32u + 8 * 256 + 16);
    }
    EXPECT_EQ(small->split.nSplits, large->split.nSplits);
    EXPECT_EQ(small->split.splitTokens, large->split.splitTokens);
    // Padding rows: sequence -1 and the batch rows after the real tokens.
    const std::vector<int32_t> rows(small->packed.begin() + long(small->rowOffset), small->packed.end());
    EXPECT_EQ(rows, (std::vector<int32_t>{0, 0, 1, 0, -1, 2, -1, 3, -1, 4, -1, 5, -1, 6, -1, 7}));

    const std::vector<int32_t> tooLong = identityTable(300);
    auto beyond = planAttention(g, {{0, 1, 4500, tooLong.data(), 300}}, options);
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.status().message(), "attention: a decode row sees 4501 positions, the fixed plan covers 4096");
}

TEST(AttentionPlan, RejectsBadGeometryAndShortBlockTables) {
    const std::vector<int32_t> table = identityTable(2);
    auto heads = planAttention({6, 4, 64, 16, 0}, {}, {});
    ASSERT_FALSE(heads.ok());
    EXPECT_EQ(heads.status().message(), "attention: 6 query heads over 4 KV heads");
    auto headDim = planAttention({4, 4, 512, 16, 0}, {}, {});
    ASSERT_FALSE(headDim.ok());
    EXPECT_EQ(headDim.status().message(), "unsupported head size: 512 (even, at most 256)");
    // The kernels split positions into block and slot with a shift.
    auto blockSize = planAttention({4, 4, 64, 24, 0}, {}, {});
    ASSERT_FALSE(blockSize.ok());
    EXPECT_EQ(blockSize.status().message(), "attention: block size 24 (a power of two), window 0");
    auto shortTable = planAttention({4, 4, 64, 16, 0}, {{0, 4, 30, table.data(), 2}}, {});
    ASSERT_FALSE(shortTable.ok());
    EXPECT_EQ(shortTable.status().message(),
              "attention sequence 0: block table of 2 blocks, positions up to 33 need 3");
}

}  // namespace
}  // namespace pagoda::cuda

// The block manager's contract, case by case: slot allocation, no-space
// results, prefix reuse, sharing, fork with copy-on-write, sliding window,
// contiguous reservation, capacity answers, eviction order, preemption and
// the error values.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "cache_test_util.h"
#include "engine/cache/block_manager.h"

namespace pagoda {
namespace {

using test::concat;
using test::iota;
using test::makeManager;
using testing::ElementsAre;
using testing::HasSubstr;

BlockManagerConfig paged(int numBlocks, bool prefixCaching = true) {
    BlockManagerConfig c;
    c.numBlocks = numBlocks;
    c.blockSize = 8;
    c.maxContext = 64;
    c.prefixCaching = prefixCaching;
    c.watermark = 0;
    return c;
}

std::vector<int32_t> table(const BlockManager& m, SeqId seq) {
    auto t = m.blockTable(seq);
    EXPECT_TRUE(t) << t.error().message;
    return t ? std::vector<int32_t>(t->begin(), t->end()) : std::vector<int32_t>{};
}

// Admits `prompt` and appends the part that was not a prefix hit.
SeqId start(BlockManager& m, const std::vector<int32_t>& prompt) {
    auto admission = m.admit(prompt);
    EXPECT_TRUE(admission && admission->status == Alloc::Ok);
    std::vector<int32_t> slots;
    auto rest = std::span(prompt).subspan(size_t(admission->hitTokens));
    auto appended = m.appendSlots(admission->seq, rest, slots);
    EXPECT_TRUE(appended && *appended == Alloc::Ok);
    return admission->seq;
}

Alloc append(BlockManager& m, SeqId seq, const std::vector<int32_t>& tokens) {
    std::vector<int32_t> slots;
    auto result = m.appendSlots(seq, tokens, slots);
    EXPECT_TRUE(result) << result.error().message;
    return result ? *result : Alloc::NoSpace;
}

void expectValid(const BlockManager& m) {
    auto valid = m.validate();
    EXPECT_TRUE(valid) << valid.error().message;
}

TEST(BlockManager, AppendSlotsMapsPositionsToTableBlocks) {
    BlockManager m = makeManager(paged(8, false));
    auto admission = m.admit(iota(20));
    ASSERT_TRUE(admission);
    EXPECT_EQ(admission->hitTokens, 0);
    std::vector<int32_t> slots;
    ASSERT_EQ(*m.appendSlots(admission->seq, iota(20), slots), Alloc::Ok);
    const auto t = table(m, admission->seq);
    ASSERT_EQ(t.size(), 3u);
    ASSERT_EQ(slots.size(), 20u);
    for (int p = 0; p < 20; ++p) EXPECT_EQ(slots[p], t[p / 8] * 8 + p % 8) << "position " << p;
    EXPECT_EQ(*m.length(admission->seq), 20);

    ASSERT_EQ(*m.appendSlots(admission->seq, std::vector<int32_t>{7}, slots), Alloc::Ok);
    ASSERT_EQ(slots.size(), 21u);  // appended to the caller's vector
    EXPECT_EQ(slots[20], t[2] * 8 + 4);

    const BlockStats s = m.stats();
    EXPECT_EQ(s.blocksUsed, 3);
    EXPECT_EQ(s.blocksFree, 5);
    EXPECT_EQ(s.tokensStored, 21);
    EXPECT_EQ(s.slotsAllocated, 24);
    EXPECT_DOUBLE_EQ(s.slotUtilization(), 21.0 / 24.0);
    expectValid(m);
}

TEST(BlockManager, ExhaustionIsNoSpaceAndAllocatesNothing) {
    BlockManager m = makeManager(paged(4, false));
    const SeqId a = start(m, iota(30));  // 4 blocks
    const SeqId b = m.admit(iota(5))->seq;
    std::vector<int32_t> slots;
    EXPECT_EQ(*m.appendSlots(b, iota(5), slots), Alloc::NoSpace);
    EXPECT_TRUE(slots.empty());
    EXPECT_EQ(*m.length(b), 0);
    EXPECT_TRUE(table(m, b).empty());
    EXPECT_EQ(append(m, a, {1, 2}), Alloc::Ok);  // fills the last block
    EXPECT_FALSE(*m.canAppend(a, 1));
    EXPECT_EQ(append(m, a, {3}), Alloc::NoSpace);
    EXPECT_EQ(*m.length(a), 32);
    expectValid(m);
    ASSERT_TRUE(m.release(a));
    EXPECT_EQ(append(m, b, iota(5)), Alloc::Ok);
    expectValid(m);
}

TEST(BlockManager, PrefixIsReusedAfterRelease) {
    BlockManager m = makeManager(paged(16));
    const std::vector<int32_t> prompt = iota(40);  // 5 full blocks
    const SeqId a = start(m, prompt);
    const auto tableA = table(m, a);
    ASSERT_TRUE(m.release(a));
    BlockStats s = m.stats();
    EXPECT_EQ(s.blocksUsed, 0);
    EXPECT_EQ(s.blocksCached, 5);
    EXPECT_EQ(s.blocksFree, 11);

    // The last token is always computed (its logits are needed): 4 of 5 blocks hit.
    auto again = m.admit(prompt);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->hitBlocks, 4);
    EXPECT_EQ(again->hitTokens, 32);
    EXPECT_EQ(*m.length(again->seq), 32);
    EXPECT_EQ(table(m, again->seq), std::vector<int32_t>(tableA.begin(), tableA.begin() + 4));
    s = m.stats();
    EXPECT_EQ(s.prefixQueries, 2);
    EXPECT_EQ(s.prefixQueryTokens, 80);
    EXPECT_EQ(s.prefixHitBlocks, 4);
    EXPECT_EQ(s.prefixHitTokens, 32);
    EXPECT_DOUBLE_EQ(s.prefixHitRate(), 32.0 / 80.0);
    EXPECT_EQ(s.blocksUsed, 4);
    EXPECT_EQ(s.blocksCached, 1);
    EXPECT_EQ(append(m, again->seq, std::vector<int32_t>(prompt.begin() + 32, prompt.end())), Alloc::Ok);

    // A prompt sharing the first two blocks only, then diverging.
    auto diverging = m.admit(concat(iota(16), iota(10, 100)));
    EXPECT_EQ(diverging->hitBlocks, 2);
    // Same tokens at other positions are not a prefix.
    EXPECT_EQ(m.admit(concat({0}, prompt))->hitBlocks, 0);
    expectValid(m);
}

TEST(BlockManager, SharedBlocksAreReferenceCountedAndCountedOnce) {
    BlockManager m = makeManager(paged(16));
    const SeqId a = start(m, iota(24));
    auto b = m.admit(concat(iota(24), {500, 501}));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->hitBlocks, 3);
    EXPECT_EQ(table(m, b->seq), table(m, a));
    const auto map = m.blockMap();
    for (int32_t block : table(m, a)) {
        EXPECT_EQ(map[block].state, BlockState::Used);
        EXPECT_EQ(map[block].refs, 2);
        EXPECT_EQ(map[block].owner, a);
    }
    EXPECT_EQ(*m.blocksFreedByPreempting(a), 0);
    EXPECT_EQ(append(m, b->seq, {500, 501}), Alloc::Ok);
    EXPECT_EQ(*m.blocksFreedByPreempting(b->seq), 1);
    const BlockStats s = m.stats();
    EXPECT_EQ(s.tokensStored, 26);
    EXPECT_EQ(s.tokensInSequences, 50);
    expectValid(m);
}

TEST(BlockManager, ForkSharesFullBlocksAndCopiesThePartialOne) {
    BlockManager m = makeManager(paged(8));
    const SeqId a = start(m, iota(20));  // blocks a0, a1 full, a2 with 4 tokens
    const auto tableA = table(m, a);
    auto f = m.fork(a);
    ASSERT_TRUE(f);
    ASSERT_EQ(f->status, Alloc::Ok);
    const auto tableC = table(m, f->seq);
    ASSERT_EQ(tableC.size(), 3u);
    EXPECT_EQ(tableC[0], tableA[0]);
    EXPECT_EQ(tableC[1], tableA[1]);
    EXPECT_NE(tableC[2], tableA[2]);
    ASSERT_EQ(f->copies.size(), 1u);
    EXPECT_EQ(f->copies[0].src, tableA[2]);
    EXPECT_EQ(f->copies[0].dst, tableC[2]);
    EXPECT_EQ(*m.length(f->seq), 20);
    EXPECT_EQ(m.blockMap()[tableA[0]].refs, 2);
    EXPECT_EQ(m.stats().tokensStored, 24);

    // Both continue in their own last block.
    std::vector<int32_t> slotsA, slotsC;
    ASSERT_EQ(*m.appendSlots(a, std::vector<int32_t>{900}, slotsA), Alloc::Ok);
    ASSERT_EQ(*m.appendSlots(f->seq, std::vector<int32_t>{901}, slotsC), Alloc::Ok);
    EXPECT_EQ(slotsA[0], tableA[2] * 8 + 4);
    EXPECT_EQ(slotsC[0], tableC[2] * 8 + 4);
    expectValid(m);

    // At a block boundary nothing is copied.
    const SeqId d = start(m, iota(16, 300));
    auto g = m.fork(d);
    ASSERT_TRUE(g);
    EXPECT_TRUE(g->copies.empty());
    EXPECT_EQ(table(m, g->seq), table(m, d));
    expectValid(m);
}

TEST(BlockManager, ForkWithoutABlockForTheCopyIsNoSpace) {
    BlockManager m = makeManager(paged(3, false));
    const SeqId a = start(m, iota(20));  // all 3 blocks
    const int sequences = m.stats().sequences;
    auto f = m.fork(a);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, Alloc::NoSpace);
    EXPECT_EQ(m.stats().sequences, sequences);
    expectValid(m);
}

TEST(BlockManager, SlidingWindowReleasesBlocksWhollyOutsideIt) {
    BlockManagerConfig c = paged(16, false);
    c.slidingWindow = 16;
    BlockManager m = makeManager(c);
    const SeqId s = m.admit(iota(1))->seq;
    for (int p = 0; p < 48; ++p) {
        ASSERT_EQ(append(m, s, {p}), Alloc::Ok);
        // Every position the token at p attends to is still in a live block.
        const auto t = table(m, s);
        for (int q = std::max(0, p - 16 + 1); q <= p; ++q) ASSERT_NE(t[q / 8], kNoBlock) << "p " << p << " q " << q;
    }
    // The token at 47 attends to [32, 47]: blocks 0-3 (positions 0-31) are gone.
    const auto t = table(m, s);
    ASSERT_EQ(t.size(), 6u);
    EXPECT_THAT(std::vector<int32_t>(t.begin(), t.begin() + 4), ElementsAre(kNoBlock, kNoBlock, kNoBlock, kNoBlock));
    EXPECT_NE(t[4], kNoBlock);
    const BlockStats stats = m.stats();
    EXPECT_EQ(stats.evictionsBy(EvictionCause::Window), 4);
    EXPECT_EQ(stats.blocksUsed, 2);
    EXPECT_EQ(stats.tokensInSequences, 48);
    EXPECT_EQ(stats.tokensStored, 16);
    EXPECT_EQ(*m.blocksFreedByPreempting(s), 2);
    expectValid(m);
    ASSERT_TRUE(m.release(s));
    EXPECT_EQ(m.stats().blocksUsed, 0);
    expectValid(m);
}

TEST(BlockManager, SlidingWindowBlocksCountAsAvailableForTheNextAppend) {
    BlockManagerConfig c = paged(3, false);
    c.slidingWindow = 8;
    BlockManager m = makeManager(c);
    const SeqId s = start(m, iota(24));  // 3 full blocks, none free
    // The token at 24 attends to [17, 24]: blocks 0 and 1 go before it is placed.
    EXPECT_TRUE(*m.canAppend(s, 1));
    EXPECT_EQ(append(m, s, {1}), Alloc::Ok);
    EXPECT_EQ(m.stats().evictionsBy(EvictionCause::Window), 2);
    expectValid(m);
}

TEST(BlockManager, SlidingWindowPrefixHitNeedsOnlyTheBlocksItsWindowReaches) {
    BlockManagerConfig c = paged(4);
    c.slidingWindow = 16;
    BlockManager m = makeManager(c);
    const std::vector<int32_t> prompt = iota(41);
    // Appended a block at a time, the window releases blocks into the
    // cache and the 4 blocks recycle: blocks 0 and 1 are evicted.
    const SeqId a = m.admit(std::span(prompt).first(8))->seq;
    for (int k = 0; k < 5; ++k) {
        ASSERT_EQ(append(m, a, std::vector<int32_t>(prompt.begin() + k * 8, prompt.begin() + k * 8 + 8)), Alloc::Ok);
    }
    ASSERT_TRUE(m.release(a));
    EXPECT_EQ(m.stats().evictionsBy(EvictionCause::Lru), 1);
    // The token at 40 attends to [25, 40]: blocks 3 and 4 suffice.
    EXPECT_EQ(*m.prefixHitBlocks(prompt), 5);
    EXPECT_TRUE(*m.canAdmit(prompt));
    const Admission b = *m.admit(prompt);
    EXPECT_EQ(b.hitTokens, 40);
    const auto t = table(m, b.seq);
    ASSERT_EQ(t.size(), 5u);
    EXPECT_THAT(std::vector<int32_t>(t.begin(), t.begin() + 3), ElementsAre(kNoBlock, kNoBlock, kNoBlock));
    EXPECT_NE(t[3], kNoBlock);
    EXPECT_NE(t[4], kNoBlock);
    expectValid(m);
    EXPECT_EQ(append(m, b.seq, {40}), Alloc::Ok);
    expectValid(m);
}

TEST(BlockManager, PrefixHitsCanBeCapped) {
    BlockManager m = makeManager(paged(8));
    const std::vector<int32_t> prompt = iota(33);
    ASSERT_TRUE(m.release(start(m, prompt)));
    EXPECT_EQ(*m.prefixHitBlocks(prompt), 4);
    const Admission capped = *m.admit(prompt, 1);
    EXPECT_EQ(capped.hitBlocks, 1);
    EXPECT_EQ(capped.hitTokens, 8);
    EXPECT_EQ(table(m, capped.seq).size(), 1u);
    expectValid(m);
}

TEST(BlockManager, SlidingWindowAdmitsAPromptLongerThanThePoolWhenOneWindowFits) {
    BlockManagerConfig c = paged(4, false);
    c.slidingWindow = 16;
    BlockManager m = makeManager(c);
    const std::vector<int32_t> prompt = iota(64);  // 8 blocks; one window spans at most 3
    ASSERT_TRUE(*m.canAdmit(prompt));
    const SeqId s = m.admit(prompt)->seq;
    for (int k = 0; k < 8; ++k) {
        ASSERT_EQ(append(m, s, std::vector<int32_t>(prompt.begin() + k * 8, prompt.begin() + k * 8 + 8)), Alloc::Ok);
    }
    expectValid(m);
}

TEST(BlockManager, ContiguousReservesTheWholeContext) {
    BlockManagerConfig c = paged(20, false);
    c.allocation = KvAllocation::Contiguous;
    BlockManager m = makeManager(c);  // 64 tokens = 8 blocks per sequence: 2 reservations
    EXPECT_EQ(m.availableBlocks(), 16);
    const SeqId a = m.admit(iota(10))->seq;
    const auto t = table(m, a);
    ASSERT_EQ(t.size(), 8u);
    for (size_t i = 1; i < t.size(); ++i) EXPECT_EQ(t[i], t[0] + int32_t(i));  // physically contiguous
    EXPECT_EQ(append(m, a, iota(10)), Alloc::Ok);
    BlockStats s = m.stats();
    EXPECT_EQ(s.blocksUsed, 8);
    EXPECT_EQ(s.tokensStored, 10);
    EXPECT_EQ(s.slotsAllocated, 64);
    EXPECT_DOUBLE_EQ(s.slotUtilization(), 10.0 / 64.0);
    EXPECT_EQ(*m.blocksFreedByPreempting(a), 8);

    const SeqId b = m.admit(iota(3))->seq;
    EXPECT_FALSE(*m.canAdmit(iota(3)));
    EXPECT_EQ(m.admit(iota(3))->status, Alloc::NoSpace);
    EXPECT_EQ(m.fork(a)->status, Alloc::NoSpace);
    ASSERT_TRUE(m.release(b));
    auto f = m.fork(a);
    ASSERT_EQ(f->status, Alloc::Ok);
    ASSERT_EQ(f->copies.size(), 2u);  // the two blocks holding a's 10 tokens
    EXPECT_EQ(f->copies[0].src, t[0]);
    EXPECT_EQ(f->copies[1].src, t[1]);
    EXPECT_EQ(append(m, a, iota(54)), Alloc::Ok);  // up to the context
    std::vector<int32_t> slots;
    EXPECT_THAT(m.appendSlots(a, iota(1), slots).error().message, HasSubstr("64 + 1 tokens exceed the context of 64"));
    expectValid(m);
}

TEST(BlockManager, CapacityAnswersCountWatermarkAndPrefixHits) {
    BlockManagerConfig c = paged(10);
    c.maxContext = 128;
    c.watermark = 0.2;  // 2 blocks
    BlockManager m = makeManager(c);
    EXPECT_EQ(m.watermarkBlocks(), 2);
    EXPECT_TRUE(*m.canAdmit(iota(64)));   // 8 + 2 <= 10
    EXPECT_FALSE(*m.canAdmit(concat(iota(60), iota(5, 100))));
    const SeqId a = start(m, iota(64));
    EXPECT_EQ(m.availableBlocks(), 2);
    EXPECT_FALSE(*m.canAdmit(iota(1)));  // would dip into the watermark
    ASSERT_TRUE(m.release(a));
    EXPECT_EQ(m.availableBlocks(), 10);  // 8 cached + 2 free
    // 7 blocks hit (taking 7 evictable ones), 1 new: 1 + 7 + 2 <= 10.
    EXPECT_TRUE(*m.canAdmit(iota(64)));
    const SeqId b = m.admit(iota(40))->seq;  // 4 hits, references them
    EXPECT_EQ(m.availableBlocks(), 6);
    EXPECT_TRUE(*m.canAppend(b, 48));    // 6 more blocks
    EXPECT_FALSE(*m.canAppend(b, 49));
    EXPECT_EQ(*m.blocksFreedByPreempting(b), 4);
    EXPECT_FALSE(m.canAdmit({}));
    EXPECT_FALSE(m.canAppend(b + 1, 1));
    expectValid(m);
}

class EvictionOrder : public testing::TestWithParam<EvictionPolicyKind> {};

TEST_P(EvictionOrder, FollowsThePolicy) {
    BlockManagerConfig c = paged(4);
    c.eviction = GetParam();
    BlockManager m = makeManager(c);
    const std::vector<int32_t> promptA = iota(9, 1), promptB = iota(9, 100);
    // A's block is cached first, B's second; B is released first, A second.
    const SeqId a = m.admit(promptA)->seq;
    ASSERT_EQ(append(m, a, iota(8, 1)), Alloc::Ok);
    const SeqId b = m.admit(promptB)->seq;
    ASSERT_EQ(append(m, b, iota(8, 100)), Alloc::Ok);
    ASSERT_TRUE(m.release(b));
    ASSERT_TRUE(m.release(a));
    EXPECT_EQ(m.stats().blocksCached, 2);

    // 3 blocks for C: 2 free, 1 evicted.
    const SeqId cSeq = start(m, iota(24, 1000));
    const BlockStats s = m.stats();
    const bool lru = GetParam() == EvictionPolicyKind::Lru;
    EXPECT_EQ(s.evictionsBy(EvictionCause::Lru), lru ? 1 : 0);
    EXPECT_EQ(s.evictionsBy(EvictionCause::Fifo), lru ? 0 : 1);
    EXPECT_EQ(s.blocksCached, 1);
    // LRU evicted B (released earlier); FIFO evicted A (cached earlier).
    EXPECT_EQ(m.admit(promptA)->hitBlocks, lru ? 1 : 0);
    EXPECT_EQ(m.admit(promptB)->hitBlocks, lru ? 0 : 1);
    // No space left and nothing evictable: C's referenced blocks are never taken.
    EXPECT_EQ(m.availableBlocks(), 0);
    EXPECT_EQ(append(m, cSeq, {1}), Alloc::NoSpace);
    expectValid(m);
}

INSTANTIATE_TEST_SUITE_P(Policies, EvictionOrder, testing::Values(EvictionPolicyKind::Lru, EvictionPolicyKind::Fifo),
                         [](const auto& info) { return std::string(evictionPolicyName(info.param)); });

TEST(BlockManager, LruEvictsASequencesTailBeforeItsPrefix) {
    BlockManager m = makeManager(paged(4));
    ASSERT_TRUE(m.release(start(m, iota(24))));  // 3 cached blocks, released together
    start(m, iota(16, 500));                      // 1 free + 1 evicted: the last of the three
    EXPECT_EQ(m.admit(iota(24))->hitBlocks, 2);
    expectValid(m);
}

TEST(BlockManager, PreemptionCountsFreedBlocksAndKeepsCachedOnesForRecompute) {
    BlockManager m = makeManager(paged(8));
    const SeqId a = start(m, iota(20));  // 2 full blocks + 1 partial
    const SeqId b = m.admit(concat(iota(8), {77, 78}))->seq;  // shares the first block
    ASSERT_TRUE(m.preempt(a));
    BlockStats s = m.stats();
    EXPECT_EQ(s.evictionsBy(EvictionCause::Preemption), 2);  // the shared block is still used by b
    EXPECT_EQ(s.blocksCached, 1);
    EXPECT_EQ(s.blocksUsed, 1);
    auto again = m.admit(iota(20));
    EXPECT_EQ(again->hitBlocks, 2);  // recompute skips what stayed cached
    ASSERT_TRUE(m.release(b));
    expectValid(m);
}

TEST(BlockManager, BlockMapMatchesStats) {
    BlockManager m = makeManager(paged(16));
    const SeqId a = start(m, iota(30));
    ASSERT_TRUE(m.release(start(m, iota(20, 200))));
    auto f = m.fork(a);
    ASSERT_TRUE(f);
    const BlockStats s = m.stats();
    int used = 0, cached = 0, free = 0;
    for (const BlockMapEntry& e : m.blockMap()) {
        used += e.state == BlockState::Used;
        cached += e.state == BlockState::Cached;
        free += e.state == BlockState::Free;
        EXPECT_EQ(e.owner >= 0, e.state == BlockState::Used);
    }
    EXPECT_EQ(used, s.blocksUsed);
    EXPECT_EQ(cached, s.blocksCached);
    EXPECT_EQ(free, s.blocksFree);
    EXPECT_EQ(used + cached + free, s.blocksTotal);
}

TEST(BlockManager, ErrorsNameTheSequenceAndTheLimit) {
    BlockManager m = makeManager(paged(8));
    std::vector<int32_t> slots;
    EXPECT_THAT(m.release(42).error().message, HasSubstr("unknown sequence 42 (none admitted yet)"));
    const SeqId a = start(m, iota(10));
    ASSERT_TRUE(m.release(a));
    EXPECT_THAT(m.release(a).error().message, HasSubstr("sequence 0 was already released"));
    EXPECT_THAT(m.preempt(a).error().message, HasSubstr("already released"));
    EXPECT_THAT(m.fork(7).error().message, HasSubstr("unknown sequence 7 (ids so far: 0 to 0)"));
    EXPECT_THAT(m.fork(a).error().message, HasSubstr("already released"));
    EXPECT_FALSE(m.appendSlots(-1, iota(1), slots));
    EXPECT_FALSE(m.blockTable(5));
    EXPECT_FALSE(m.length(5));
    EXPECT_FALSE(m.blocksFreedByPreempting(5));
    EXPECT_THAT(m.admit({}).error().message, HasSubstr("empty prompt"));
    EXPECT_THAT(m.admit(iota(65)).error().message, HasSubstr("prompt of 65 tokens exceeds the context of 64"));
    const SeqId b = start(m, iota(60));
    EXPECT_THAT(m.appendSlots(b, iota(5), slots).error().message,
                HasSubstr("sequence 1: 60 + 5 tokens exceed the context of 64"));
    EXPECT_TRUE(slots.empty());
    expectValid(m);
}

TEST(BlockManager, InvalidConfigsAreErrors) {
    auto error = [](BlockManagerConfig c) {
        auto m = BlockManager::create(c);
        return m ? std::string("no error") : m.error().message;
    };
    BlockManagerConfig c = paged(8);
    c.numBlocks = 0;
    EXPECT_THAT(error(c), HasSubstr("0 blocks"));
    c = paged(8);
    c.blockSize = 12;
    EXPECT_THAT(error(c), HasSubstr("block size 12"));
    c = paged(8);
    c.watermark = 1.0;
    EXPECT_THAT(error(c), HasSubstr("watermark 1"));
    c = paged(8);
    c.slidingWindow = -4;
    EXPECT_THAT(error(c), HasSubstr("sliding window of -4"));
    c = paged(8);
    c.allocation = KvAllocation::Contiguous;
    EXPECT_THAT(error(c), HasSubstr("prefix caching needs paged"));
    c.prefixCaching = false;
    c.numBlocks = 7;
    EXPECT_THAT(error(c), HasSubstr("7 blocks cannot hold one sequence of 64 tokens (8 blocks of 8 tokens)"));
}

}  // namespace
}  // namespace pagoda

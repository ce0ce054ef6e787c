// LRU evicts in release order, FIFO in caching order; removal (a prefix
// hit) takes a block out of either.

#include <gtest/gtest.h>

#include <vector>

#include "engine/cache/eviction_policy.h"

namespace pagoda {
namespace {

std::vector<int32_t> drain(EvictionPolicy& policy) {
    std::vector<int32_t> order;
    for (int32_t b = policy.popVictim(); b >= 0; b = policy.popVictim()) order.push_back(b);
    return order;
}

TEST(EvictionPolicy, LruEvictsLeastRecentlyAddedFirst) {
    auto lru = makeEvictionPolicy(EvictionPolicyKind::Lru, 8);
    EXPECT_EQ(lru->kind(), EvictionPolicyKind::Lru);
    EXPECT_EQ(lru->popVictim(), -1);
    // cachedOrder is ignored: recency is the order of add().
    lru->add(5, 0);
    lru->add(2, 9);
    lru->add(7, 1);
    lru->add(0, 4);
    EXPECT_EQ(lru->size(), 4);
    lru->remove(2);  // a prefix hit
    EXPECT_FALSE(lru->contains(2));
    lru->add(2, 9);  // released again: now the most recent
    EXPECT_TRUE(lru->contains(2));
    EXPECT_EQ(drain(*lru), (std::vector<int32_t>{5, 7, 0, 2}));
    EXPECT_EQ(lru->size(), 0);
}

TEST(EvictionPolicy, FifoEvictsEarliestCachedFirst) {
    auto fifo = makeEvictionPolicy(EvictionPolicyKind::Fifo, 8);
    EXPECT_EQ(fifo->kind(), EvictionPolicyKind::Fifo);
    fifo->add(5, 30);
    fifo->add(2, 10);
    fifo->add(7, 20);
    fifo->add(0, 40);
    fifo->remove(2);
    fifo->add(2, 10);  // re-released: keeps its caching order
    EXPECT_EQ(fifo->size(), 4);
    EXPECT_EQ(drain(*fifo), (std::vector<int32_t>{2, 7, 5, 0}));
    EXPECT_FALSE(fifo->contains(0));
}

TEST(EvictionPolicy, NamesRoundTrip) {
    for (auto kind : {EvictionPolicyKind::Lru, EvictionPolicyKind::Fifo}) {
        EXPECT_EQ(evictionPolicyFromName(evictionPolicyName(kind)), kind);
    }
    EXPECT_FALSE(evictionPolicyFromName("random"));
}

}  // namespace
}  // namespace pagoda

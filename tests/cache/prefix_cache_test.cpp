// The prefix index only returns a block on an exact match: a forced hash
// collision (same hash, different tokens or parent) is a miss, never the
// other block's KV.

#include <gtest/gtest.h>

#include <vector>

#include "engine/cache/prefix_cache.h"

namespace pagoda {
namespace {

TEST(PrefixCache, FindsExactMatchesOnly) {
    PrefixCache cache(4, 8, 99);
    const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8}, b = {1, 2, 3, 4, 5, 6, 7, 9};
    const uint64_t root = cache.hasher().root();
    const uint64_t ha = cache.hasher()(root, a);
    EXPECT_EQ(cache.find(ha, root, a), -1);
    EXPECT_EQ(cache.insert(2, ha, root, a), PrefixCache::Insert::Added);
    EXPECT_EQ(cache.find(ha, root, a), 2);
    EXPECT_TRUE(cache.contains(2));
    EXPECT_EQ(cache.size(), 1);

    // Forced collisions: block b's tokens, or a's tokens after another parent, under a's hash.
    EXPECT_EQ(cache.find(ha, root, b), -1);
    EXPECT_EQ(cache.find(ha, root + 1, a), -1);
    EXPECT_EQ(cache.insert(3, ha, root, b), PrefixCache::Insert::Collision);
    EXPECT_EQ(cache.insert(3, ha, root, a), PrefixCache::Insert::Duplicate);
    EXPECT_FALSE(cache.contains(3));
    EXPECT_EQ(cache.find(ha, root, a), 2);

    cache.erase(2);
    EXPECT_EQ(cache.find(ha, root, a), -1);
    EXPECT_EQ(cache.size(), 0);
}

TEST(PrefixCache, InsertionOrderIncreases) {
    PrefixCache cache(4, 8, 99);
    const std::vector<int32_t> a(8, 1), b(8, 2);
    const uint64_t root = cache.hasher().root();
    cache.insert(3, cache.hasher()(root, a), root, a);
    cache.insert(0, cache.hasher()(root, b), root, b);
    EXPECT_LT(cache.insertionOrder(3), cache.insertionOrder(0));
}

}  // namespace
}  // namespace pagoda

// Which CUDA graph bucket a decode batch runs in (no device needed).

#include <gtest/gtest.h>

#include <vector>

#include "kernels/cuda/graph_buckets.h"

namespace pagoda::cuda {
namespace {

TEST(GraphBuckets, DefaultBucketsGrowAndEndAtTheMaximumBatch) {
    EXPECT_EQ(defaultGraphBuckets(1), (std::vector<int>{1}));
    EXPECT_EQ(defaultGraphBuckets(5), (std::vector<int>{1, 2, 4, 5}));
    EXPECT_EQ(defaultGraphBuckets(8), (std::vector<int>{1, 2, 4, 8}));
    EXPECT_EQ(defaultGraphBuckets(32), (std::vector<int>{1, 2, 4, 8, 16, 24, 32}));
    EXPECT_EQ(defaultGraphBuckets(64), (std::vector<int>{1, 2, 4, 8, 16, 24, 32, 48, 64}));
    EXPECT_EQ(defaultGraphBuckets(100), (std::vector<int>{1, 2, 4, 8, 16, 24, 32, 48, 64, 80, 96, 100}));
    EXPECT_EQ(defaultGraphBuckets(0), (std::vector<int>{1}));
}

TEST(GraphBuckets, ABatchRunsInTheSmallestBucketHoldingIt) {
    const std::vector<int> buckets = defaultGraphBuckets(32);
    EXPECT_EQ(graphBucketFor(1, buckets), 1);
    EXPECT_EQ(graphBucketFor(3, buckets), 4);
    EXPECT_EQ(graphBucketFor(8, buckets), 8);
    EXPECT_EQ(graphBucketFor(9, buckets), 16);
    EXPECT_EQ(graphBucketFor(17, buckets), 24);
    EXPECT_EQ(graphBucketFor(32, buckets), 32);
    EXPECT_EQ(graphBucketFor(33, buckets), -1);
    EXPECT_EQ(graphBucketFor(0, buckets), -1);
    for (int n = 1; n <= 32; ++n) {
        const int bucket = graphBucketFor(n, buckets);
        EXPECT_GE(bucket, n);
        EXPECT_LE(bucket, 2 * n + 1) << "padding wastes more than the batch";
    }
}

}  // namespace
}  // namespace pagoda::cuda

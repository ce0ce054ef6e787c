// Pool geometry from a byte budget and from /proc/meminfo; the automatic
// budget and its limit from the environment.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <fmt/format.h>

#include "engine/cache/kv_budget.h"

namespace pagoda {
namespace {

using testing::HasSubstr;

KvLayout dims(int blockSize, DType type) {
    KvLayout d;
    d.nLayers = 2;
    d.nKvHeads = 2;
    d.headDim = 16;
    d.blockSize = blockSize;
    d.type = type;
    return d;
}

TEST(KvBudget, BlocksFromBytes) {
    // K and V x 2 layers x 2 heads x 16 tokens x 16 dims x 2 bytes = 4096 bytes per block.
    auto layout = kvLayoutForBudget(dims(16, DType::F16), 10000);
    ASSERT_TRUE(layout) << layout.error().message;
    EXPECT_EQ(layout->bytesPerBlock(), 4096u);
    EXPECT_EQ(layout->numBlocks, 2);
    EXPECT_EQ(kvLayoutForBudget(dims(16, DType::F32), 10000)->numBlocks, 1);
    EXPECT_EQ(kvLayoutForBudget(dims(8, DType::F16), 10000)->numBlocks, 4);
    EXPECT_EQ(kvLayoutForBudget(dims(32, DType::F16), 8192)->numBlocks, 1);
    // Q8_0: 34 bytes for each 32 elements. Head dim 32 (its block): 2 x 2 x 2 x 16 rows of 34 bytes.
    KvLayout q8 = dims(16, DType::Q8_0);
    q8.headDim = 32;
    auto q8Layout = kvLayoutForBudget(q8, 10000);
    ASSERT_TRUE(q8Layout) << q8Layout.error().message;
    EXPECT_EQ(q8Layout->bytesPerBlock(), 2u * 2 * 2 * 16 * 34);
    EXPECT_EQ(q8Layout->numBlocks, 2);
}

TEST(KvBudget, ErrorsNameTheProblem) {
    auto tiny = kvLayoutForBudget(dims(16, DType::F16), 4095);
    ASSERT_FALSE(tiny);
    EXPECT_THAT(tiny.error().message, HasSubstr("4095 bytes is too small for one block of 4096 bytes"));
    EXPECT_THAT(kvLayoutForBudget(dims(12, DType::F16), 1 << 20).error().message, HasSubstr("block size 12"));
    EXPECT_THAT(kvLayoutForBudget(dims(16, DType::BF16), 1 << 20).error().message, HasSubstr("bf16"));
    EXPECT_THAT(kvLayoutForBudget(dims(16, DType::Q8_0), 1 << 20).error().message,
                HasSubstr("q8_0 needs a head dim that is a multiple of 32 (the model's is 16)"));
    KvLayout none = dims(16, DType::F16);
    none.nKvHeads = 0;
    EXPECT_THAT(kvLayoutForBudget(none, 1 << 20).error().message, HasSubstr("0 KV heads"));
    EXPECT_THAT(resolveKvBudget({0, 1.5}).error().message, HasSubstr("fraction 1.5"));
}

TEST(KvBudget, ParsesMemAvailable) {
    const char* meminfo =
        "MemTotal:       16303420 kB\n"
        "MemFree:         1234567 kB\n"
        "MemAvailable:    8000000 kB\n"
        "Buffers:          100000 kB\n";
    auto bytes = parseMemAvailable(meminfo);
    ASSERT_TRUE(bytes) << bytes.error().message;
    EXPECT_EQ(*bytes, 8000000ull * 1024);
    EXPECT_EQ(*parseMemAvailable("MemAvailable: 4 kB"), 4096u);
    EXPECT_FALSE(parseMemAvailable("MemTotal: 5 kB\n"));
    EXPECT_FALSE(parseMemAvailable("MemAvailable: lots\n"));
    EXPECT_FALSE(parseMemAvailable("XMemAvailable: 5 kB\n"));
}

TEST(KvBudget, FractionOfThisHost) {
    auto available = availableHostMemory();
    ASSERT_TRUE(available) << available.error().message;
    EXPECT_GT(*available, 0u);
    auto quarter = resolveKvBudget({0, 0.25});
    ASSERT_TRUE(quarter);
    EXPECT_GT(*quarter, 0u);
    EXPECT_LE(*quarter, *available);  // MemAvailable moves between the two reads, but not by 4x
    EXPECT_EQ(*resolveKvBudget({12345, 0.25}), 12345u);
}

TEST(KvBudget, MemoryLimitFromTheEnvironment) {
    const auto unset = [] { unsetenv("PAGODA_KV_MEMORY_MIB"); };
    unset();
    ASSERT_TRUE(kvMemoryLimitFromEnvironment());
    EXPECT_EQ(*kvMemoryLimitFromEnvironment(), std::nullopt);
    setenv("PAGODA_KV_MEMORY_MIB", "64", 1);
    EXPECT_EQ(*kvMemoryLimitFromEnvironment(), std::optional<uint64_t>(64u << 20));
    for (const char* bad : {"0", "-3", "1.5", "12x", "lots"}) {
        setenv("PAGODA_KV_MEMORY_MIB", bad, 1);
        auto limit = kvMemoryLimitFromEnvironment();
        ASSERT_FALSE(limit) << bad;
        EXPECT_EQ(limit.error().message, fmt::format("PAGODA_KV_MEMORY_MIB='{}': not a positive number of MiB", bad));
    }
    unset();
}

// One layer of one KV head of 16 dims in F16, blocks of 16 tokens: 1024
// bytes a block (K and V).
KvLayout oneKiBBlocks() {
    KvLayout dims;
    dims.nLayers = 1;
    dims.nKvHeads = 1;
    dims.headDim = 16;
    dims.blockSize = 16;
    return dims;
}

TEST(KvBudget, AutomaticBudgetInWholeBlocks) {
    // 4 contexts of 100 tokens in blocks of 16 tokens: 25 blocks.
    const KvLayout dims = oneKiBBlocks();
    EXPECT_EQ(autoKvBudget(dims, 100, 1 << 20).bytes, 25u * 1024);
    EXPECT_FALSE(autoKvBudget(dims, 100, 1 << 20).limitedByMemory);
    const AutoKvBudget scarce = autoKvBudget(dims, 100, 12999);
    EXPECT_EQ(scarce.bytes, 12u * 1024);
    EXPECT_TRUE(scarce.limitedByMemory);
    EXPECT_EQ(autoKvBudget(dims, 100, 1023).bytes, 0u);
}

TEST(KvBudget, LocalLayerPoolsTakeTheirBlocksAndTheOthersTheRest) {
    KvLayout dims = oneKiBBlocks();
    dims.nLayers = 6;
    dims.local = {32, 3};  // layers 2 and 5 global, 4 local
    dims.numLocalBlocks = 10;
    ASSERT_EQ(dims.localLayers(), 4);
    EXPECT_EQ(dims.bytesPerBlock(), 2u * 1024);
    // 100 KiB: the local pools' 40 KiB, then 30 blocks of the 2 global layers.
    const KvLayout ample = *kvLayoutForBudget(dims, 100 << 10);
    EXPECT_EQ(ample.numLocalBlocks, 10);
    EXPECT_EQ(ample.numBlocks, 30);
    EXPECT_EQ(ample.bytes(), 100u << 10);
    // Less than 10 blocks of every layer: every layer gets as many.
    const KvLayout scarce = *kvLayoutForBudget(dims, 30000);
    EXPECT_EQ(scarce.numLocalBlocks, 4);
    EXPECT_EQ(scarce.numBlocks, 4);
    EXPECT_EQ(scarce.bytes(), 4u * 6 * 1024);
    // The automatic budget: 25 blocks of the global layers, 10 of the local.
    EXPECT_EQ(autoKvBudget(dims, 100, 1 << 30).bytes, 25u * 2048 + 40u * 1024);
    const AutoKvBudget limited = autoKvBudget(dims, 100, 50000);
    EXPECT_TRUE(limited.limitedByMemory);
    EXPECT_EQ(limited.bytes, kvLayoutForBudget(dims, 50000)->bytes());
}

}  // namespace
}  // namespace pagoda

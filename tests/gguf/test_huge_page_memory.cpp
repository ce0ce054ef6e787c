// HugePageMemory, under the weights' copy and the host KV pools: aligned,
// zero until written, writable, unmapped once, and an allocation the system
// refuses is an error naming why.

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <limits>
#include <utility>

#include "engine/core/huge_page_memory.h"

namespace pagoda {
namespace {

TEST(HugePageMemory, IsAlignedZeroAndWritable) {
    constexpr size_t kSize = 5 * kHugePageBytes + 12345;
    Result<HugePageMemory> memory = HugePageMemory::allocate(kSize);
    ASSERT_TRUE(memory) << memory.error().message;
    ASSERT_EQ(memory->size(), kSize);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(memory->data()) % kHugePageBytes, 0u);
    uint8_t* bytes = memory->data();
    for (size_t at : {size_t(0), kHugePageBytes - 1, kSize / 2, kSize - 1}) {
        EXPECT_EQ(bytes[at], 0) << at;
        bytes[at] = uint8_t(at);
        EXPECT_EQ(bytes[at], uint8_t(at)) << at;
    }
}

// Whether [p, p + 1 byte) is mapped: msync fails with ENOMEM where not.
bool mapped(const void* p) {
    return ::msync(const_cast<void*>(p), 1, MS_ASYNC) == 0;
}

TEST(HugePageMemory, MovesOwnershipAndUnmapsOnce) {
    Result<HugePageMemory> memory = HugePageMemory::allocate(kHugePageBytes);
    ASSERT_TRUE(memory) << memory.error().message;
    uint8_t* first = memory->data();
    HugePageMemory moved = std::move(*memory);
    EXPECT_EQ(moved.data(), first);
    EXPECT_EQ(memory->data(), nullptr);
    EXPECT_EQ(memory->size(), 0u);
    Result<HugePageMemory> other = HugePageMemory::allocate(kHugePageBytes);
    ASSERT_TRUE(other) << other.error().message;
    uint8_t* second = other->data();
    moved = std::move(*other);
    EXPECT_FALSE(mapped(first));  // the assignment unmapped the first
    EXPECT_TRUE(mapped(second));
    {
        HugePageMemory last = std::move(moved);
    }
    EXPECT_FALSE(mapped(second));
}

TEST(HugePageMemory, AnImpossibleSizeIsAnError) {
    const Result<HugePageMemory> memory = HugePageMemory::allocate(std::numeric_limits<size_t>::max() / 2);
    ASSERT_FALSE(memory);
    EXPECT_FALSE(memory.error().message.empty());
}

}  // namespace
}  // namespace pagoda

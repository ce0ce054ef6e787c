// The device memory pool's books, reuse and out-of-memory errors, on a
// host-memory stand-in for cudaMalloc (no device needed).

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "kernels/cuda/memory_pool.h"

namespace pagoda::cuda {
namespace {

// Host memory with a capacity, counting calls like a device would see them.
class FakeDevice final : public RawAllocator {
public:
    explicit FakeDevice(uint64_t capacity) : m_capacity(capacity) {}
    ~FakeDevice() override { EXPECT_TRUE(m_live.empty()) << m_live.size() << " blocks never released"; }

    void* allocate(size_t bytes) override {
        if (m_used + bytes > m_capacity) return nullptr;
        void* p = std::malloc(bytes);
        m_used += bytes;
        m_sizes[p] = bytes;
        m_live.insert(p);
        ++allocations;
        return p;
    }
    void release(void* data) override {
        ASSERT_EQ(m_live.erase(data), 1u);
        m_used -= m_sizes[data];
        std::free(data);
        ++releases;
    }
    void memoryInfo(uint64_t& freeBytes, uint64_t& totalBytes) override {
        freeBytes = m_capacity - m_used;
        totalBytes = m_capacity;
    }

    int allocations = 0;
    int releases = 0;

private:
    uint64_t m_capacity;
    uint64_t m_used = 0;
    std::set<void*> m_live;
    std::map<void*, size_t> m_sizes;
};

TEST(MemoryPool, RoundsSmallRequestsTo512BytesAndLargeOnesTo2MiB) {
    EXPECT_EQ(MemoryPool::roundedSize(1), 512u);
    EXPECT_EQ(MemoryPool::roundedSize(512), 512u);
    EXPECT_EQ(MemoryPool::roundedSize(513), 1024u);
    EXPECT_EQ(MemoryPool::roundedSize((1u << 20) - 1), 1u << 20);
    EXPECT_EQ(MemoryPool::roundedSize(1u << 20), 2u << 20);
    EXPECT_EQ(MemoryPool::roundedSize((2u << 20) + 1), 4u << 20);
}

TEST(MemoryPool, AccountsBytesInUsePerUse) {
    FakeDevice device(64 << 20);
    MemoryPool pool(device);
    {
        auto weights = pool.allocate(1000, MemoryUse::Weights);
        auto kv = pool.allocate(3 << 20, MemoryUse::KvCache);
        auto act = pool.allocate(100, MemoryUse::Activations);
        ASSERT_TRUE(weights.ok() && kv.ok() && act.ok());
        const MemoryAccounting books = pool.accounting();
        EXPECT_EQ(books.inUseBy(MemoryUse::Weights), 1000u);
        EXPECT_EQ(books.inUseBy(MemoryUse::KvCache), 3u << 20);
        EXPECT_EQ(books.inUseBy(MemoryUse::Activations), 100u);
        EXPECT_EQ(books.inUseBy(MemoryUse::Workspace), 0u);
        EXPECT_EQ(books.inUseTotal(), 1000u + (3u << 20) + 100u);
        EXPECT_EQ(books.reserved, 1024u + (4u << 20) + 512u);
        EXPECT_EQ(books.cached, 0u);
        EXPECT_EQ(books.allocations, 3);
        EXPECT_EQ(books.deviceTotal, 64u << 20);
        EXPECT_EQ(books.deviceFree, (64u << 20) - books.reserved);
    }
    const MemoryAccounting after = pool.accounting();
    EXPECT_EQ(after.inUseTotal(), 0u);
    EXPECT_EQ(after.cached, after.reserved);
    EXPECT_EQ(after.peakReserved, after.reserved);
    pool.trim();
    EXPECT_EQ(pool.accounting().reserved, 0u);
    EXPECT_EQ(device.releases, 3);
}

TEST(MemoryPool, ReusesFreedBlocksOfTheSameRoundedSize) {
    FakeDevice device(64 << 20);
    MemoryPool pool(device);
    void* first = nullptr;
    {
        auto buffer = pool.allocate(4000, MemoryUse::Workspace);
        ASSERT_TRUE(buffer.ok());
        first = buffer->data();
    }
    auto again = pool.allocate(3900, MemoryUse::Activations);  // rounds to the same 4096
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->data(), first);
    EXPECT_EQ(again->bytes(), 3900u);
    EXPECT_EQ(again->use(), MemoryUse::Activations);
    EXPECT_EQ(device.allocations, 1);
    const MemoryAccounting books = pool.accounting();
    EXPECT_EQ(books.reuses, 1);
    EXPECT_EQ(books.inUseBy(MemoryUse::Activations), 3900u);
    EXPECT_EQ(books.inUseBy(MemoryUse::Workspace), 0u);
    auto other = pool.allocate(5000, MemoryUse::Workspace);  // another size: a new block
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(device.allocations, 2);
}

TEST(MemoryPool, ReleasesTheCacheAndRetriesBeforeReportingOutOfMemory) {
    FakeDevice device(10 << 20);
    MemoryPool pool(device);
    {
        auto big = pool.allocate(6 << 20, MemoryUse::Workspace);
        ASSERT_TRUE(big.ok());
    }
    EXPECT_EQ(pool.accounting().cached, 6u << 20);
    // 6 MiB cached + 8 MiB > 10 MiB: the cache is returned, then it fits.
    auto kv = pool.allocate(8 << 20, MemoryUse::KvCache);
    ASSERT_TRUE(kv.ok()) << kv.status().message();
    EXPECT_EQ(pool.accounting().cached, 0u);
    EXPECT_EQ(pool.accounting().reserved, 8u << 20);
}

TEST(MemoryPool, OutOfMemoryNamesTheRequestTheDeviceAndWhatPagodaHolds) {
    FakeDevice device(16 << 20);
    MemoryPool pool(device);
    auto weights = pool.allocate(10 << 20, MemoryUse::Weights);
    ASSERT_TRUE(weights.ok());
    auto kv = pool.allocate(8 << 20, MemoryUse::KvCache);
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(),
              "out of device memory: cannot allocate 8.00 MiB for kv cache; the device has 6.00 MiB free of "
              "16.00 MiB (Pagoda holds weights 10.00 MiB, kv cache 0 B, activations 0 B, workspace 0 B)");
    EXPECT_EQ(pool.accounting().failures, 1);
}

// Weights in a pool of their own (shared between backends) count in the
// books and the error of the pool that runs on them.
TEST(MemoryPool, MemoryHeldOutsideThePoolIsCountedAndNamed) {
    FakeDevice device(16 << 20);
    MemoryPool weights(device);
    auto held = weights.allocate(10 << 20, MemoryUse::Weights);
    ASSERT_TRUE(held.ok());
    MemoryPool pool(device);
    pool.setHeldOutside(MemoryUse::Weights, held.value().bytes());
    auto activations = pool.allocate(1 << 20, MemoryUse::Activations);
    ASSERT_TRUE(activations.ok());
    const MemoryAccounting books = pool.accounting();
    EXPECT_EQ(books.inUseBy(MemoryUse::Weights), 10u << 20);
    EXPECT_EQ(books.inUseBy(MemoryUse::Activations), 1u << 20);
    EXPECT_EQ(books.reserved, 12u << 20);
    EXPECT_EQ(books.peakReserved, 12u << 20);
    auto kv = pool.allocate(8 << 20, MemoryUse::KvCache);
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(),
              "out of device memory: cannot allocate 8.00 MiB for kv cache; the device has 4.00 MiB free of "
              "16.00 MiB (Pagoda holds weights 10.00 MiB, kv cache 0 B, activations 1.00 MiB, workspace 0 B)");
}

TEST(MemoryPool, ZeroBytesIsAnEmptyBufferAndMovesTransferOwnership) {
    FakeDevice device(1 << 20);
    MemoryPool pool(device);
    auto empty = pool.allocate(0, MemoryUse::Workspace);
    ASSERT_TRUE(empty.ok());
    EXPECT_FALSE(bool(empty.value()));
    EXPECT_EQ(device.allocations, 0);

    auto made = pool.allocate(100, MemoryUse::Workspace);
    ASSERT_TRUE(made.ok());
    DeviceBuffer moved = std::move(made.value());
    EXPECT_FALSE(bool(made.value()));
    EXPECT_TRUE(bool(moved));
    EXPECT_EQ(pool.accounting().inUseTotal(), 100u);
    moved.reset();
    EXPECT_EQ(pool.accounting().inUseTotal(), 0u);
}

}  // namespace
}  // namespace pagoda::cuda

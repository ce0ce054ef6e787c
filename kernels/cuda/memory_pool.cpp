#include "kernels/cuda/memory_pool.h"

#include <cassert>

namespace pagoda::cuda {

uint64_t MemoryPool::roundedSize(uint64_t bytes) {
    constexpr uint64_t kSmall = 512;
    constexpr uint64_t kLargeFrom = 1ull << 20;
    constexpr uint64_t kLarge = 2ull << 20;
    const uint64_t granule = bytes >= kLargeFrom ? kLarge : kSmall;
    return (bytes + granule - 1) / granule * granule;
}

MemoryPool::~MemoryPool() {
    assert(m_books.inUseTotal() == 0 && "device buffers outlived their pool");
    trimLocked();
}

StatusOr<DeviceBuffer> MemoryPool::allocate(size_t bytes, MemoryUse use) {
    if (bytes == 0) return DeviceBuffer();
    const uint64_t size = roundedSize(bytes);
    std::lock_guard lock(m_mutex);
    void* data = nullptr;
    if (auto cached = m_cached.find(size); cached != m_cached.end()) {
        data = cached->second;
        m_cached.erase(cached);
        m_books.cached -= size;
        ++m_books.reuses;
    } else {
        data = m_raw.allocate(size);
        if (data == nullptr && !m_cached.empty()) {
            trimLocked();
            data = m_raw.allocate(size);
        }
        if (data == nullptr) {
            ++m_books.failures;
            uint64_t freeBytes = 0;
            uint64_t totalBytes = 0;
            m_raw.memoryInfo(freeBytes, totalBytes);
            std::string held;
            for (int u = 0; u < kMemoryUses; ++u) {
                held += std::string(u ? ", " : "") + std::string(memoryUseName(MemoryUse(u))) + " " +
                        formatBytes(m_books.inUse[size_t(u)] + m_outside[size_t(u)]);
            }
            return Status::error("out of device memory: cannot allocate " + formatBytes(bytes) + " for " +
                                 std::string(memoryUseName(use)) + "; the device has " + formatBytes(freeBytes) +
                                 " free of " + formatBytes(totalBytes) + " (Pagoda holds " + held + ")");
        }
        m_books.reserved += size;
        if (m_books.reserved > m_books.peakReserved) m_books.peakReserved = m_books.reserved;
    }
    ++m_books.allocations;
    m_books.inUse[size_t(use)] += bytes;
    return DeviceBuffer(this, data, bytes, use);
}

void MemoryPool::release(void* data, size_t bytes, MemoryUse use) {
    std::lock_guard lock(m_mutex);
    const uint64_t size = roundedSize(bytes);
    m_books.inUse[size_t(use)] -= bytes;
    m_cached.emplace(size, data);
    m_books.cached += size;
}

void MemoryPool::trim() {
    std::lock_guard lock(m_mutex);
    trimLocked();
}

void MemoryPool::trimLocked() {
    for (const auto& [size, data] : m_cached) {
        m_raw.release(data);
        m_books.reserved -= size;
    }
    m_cached.clear();
    m_books.cached = 0;
}

void MemoryPool::setHeldOutside(MemoryUse use, uint64_t bytes) {
    std::lock_guard lock(m_mutex);
    m_outside[size_t(use)] = bytes;
}

MemoryAccounting MemoryPool::accounting() {
    std::lock_guard lock(m_mutex);
    MemoryAccounting books = m_books;
    for (int u = 0; u < kMemoryUses; ++u) {
        books.inUse[size_t(u)] += m_outside[size_t(u)];
        books.reserved += m_outside[size_t(u)];
        books.peakReserved += m_outside[size_t(u)];
    }
    m_raw.memoryInfo(books.deviceFree, books.deviceTotal);
    return books;
}

}  // namespace pagoda::cuda

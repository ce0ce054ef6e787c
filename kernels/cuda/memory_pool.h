#pragma once
// The CUDA backend's device memory: a caching sub-allocator over a raw
// allocator (cudaMalloc in the backend, host memory in the tests) with
// per-use accounting. Freed blocks are kept by rounded size and reused, so
// the steady state of the decode loop never calls cudaMalloc/cudaFree
// (cudaFree synchronizes the device). When the device is out of memory the
// cache is released and the request retried once; a request that still
// fails is an error naming the sizes. Thread-safe.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/status.h"
#include "kernels/format_bytes.h"

namespace pagoda::cuda {

class RawAllocator {
public:
    virtual ~RawAllocator() = default;
    // nullptr when the device cannot provide `bytes`.
    virtual void* allocate(size_t bytes) = 0;
    virtual void release(void* data) = 0;
    // Device memory free and total, as cudaMemGetInfo reports it.
    virtual void memoryInfo(uint64_t& freeBytes, uint64_t& totalBytes) = 0;
};

class MemoryPool final : public BufferOwner {
public:
    // Requests are rounded up to 512 bytes, and to 2 MiB from 1 MiB up.
    static uint64_t roundedSize(uint64_t bytes);

    explicit MemoryPool(RawAllocator& raw) : m_raw(raw) {}
    // Every buffer must have been returned.
    ~MemoryPool();
    MemoryPool(const MemoryPool&) = delete;
    MemoryPool& operator=(const MemoryPool&) = delete;

    // Zero bytes gives an empty buffer.
    StatusOr<DeviceBuffer> allocate(size_t bytes, MemoryUse use);
    // Returns the cached free blocks to the device.
    void trim();
    // Memory of `use` that the pool's owner holds outside the pool (weights
    // shared with other backends, in a pool of their own): counted in
    // accounting()'s inUse and reserved, and named in out-of-memory errors.
    void setHeldOutside(MemoryUse use, uint64_t bytes);
    MemoryAccounting accounting();

    void release(void* data, size_t bytes, MemoryUse use) override;

private:
    void trimLocked();

    RawAllocator& m_raw;
    std::mutex m_mutex;
    std::multimap<uint64_t, void*> m_cached;  // rounded size -> free block
    MemoryAccounting m_books;
    std::array<uint64_t, kMemoryUses> m_outside{};  // setHeldOutside
};

}  // namespace pagoda::cuda

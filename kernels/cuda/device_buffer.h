#pragma once
// Device memory handed out by the CUDA backend: a move-only buffer that
// returns itself to its owner (the memory pool) when destroyed, tagged with
// what it is used for so that memory can be accounted per use.
// Header-only and free of CUDA types: the engine holds these buffers
// without linking CUDA.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace pagoda::cuda {

enum class MemoryUse { Weights, KvCache, Activations, Workspace };
constexpr int kMemoryUses = 4;

inline std::string_view memoryUseName(MemoryUse use) {
    switch (use) {
    case MemoryUse::Weights: return "weights";
    case MemoryUse::KvCache: return "kv cache";
    case MemoryUse::Activations: return "activations";
    case MemoryUse::Workspace: return "workspace";
    }
    return "?";
}

// Who takes a buffer back. Implemented by MemoryPool; a virtual call, so
// that code holding buffers needs no link-time dependency on the pool.
class BufferOwner {
public:
    virtual void release(void* data, size_t bytes, MemoryUse use) = 0;

protected:
    ~BufferOwner() = default;
};

class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(BufferOwner* owner, void* data, size_t bytes, MemoryUse use)
        : m_owner(owner), m_data(data), m_bytes(bytes), m_use(use) {}
    DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            reset();
            m_owner = std::exchange(other.m_owner, nullptr);
            m_data = std::exchange(other.m_data, nullptr);
            m_bytes = std::exchange(other.m_bytes, 0);
            m_use = other.m_use;
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { reset(); }

    void* data() const { return m_data; }
    template <class T>
    T* as() const {
        return static_cast<T*>(m_data);
    }
    size_t bytes() const { return m_bytes; }
    MemoryUse use() const { return m_use; }
    explicit operator bool() const { return m_data != nullptr; }

    void reset() {
        if (m_owner != nullptr && m_data != nullptr) m_owner->release(m_data, m_bytes, m_use);
        m_owner = nullptr;
        m_data = nullptr;
        m_bytes = 0;
    }

private:
    BufferOwner* m_owner = nullptr;
    void* m_data = nullptr;
    size_t m_bytes = 0;
    MemoryUse m_use = MemoryUse::Workspace;
};

// A snapshot of the pool's books. `inUse` counts bytes as requested;
// `reserved` what the pool holds from the device (in use, rounded up, plus
// cached free blocks).
struct MemoryAccounting {
    std::array<uint64_t, kMemoryUses> inUse{};  // by MemoryUse
    uint64_t reserved = 0;
    uint64_t cached = 0;        // freed blocks kept for reuse (part of reserved)
    uint64_t peakReserved = 0;
    int64_t allocations = 0;    // requests served
    int64_t reuses = 0;         // of those, served from the cache
    int64_t failures = 0;       // requests the device could not satisfy
    uint64_t deviceFree = 0;    // cudaMemGetInfo at the snapshot
    uint64_t deviceTotal = 0;

    uint64_t inUseBy(MemoryUse use) const { return inUse[size_t(use)]; }
    uint64_t inUseTotal() const {
        uint64_t total = 0;
        for (uint64_t bytes : inUse) total += bytes;
        return total;
    }
};

}  // namespace pagoda::cuda

#include "engine/core/huge_page_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace pagoda {

void* reserveHugeAligned(size_t size) {
    const size_t padded = size + kHugePageBytes;
    void* raw = ::mmap(nullptr, padded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    if (aligned > start) ::munmap(raw, aligned - start);
    const uintptr_t end = start + padded;
    if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
    return reinterpret_cast<void*>(aligned);
}

Result<HugePageMemory> HugePageMemory::allocate(size_t size) {
    void* at = reserveHugeAligned(size);
    if (at == nullptr ||
        ::mmap(at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
            MAP_FAILED) {
        const int err = errno;
        if (at != nullptr) ::munmap(at, size);
        return fail("{}", std::generic_category().message(err));
    }
    // Advice only: without transparent huge pages the memory still works.
    ::madvise(at, size, MADV_HUGEPAGE);
    return HugePageMemory(static_cast<uint8_t*>(at), size);
}

HugePageMemory::HugePageMemory(HugePageMemory&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}

HugePageMemory& HugePageMemory::operator=(HugePageMemory&& other) noexcept {
    if (this != &other) {
        if (m_data != nullptr) ::munmap(m_data, m_size);
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
    }
    return *this;
}

HugePageMemory::~HugePageMemory() {
    if (m_data != nullptr) ::munmap(m_data, m_size);
}

void HugePageMemory::release() {
    m_data = nullptr;
    m_size = 0;
}

}  // namespace pagoda

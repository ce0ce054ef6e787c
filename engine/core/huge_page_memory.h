#pragma once
// Anonymous memory for the large buffers the CPU streams through (the
// weights' copy, the host KV pools): at an address aligned to
// kHugePageBytes and advised to transparent huge pages (MADV_HUGEPAGE,
// which Debian's and Ubuntu's default "madvise" mode needs), so that a
// first write faults once per 2 MiB instead of once per 4 KiB. Pages read
// zero and become resident as they are written.

#include <cstddef>
#include <cstdint>

#include "engine/core/result.h"

namespace pagoda {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// `size` bytes of address space at a kHugePageBytes-aligned address,
// reserved (PROT_NONE) for MAP_FIXED mappings; nullptr when there is none.
void* reserveHugeAligned(size_t size);

class HugePageMemory {
public:
    // `size` bytes, read-write; the error names the system's reason.
    static Result<HugePageMemory> allocate(size_t size);

    HugePageMemory(HugePageMemory&& other) noexcept;
    HugePageMemory& operator=(HugePageMemory&& other) noexcept;
    ~HugePageMemory();

    uint8_t* data() const { return m_data; }
    size_t size() const { return m_size; }
    // Gives the mapping up (it was moved elsewhere, mremap): this object
    // no longer unmaps it.
    void release();

private:
    HugePageMemory(uint8_t* data, size_t size) : m_data(data), m_size(size) {}

    uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

}  // namespace pagoda

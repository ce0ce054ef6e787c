#pragma once
// Builds GGUF bytes field by field, independently of GgufWriter, so that a
// test can craft exactly the malformed file it needs.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf/gguf_reader.h"

namespace pagoda::gguf::test {

class GgufBytes {
public:
    template <class T>
    GgufBytes& put(T value) {
        uint8_t raw[sizeof(T)];
        std::memcpy(raw, &value, sizeof(T));
        m_bytes.insert(m_bytes.end(), raw, raw + sizeof(T));
        return *this;
    }
    GgufBytes& u8(uint8_t v) { return put(v); }
    GgufBytes& u32(uint32_t v) { return put(v); }
    GgufBytes& u64(uint64_t v) { return put(v); }

    // A GGUF string: u64 length, then the bytes.
    GgufBytes& str(std::string_view text) {
        u64(text.size());
        m_bytes.insert(m_bytes.end(), text.begin(), text.end());
        return *this;
    }

    GgufBytes& header(uint64_t tensorCount, uint64_t keyValueCount, uint32_t version = 3) {
        return u32(kMagic).u32(version).u64(tensorCount).u64(keyValueCount);
    }

    // The key and the value type; the value follows.
    GgufBytes& key(std::string_view name, ValueType type) { return str(name).u32(uint32_t(type)); }

    GgufBytes& tensorInfo(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset) {
        str(name).u32(uint32_t(dims.size()));
        for (uint64_t dim : dims) u64(dim);
        return u32(type).u64(offset);
    }

    GgufBytes& padTo(size_t alignment) {
        m_bytes.resize((m_bytes.size() + alignment - 1) / alignment * alignment, 0);
        return *this;
    }

    // `count` bytes 0, 1, 2, ... (mod 256), so that data is recognizable.
    GgufBytes& pattern(size_t count) {
        for (size_t i = 0; i < count; ++i) m_bytes.push_back(uint8_t(i));
        return *this;
    }

    size_t size() const { return m_bytes.size(); }
    const std::vector<uint8_t>& bytes() const { return m_bytes; }

private:
    std::vector<uint8_t> m_bytes;
};

}  // namespace pagoda::gguf::test

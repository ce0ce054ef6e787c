#pragma once
// GGUF v2/v3 reader. Every count, length, dimension, type, offset and the
// alignment is validated against the file size before any data is touched;
// a hostile file yields an Error naming the field, its value and the limit.
// Tensor data stays in the memory-mapped file.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/huge_page_memory.h"
#include "engine/core/result.h"
#include "engine/gguf/gguf_value.h"
#include "kernels/dtype.h"

namespace pagoda::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;

// Limits on hostile files, enforced by the reader and respected by the writer.
constexpr uint32_t kMaxDims = 4;                             // ggml's GGML_MAX_DIMS
constexpr uint32_t kMaxArrayDepth = 16;                      // arrays of arrays of ...
constexpr uint64_t kMaxNameLength = 65535;                   // keys and tensor names
constexpr uint64_t kMaxStringLength = uint64_t(1) << 30;     // string values
constexpr uint64_t kMaxMetadataValues = uint64_t(1) << 26;   // values and array items, all keys together

struct TensorInfo {
    std::string name;
    std::vector<uint64_t> dims;  // ne[0] first: ne[0] is the contiguous (row) length
    DType type = DType::F32;
    uint64_t offset = 0;         // relative to the start of the data section
    uint64_t elementCount = 0;
    uint64_t byteSize = 0;
};

// GgufFile::copyToMemory widens its ranges to these boundaries: a
// transparent huge page, which backs only such aligned ranges.
constexpr uint64_t kCopyGranule = kHugePageBytes;

class MappedFile;

class GgufFile {
public:
    // Memory-maps the file read-only, at an address aligned for huge pages.
    static Result<GgufFile> open(const std::filesystem::path& path);
    // Parses a buffer the caller keeps alive (tests, fuzzing).
    static Result<GgufFile> parse(std::span<const uint8_t> bytes);

    GgufFile(GgufFile&&) noexcept;
    GgufFile& operator=(GgufFile&&) noexcept;
    ~GgufFile();

    uint32_t version() const { return m_version; }
    uint64_t alignment() const { return m_alignment; }
    uint64_t fileSize() const { return m_bytes.size(); }
    uint64_t dataOffset() const { return m_dataOffset; }

    const std::vector<KeyValue>& metadata() const { return m_metadata; }
    const Value* find(std::string_view key) const;

    // Typed getters: an Error names the key when it is missing or of another type.
    Result<int64_t> getInt(std::string_view key) const;
    Result<double> getFloat(std::string_view key) const;
    Result<std::string> getString(std::string_view key) const;
    Result<const Array*> getArray(std::string_view key) const;
    Result<bool> getBool(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const { return m_tensors; }
    const TensorInfo* findTensor(std::string_view name) const;
    // Bytes of the tensor's data inside the mapping (validated at open).
    std::span<const uint8_t> tensorData(const TensorInfo& tensor) const;

    // Replaces bytes [begin, end) of the file mapping (widened to 2 MiB
    // boundaries; by default the whole file) by a copy in anonymous memory,
    // advised for transparent huge pages, at the same addresses: every span
    // and pointer into the file stays valid. Decode streams every weight per
    // token; on the CPU the copy decodes faster than the page cache's
    // mapping (docs/PERFORMANCE.md). Nothing may read those bytes while it
    // runs. No-op for a file parsed from a caller's buffer, or in memory.
    Result<void> copyToMemory(uint64_t begin = 0, uint64_t end = UINT64_MAX);
    // Bytes copied so far (the whole size for a caller's buffer), and
    // whether that is all of them.
    uint64_t bytesInMemory() const;
    bool inMemory() const;

private:
    GgufFile() = default;

    std::unique_ptr<MappedFile> m_mapping;  // null when parsed from a caller's buffer
    std::span<const uint8_t> m_bytes;
    uint32_t m_version = 0;
    uint64_t m_alignment = kDefaultAlignment;
    uint64_t m_dataOffset = 0;
    std::vector<KeyValue> m_metadata;
    std::vector<TensorInfo> m_tensors;
};

}  // namespace pagoda::gguf

#pragma once
// GGUF v2/v3 writer. Tensor data is produced on demand by a fill callback so
// that multi-gigabyte synthetic models stream to disk without being held in
// memory.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/core/result.h"
#include "engine/gguf/gguf_value.h"
#include "kernels/dtype.h"

namespace pagoda::gguf {

// Fills `out` (exactly the tensor's byte size) with the tensor's data.
using TensorFill = std::function<void(std::span<uint8_t> out)>;

class GgufWriter {
public:
    explicit GgufWriter(uint32_t version = 3, uint32_t alignment = 32);

    // Adds or replaces a metadata key; insertion order is kept.
    // Writing "general.alignment" is done automatically when alignment != 32.
    void set(std::string key, Value value);

    // dims: ne[0] first. dims[0] must be a multiple of the type's block size.
    void addTensor(std::string name, std::vector<uint64_t> dims, DType type, TensorFill fill);
    void addTensor(std::string name, std::vector<uint64_t> dims, DType type, std::vector<uint8_t> data);

    // Writes to a temporary file beside `path` and renames it into place.
    // `cancelled`, asked before each piece is written (at least once per
    // tensor): true stops the write, removes the temporary file and returns
    // the error "cancelled"; an existing file at `path` stays.
    Result<void> writeFile(const std::filesystem::path& path, const std::function<bool()>& cancelled = {}) const;
    Result<std::vector<uint8_t>> writeToMemory() const;

private:
    using Sink = std::function<Result<void>(std::span<const uint8_t> bytes)>;

    struct PendingTensor {
        std::string name;
        std::vector<uint64_t> dims;
        DType type;
        uint64_t byteSize;
        TensorFill fill;
    };

    // Validates everything, then streams the file to `sink` front to back.
    Result<void> write(const Sink& sink) const;

    uint32_t m_version;
    uint32_t m_alignment;
    std::vector<KeyValue> m_metadata;
    std::vector<PendingTensor> m_tensors;
};

}  // namespace pagoda::gguf

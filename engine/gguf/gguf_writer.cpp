#include "engine/gguf/gguf_writer.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <system_error>
#include <unordered_set>

#include <fmt/ranges.h>

#include "engine/gguf/gguf_reader.h"

namespace pagoda::gguf {

static_assert(std::endian::native == std::endian::little, "the writer assumes a little-endian host");

namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";

std::string errnoText(int err) { return std::generic_category().message(err); }

uint64_t alignUp(uint64_t offset, uint64_t alignment) { return (offset + alignment - 1) / alignment * alignment; }

// Bytes of a tensor of `type` with `dims`, or why such a tensor cannot be written.
Result<uint64_t> tensorBytes(const std::vector<uint64_t>& dims, DType type) {
    std::optional<DTypeInfo> info = dtypeInfo(uint32_t(type));
    if (!info) return fail("unknown ggml type {}", uint32_t(type));
    if (dims.empty() || dims.size() > kMaxDims) return fail("{} dims outside 1..{}", dims.size(), kMaxDims);
    uint64_t elements = 1;
    for (uint64_t dim : dims) {
        if (dim == 0) return fail("dims [{}] contain 0", fmt::join(dims, ", "));
        if (__builtin_mul_overflow(elements, dim, &elements)) {
            return fail("element count of dims [{}] overflows u64", fmt::join(dims, ", "));
        }
    }
    if (dims[0] % info->blockElements != 0) {
        return fail("ne0 {} is not a multiple of the {} block size {}", dims[0], info->name, info->blockElements);
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(elements / info->blockElements, uint64_t(info->blockBytes), &bytes)) {
        return fail("byte size of {} dims [{}] overflows u64", info->name, fmt::join(dims, ", "));
    }
    return bytes;
}

class ByteBuffer {
public:
    template <class T>
    void put(T value) {
        uint8_t raw[sizeof(T)];
        std::memcpy(raw, &value, sizeof(T));
        m_bytes.insert(m_bytes.end(), raw, raw + sizeof(T));
    }

    void putString(std::string_view text) {
        put(uint64_t(text.size()));
        m_bytes.insert(m_bytes.end(), text.begin(), text.end());
    }

    std::span<const uint8_t> bytes() const { return m_bytes; }

private:
    std::vector<uint8_t> m_bytes;
};

// depth: how many arrays enclose the value.
Result<void> putValue(ByteBuffer& out, const Value& value, uint32_t depth) {
    return std::visit(
        [&](const auto& v) -> Result<void> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>) {
                out.put(uint8_t(v ? 1 : 0));
            } else if constexpr (std::is_same_v<T, std::string>) {
                if (v.size() > kMaxStringLength) {
                    return fail("string length {} exceeds limit {}", v.size(), kMaxStringLength);
                }
                out.putString(v);
            } else if constexpr (std::is_same_v<T, Array>) {
                if (depth + 1 > kMaxArrayDepth) {
                    return fail("array nesting depth {} exceeds limit {}", depth + 1, kMaxArrayDepth);
                }
                out.put(uint32_t(v.elementType));
                out.put(uint64_t(v.items.size()));
                for (size_t i = 0; i < v.items.size(); ++i) {
                    const Value& item = v.items[i];
                    if (item.type() != v.elementType) {
                        return fail("array of {} holds a {} at item {}", valueTypeName(v.elementType),
                                    valueTypeName(item.type()), i);
                    }
                    Result<void> written = putValue(out, item, depth + 1);
                    if (!written) return std::unexpected(withContext(fmt::format("array item {}", i), written.error()));
                }
            } else {
                out.put(v);
            }
            return {};
        },
        value.storage);
}

}  // namespace

GgufWriter::GgufWriter(uint32_t version, uint32_t alignment) : m_version(version), m_alignment(alignment) {}

void GgufWriter::set(std::string key, Value value) {
    for (KeyValue& kv : m_metadata) {
        if (kv.key == key) {
            kv.value = std::move(value);
            return;
        }
    }
    m_metadata.push_back(KeyValue{std::move(key), std::move(value)});
}

void GgufWriter::addTensor(std::string name, std::vector<uint64_t> dims, DType type, TensorFill fill) {
    // Invalid dims are reported by the write, which recomputes the size.
    uint64_t byteSize = tensorBytes(dims, type).value_or(0);
    m_tensors.push_back(PendingTensor{std::move(name), std::move(dims), type, byteSize, std::move(fill)});
}

void GgufWriter::addTensor(std::string name, std::vector<uint64_t> dims, DType type, std::vector<uint8_t> data) {
    // byteSize records what `data` holds; the write checks it against the dims.
    uint64_t byteSize = data.size();
    TensorFill fill = [data = std::move(data)](std::span<uint8_t> out) {
        std::copy_n(data.begin(), out.size(), out.begin());
    };
    m_tensors.push_back(PendingTensor{std::move(name), std::move(dims), type, byteSize, std::move(fill)});
}

Result<void> GgufWriter::write(const Sink& sink) const {
    if (m_version != 2 && m_version != 3) return fail("GGUF version {} cannot be written (supported: 2, 3)", m_version);
    if (!std::has_single_bit(m_alignment)) {
        return fail("writer alignment {} is not a nonzero power of two", m_alignment);
    }

    std::vector<const KeyValue*> metadata;
    metadata.reserve(m_metadata.size() + 1);
    bool hasAlignmentKey = false;
    for (const KeyValue& kv : m_metadata) {
        if (kv.key.empty()) return fail("metadata key #{}: empty key", metadata.size());
        if (kv.key.size() > kMaxNameLength) {
            return fail("metadata key #{}: key length {} exceeds limit {}", metadata.size(), kv.key.size(),
                        kMaxNameLength);
        }
        if (kv.key == kAlignmentKey) {
            const uint32_t* alignment = std::get_if<uint32_t>(&kv.value.storage);
            if (alignment == nullptr || *alignment != m_alignment) {
                return fail("metadata key '{}' must be the u32 {} the writer aligns to", kAlignmentKey, m_alignment);
            }
            hasAlignmentKey = true;
        }
        metadata.push_back(&kv);
    }
    const KeyValue alignmentKeyValue{std::string(kAlignmentKey), Value(m_alignment)};
    if (!hasAlignmentKey && m_alignment != kDefaultAlignment) metadata.push_back(&alignmentKeyValue);

    ByteBuffer head;
    head.put(kMagic);
    head.put(m_version);
    head.put(uint64_t(m_tensors.size()));
    head.put(uint64_t(metadata.size()));
    for (const KeyValue* kv : metadata) {
        head.putString(kv->key);
        head.put(uint32_t(kv->value.type()));
        Result<void> written = putValue(head, kv->value, 0);
        if (!written) return std::unexpected(withContext(fmt::format("metadata key '{}'", kv->key), written.error()));
    }

    std::unordered_set<std::string_view> names;
    uint64_t offset = 0;  // of the next tensor, in the data section
    for (const PendingTensor& t : m_tensors) {
        if (t.name.empty() || t.name.size() > kMaxNameLength) {
            return fail("tensor name length {} outside 1..{}", t.name.size(), kMaxNameLength);
        }
        if (!names.insert(t.name).second) return fail("tensor '{}': duplicate tensor name", t.name);
        if (!t.fill) return fail("tensor '{}': no fill callback", t.name);
        Result<uint64_t> bytes = tensorBytes(t.dims, t.type);
        if (!bytes) return std::unexpected(withContext(fmt::format("tensor '{}'", t.name), bytes.error()));
        if (*bytes != t.byteSize) {
            return fail("tensor '{}': data has {} bytes, {} dims [{}] take {}", t.name, t.byteSize,
                        dtypeName(t.type), fmt::join(t.dims, ", "), *bytes);
        }
        head.putString(t.name);
        head.put(uint32_t(t.dims.size()));
        for (uint64_t dim : t.dims) head.put(dim);
        head.put(uint32_t(t.type));
        head.put(offset);
        uint64_t end = 0;
        if (__builtin_add_overflow(offset, t.byteSize, &end) || __builtin_add_overflow(end, m_alignment - 1, &end)) {
            return fail("tensor '{}': data offset {} + {} bytes overflows u64", t.name, offset, t.byteSize);
        }
        offset = end / m_alignment * m_alignment;
    }
    PAGODA_RETURN_IF_ERROR(sink(head.bytes()));

    // Zeros up to the next multiple of the alignment, in small pieces: the
    // alignment may be as large as 2^31.
    auto padAfter = [&](uint64_t written) -> Result<void> {
        static constexpr std::array<uint8_t, 4096> kZeros{};
        for (uint64_t left = alignUp(written, m_alignment) - written; left > 0;) {
            size_t count = size_t(std::min<uint64_t>(left, kZeros.size()));
            PAGODA_RETURN_IF_ERROR(sink(std::span(kZeros).first(count)));
            left -= count;
        }
        return {};
    };
    // Without tensors there is no data section to align.
    if (!m_tensors.empty()) PAGODA_RETURN_IF_ERROR(padAfter(head.bytes().size()));

    // Every tensor, the last included, is padded to the alignment as
    // llama.cpp and gguf-py write it.
    std::vector<uint8_t> buffer;  // [byteSize of the tensor being written]
    for (const PendingTensor& t : m_tensors) {
        try {
            buffer.assign(size_t(t.byteSize), 0);
        } catch (const std::bad_alloc&) {
            return fail("tensor '{}': cannot allocate {} bytes to fill", t.name, t.byteSize);
        }
        t.fill(buffer);
        PAGODA_RETURN_IF_ERROR(sink(buffer));
        PAGODA_RETURN_IF_ERROR(padAfter(t.byteSize));
    }
    return {};
}

Result<std::vector<uint8_t>> GgufWriter::writeToMemory() const {
    std::vector<uint8_t> out;
    Result<void> written = write([&](std::span<const uint8_t> bytes) -> Result<void> {
        out.insert(out.end(), bytes.begin(), bytes.end());
        return {};
    });
    if (!written) return std::unexpected(written.error());
    return out;
}

namespace {

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

// Removes the temporary file unless the write got as far as renaming it.
class TempFileGuard {
public:
    explicit TempFileGuard(std::filesystem::path path) : m_path(std::move(path)) {}
    TempFileGuard(const TempFileGuard&) = delete;
    TempFileGuard& operator=(const TempFileGuard&) = delete;
    ~TempFileGuard() {
        if (m_armed) {
            std::error_code ignored;
            std::filesystem::remove(m_path, ignored);
        }
    }
    void disarm() { m_armed = false; }

private:
    std::filesystem::path m_path;
    bool m_armed = true;
};

}  // namespace

Result<void> GgufWriter::writeFile(const std::filesystem::path& path, const std::function<bool()>& cancelled) const {
    std::error_code error;
    if (path.has_parent_path()) {
        std::filesystem::create_directories(path.parent_path(), error);
        if (error) return fail("{}: cannot create directory {}: {}", path.string(), path.parent_path().string(),
                               error.message());
    }
    std::filesystem::path tmp = path;
    tmp += ".tmp";
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(tmp.c_str(), "wb"));
    if (!file) return fail("{}: cannot create: {}", tmp.string(), errnoText(errno));
    TempFileGuard guard(tmp);

    PAGODA_RETURN_IF_ERROR(write([&](std::span<const uint8_t> bytes) -> Result<void> {
        if (cancelled && cancelled()) return fail("cancelled");
        if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
            return fail("{}: write failed: {}", tmp.string(), errnoText(errno));
        }
        return {};
    }));
    // Flush to disk before the rename so that a crash leaves the old file or the new one, never a torn one.
    if (std::fflush(file.get()) != 0 || ::fsync(::fileno(file.get())) != 0) {
        return fail("{}: flush failed: {}", tmp.string(), errnoText(errno));
    }
    if (std::fclose(file.release()) != 0) return fail("{}: close failed: {}", tmp.string(), errnoText(errno));
    std::filesystem::rename(tmp, path, error);
    if (error) return fail("{}: cannot rename {} into place: {}", path.string(), tmp.string(), error.message());
    guard.disarm();
    return {};
}

}  // namespace pagoda::gguf

#include "engine/gguf/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <system_error>
#include <unordered_map>

#include <fmt/ranges.h>

namespace pagoda::gguf {

static_assert(std::endian::native == std::endian::little, "the reader assumes a little-endian host");

// Owns a read-only mapping of a whole regular file.
class MappedFile {
public:
    static Result<std::unique_ptr<MappedFile>> open(const std::filesystem::path& path);

    // Takes ownership of a mapping made by mmap.
    MappedFile(void* data, size_t size) : m_data(data), m_size(size) {}
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile() { ::munmap(m_data, m_size); }

    std::span<const uint8_t> bytes() const { return {static_cast<const uint8_t*>(m_data), m_size}; }
    Result<void> copyToMemory(size_t begin, size_t end);
    uint64_t bytesInMemory() const { return m_copied; }

private:
    void* m_data;
    size_t m_size;
    uint64_t m_copied = 0;
};

namespace {

std::string errnoText(int err) { return std::generic_category().message(err); }

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : m_fd(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() { ::close(m_fd); }
    int get() const { return m_fd; }

private:
    int m_fd;
};

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::filesystem::path& path) {
    // O_NONBLOCK so that a FIFO cannot block the open; it is rejected below.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return fail("cannot open: {}", errnoText(errno));
    FileDescriptor file(fd);
    struct stat status {};
    if (::fstat(file.get(), &status) != 0) return fail("cannot stat: {}", errnoText(errno));
    if (S_ISDIR(status.st_mode)) return fail("is a directory, not a GGUF file");
    if (!S_ISREG(status.st_mode)) return fail("not a regular file");
    if (status.st_size == 0) return fail("file is empty (0 bytes), not a GGUF file");
    size_t size = size_t(status.st_size);
    void* at = reserveHugeAligned(size);
    void* data = at == nullptr ? MAP_FAILED : ::mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, file.get(), 0);
    if (data == MAP_FAILED) {
        const int err = errno;
        if (at != nullptr) ::munmap(at, size);
        return fail("cannot map {} bytes: {}", size, errnoText(err));
    }
    return std::make_unique<MappedFile>(data, size);
}

// [begin, end) is widened to huge-page boundaries (the mapping starts on
// one), so that the copy's huge pages keep their alignment where they land.
Result<void> MappedFile::copyToMemory(size_t begin, size_t end) {
    begin = begin / kCopyGranule * kCopyGranule;
    end = std::min(m_size, (std::min(end, m_size) + kCopyGranule - 1) / kCopyGranule * kCopyGranule);
    if (begin >= end) return {};
    const size_t length = end - begin;
    void* target = static_cast<uint8_t*>(m_data) + begin;
    Result<HugePageMemory> copy = HugePageMemory::allocate(length);
    if (!copy) return fail("cannot allocate {} bytes for the weights: {}", length, copy.error().message);
    std::memcpy(copy->data(), target, length);
    ::mprotect(copy->data(), length, PROT_READ);
    // Onto the file mapping's addresses, which it replaces.
    if (::mremap(copy->data(), length, length, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) {
        return fail("cannot move the copy of the weights into place: {}", errnoText(errno));
    }
    copy->release();
    m_copied += length;
    return {};
}

namespace {

// Smallest encodings, used to bound counts by the bytes left before anything
// is allocated.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;        // key length, value type, one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, one dim, type, offset
constexpr size_t kMaxShownNameLength = 96;

uint64_t minValueBytes(ValueType type) {
    switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::Bool:
        return 1;
    case ValueType::U16:
    case ValueType::I16:
        return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
        return 4;
    case ValueType::String:
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
        return 8;
    case ValueType::Array:
        return 4 + 8;
    }
    return 1;
}

// Names from the file go into error messages: escape control bytes and cut
// long names so that a hostile name cannot garble a terminal or a log.
std::string shown(std::string_view name) {
    std::string out;
    for (char c : name.substr(0, kMaxShownNameLength)) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '\'' || c == '\\') {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
    if (name.size() > kMaxShownNameLength) out += "...";
    return out;
}

std::string shownDims(const std::vector<uint64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// Prefixes the error of `result`, if any; the context is built only on failure.
// Returns the value rather than `result` itself: copying a Result<Value> makes
// clang recurse through Value's unconstrained converting constructor.
template <class T, class MakeContext>
Result<T> inContext(Result<T>&& result, MakeContext makeContext) {
    if (!result) return std::unexpected(withContext(makeContext(), std::move(result).error()));
    return std::move(*result);
}

std::optional<uint64_t> checkedMul(uint64_t a, uint64_t b) {
    uint64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
    return product;
}

// Bounds-checked little-endian reads over the whole file.
class Cursor {
public:
    explicit Cursor(std::span<const uint8_t> bytes) : m_bytes(bytes) {}

    uint64_t offset() const { return m_offset; }
    uint64_t remaining() const { return m_bytes.size() - m_offset; }

    template <class T>
    Result<T> read(std::string_view what) {
        if (remaining() < sizeof(T)) {
            return fail("unexpected end of file reading {} at offset {}: need {} bytes, {} remain", what, m_offset,
                        sizeof(T), remaining());
        }
        T value;
        std::memcpy(&value, m_bytes.data() + m_offset, sizeof(T));
        m_offset += sizeof(T);
        return value;
    }

    // A GGUF string: u64 length, then the bytes (no NUL). The view points into the file.
    Result<std::string_view> readString(uint64_t maxLength) {
        PAGODA_ASSIGN_OR_RETURN(uint64_t length, read<uint64_t>("string length"));
        if (length > remaining()) return fail("string length {} exceeds remaining {} bytes", length, remaining());
        if (length > maxLength) return fail("string length {} exceeds limit {}", length, maxLength);
        std::string_view text(reinterpret_cast<const char*>(m_bytes.data() + m_offset), size_t(length));
        m_offset += length;
        return text;
    }

private:
    std::span<const uint8_t> m_bytes;
    uint64_t m_offset = 0;
};

class MetadataParser {
public:
    explicit MetadataParser(Cursor& cursor) : m_cursor(cursor) {}

    // depth: how many arrays enclose the value.
    Result<Value> readValue(ValueType type, uint32_t depth) {
        if (m_valuesLeft == 0) return fail("metadata holds more than {} values", kMaxMetadataValues);
        --m_valuesLeft;
        switch (type) {
        case ValueType::U8:
            return readScalar<uint8_t>(type);
        case ValueType::I8:
            return readScalar<int8_t>(type);
        case ValueType::U16:
            return readScalar<uint16_t>(type);
        case ValueType::I16:
            return readScalar<int16_t>(type);
        case ValueType::U32:
            return readScalar<uint32_t>(type);
        case ValueType::I32:
            return readScalar<int32_t>(type);
        case ValueType::F32:
            return readScalar<float>(type);
        case ValueType::U64:
            return readScalar<uint64_t>(type);
        case ValueType::I64:
            return readScalar<int64_t>(type);
        case ValueType::F64:
            return readScalar<double>(type);
        case ValueType::Bool: {
            PAGODA_ASSIGN_OR_RETURN(uint8_t byte, m_cursor.read<uint8_t>("bool"));
            if (byte > 1) return fail("bool value {} is not 0 or 1", byte);
            return Value(byte == 1);
        }
        case ValueType::String: {
            PAGODA_ASSIGN_OR_RETURN(std::string_view text, m_cursor.readString(kMaxStringLength));
            return Value(std::string(text));
        }
        case ValueType::Array: {
            PAGODA_ASSIGN_OR_RETURN(Array array, readArray(depth + 1));
            return Value(std::move(array));
        }
        }
        return fail("value type {} is not a GGUF value type (0..{})", uint32_t(type), kValueTypeCount - 1);
    }

    Result<ValueType> readType(std::string_view what) {
        PAGODA_ASSIGN_OR_RETURN(uint32_t raw, m_cursor.read<uint32_t>(what));
        if (raw >= kValueTypeCount) {
            return fail("{} {} is not a GGUF value type (0..{})", what, raw, kValueTypeCount - 1);
        }
        return ValueType(raw);
    }

private:
    template <class T>
    Result<Value> readScalar(ValueType type) {
        PAGODA_ASSIGN_OR_RETURN(T value, m_cursor.read<T>(valueTypeName(type)));
        return Value(value);
    }

    // depth: 1 for an array that is a key's value, 2 for an array inside it, ...
    Result<Array> readArray(uint32_t depth) {
        if (depth > kMaxArrayDepth) return fail("array nesting depth {} exceeds limit {}", depth, kMaxArrayDepth);
        PAGODA_ASSIGN_OR_RETURN(ValueType elementType, readType("array element type"));
        PAGODA_ASSIGN_OR_RETURN(uint64_t count, m_cursor.read<uint64_t>("array count"));
        uint64_t elementBytes = minValueBytes(elementType);
        uint64_t fitting = m_cursor.remaining() / elementBytes;
        if (count > fitting) {
            return fail("array count {} exceeds the {} {} elements that the remaining {} bytes can hold", count,
                        fitting, valueTypeName(elementType), m_cursor.remaining());
        }
        if (count > m_valuesLeft) {
            return fail("array count {} exceeds the {} values left of the metadata limit {}", count, m_valuesLeft,
                        kMaxMetadataValues);
        }
        Array array{elementType, {}};
        array.items.reserve(size_t(count));
        for (uint64_t i = 0; i < count; ++i) {
            PAGODA_ASSIGN_OR_RETURN(Value item, inContext(readValue(elementType, depth),
                                                          [&] { return fmt::format("array item {}", i); }));
            array.items.push_back(std::move(item));
        }
        return array;
    }

    Cursor& m_cursor;
    uint64_t m_valuesLeft = kMaxMetadataValues;
};

struct Header {
    uint32_t version = 0;
    uint64_t tensorCount = 0;
    uint64_t keyValueCount = 0;
};

Result<Header> readHeader(Cursor& cursor) {
    PAGODA_ASSIGN_OR_RETURN(uint32_t magic, cursor.read<uint32_t>("magic"));
    if (magic != kMagic) return fail("bad magic 0x{:08x} (expected 0x{:08x}, \"GGUF\")", magic, kMagic);
    Header header;
    PAGODA_ASSIGN_OR_RETURN(header.version, cursor.read<uint32_t>("version"));
    if (header.version == 1) return fail("GGUF version 1 is not supported");
    if (header.version == std::byteswap(2u) || header.version == std::byteswap(3u)) {
        return fail("GGUF version {} is a byte-swapped {}: big-endian files are not supported", header.version,
                    std::byteswap(header.version));
    }
    if (header.version != 2 && header.version != 3) {
        return fail("unsupported GGUF version {} (supported: 2, 3)", header.version);
    }
    PAGODA_ASSIGN_OR_RETURN(header.tensorCount, cursor.read<uint64_t>("tensor_count"));
    PAGODA_ASSIGN_OR_RETURN(header.keyValueCount, cursor.read<uint64_t>("metadata_kv_count"));
    uint64_t maxTensors = cursor.remaining() / kMinTensorInfoBytes;
    if (header.tensorCount > maxTensors) {
        return fail("tensor_count {} exceeds {}, the most that the remaining {} bytes can hold at {} bytes each",
                    header.tensorCount, maxTensors, cursor.remaining(), kMinTensorInfoBytes);
    }
    uint64_t maxKeyValues = (cursor.remaining() - header.tensorCount * kMinTensorInfoBytes) / kMinKeyValueBytes;
    if (header.keyValueCount > maxKeyValues) {
        return fail("metadata_kv_count {} exceeds {}, the most that the remaining {} bytes can hold at {} bytes each "
                    "after {} tensor infos",
                    header.keyValueCount, maxKeyValues, cursor.remaining(), kMinKeyValueBytes, header.tensorCount);
    }
    return header;
}

Result<uint64_t> alignmentFrom(const Value& value) {
    const uint32_t* alignment = std::get_if<uint32_t>(&value.storage);
    if (alignment == nullptr) return fail("expected u32, found {}", valueTypeName(value.type()));
    if (!std::has_single_bit(*alignment)) return fail("alignment {} is not a nonzero power of two", *alignment);
    return *alignment;
}

struct Metadata {
    std::vector<KeyValue> keyValues;
    uint64_t alignment = kDefaultAlignment;
};

Result<Metadata> readMetadata(Cursor& cursor, uint64_t count) {
    Metadata metadata;
    metadata.keyValues.reserve(size_t(count));
    std::unordered_map<std::string_view, uint64_t> seen;  // key (viewing the file) -> index
    MetadataParser parser(cursor);
    for (uint64_t i = 0; i < count; ++i) {
        auto atIndex = [&] { return fmt::format("metadata key #{}", i); };
        PAGODA_ASSIGN_OR_RETURN(std::string_view key, inContext(cursor.readString(kMaxNameLength), atIndex));
        if (key.empty()) return fail("metadata key #{}: empty key", i);
        auto [previous, inserted] = seen.emplace(key, i);
        if (!inserted) {
            return fail("metadata key #{} '{}': duplicate key (first at #{})", i, shown(key), previous->second);
        }
        auto atKey = [&] { return fmt::format("metadata key '{}'", shown(key)); };
        PAGODA_ASSIGN_OR_RETURN(ValueType type, inContext(parser.readType("value type"), atKey));
        PAGODA_ASSIGN_OR_RETURN(Value value, inContext(parser.readValue(type, 0), atKey));
        if (key == "general.alignment") {
            PAGODA_ASSIGN_OR_RETURN(metadata.alignment, inContext(alignmentFrom(value), atKey));
        }
        metadata.keyValues.push_back(KeyValue{std::string(key), std::move(value)});
    }
    return metadata;
}

Result<TensorInfo> readTensorInfo(Cursor& cursor, uint64_t alignment) {
    TensorInfo tensor;
    PAGODA_ASSIGN_OR_RETURN(uint32_t dimCount, cursor.read<uint32_t>("n_dims"));
    if (dimCount == 0 || dimCount > kMaxDims) return fail("n_dims {} outside 1..{}", dimCount, kMaxDims);
    tensor.dims.resize(dimCount);
    tensor.elementCount = 1;
    for (uint32_t d = 0; d < dimCount; ++d) {
        PAGODA_ASSIGN_OR_RETURN(tensor.dims[d], cursor.read<uint64_t>("dimension"));
        if (tensor.dims[d] == 0) return fail("dimension {} is 0 (must be at least 1)", d);
        std::optional<uint64_t> count = checkedMul(tensor.elementCount, tensor.dims[d]);
        if (!count) {
            tensor.dims.resize(d + 1);
            return fail("element count of dims {} overflows u64", shownDims(tensor.dims));
        }
        tensor.elementCount = *count;
    }
    PAGODA_ASSIGN_OR_RETURN(uint32_t rawType, cursor.read<uint32_t>("ggml type"));
    std::optional<DTypeInfo> info = dtypeInfo(rawType);
    if (!info) return fail("unsupported ggml type {} (not in Pagoda's type table)", rawType);
    tensor.type = DType(rawType);
    if (tensor.dims[0] % info->blockElements != 0) {
        return fail("ne0 {} is not a multiple of the {} block size {}", tensor.dims[0], info->name,
                    info->blockElements);
    }
    std::optional<uint64_t> byteSize = checkedMul(tensor.elementCount / info->blockElements, info->blockBytes);
    if (!byteSize) return fail("byte size of {} dims {} overflows u64", info->name, shownDims(tensor.dims));
    tensor.byteSize = *byteSize;
    PAGODA_ASSIGN_OR_RETURN(tensor.offset, cursor.read<uint64_t>("offset"));
    if (tensor.offset % alignment != 0) {
        return fail("offset {} is not a multiple of the alignment {}", tensor.offset, alignment);
    }
    return tensor;
}

Result<std::vector<TensorInfo>> readTensorInfos(Cursor& cursor, uint64_t count, uint64_t alignment) {
    uint64_t maxTensors = cursor.remaining() / kMinTensorInfoBytes;
    if (count > maxTensors) {
        return fail("tensor_count {} exceeds {}, the most that the remaining {} bytes can hold at {} bytes each", count,
                    maxTensors, cursor.remaining(), kMinTensorInfoBytes);
    }
    std::vector<TensorInfo> tensors;
    tensors.reserve(size_t(count));
    std::unordered_map<std::string_view, uint64_t> seen;  // name (viewing the file) -> index
    for (uint64_t i = 0; i < count; ++i) {
        PAGODA_ASSIGN_OR_RETURN(std::string_view name, inContext(cursor.readString(kMaxNameLength), [&] {
                                    return fmt::format("tensor info #{}: name", i);
                                }));
        if (name.empty()) return fail("tensor info #{}: empty name", i);
        auto [previous, inserted] = seen.emplace(name, i);
        if (!inserted) {
            return fail("tensor info #{} '{}': duplicate tensor name (first at #{})", i, shown(name), previous->second);
        }
        PAGODA_ASSIGN_OR_RETURN(TensorInfo tensor, inContext(readTensorInfo(cursor, alignment), [&] {
                                    return fmt::format("tensor '{}'", shown(name));
                                }));
        tensor.name = std::string(name);
        tensors.push_back(std::move(tensor));
    }
    return tensors;
}

Result<void> checkTensorData(const std::vector<TensorInfo>& tensors, uint64_t dataSize) {
    for (const TensorInfo& t : tensors) {
        if (t.offset > dataSize) {
            return fail("tensor '{}': offset {} past end of file data section (size {})", shown(t.name), t.offset,
                        dataSize);
        }
        if (t.byteSize > dataSize - t.offset) {
            return fail("tensor '{}': data [{}, {}) past end of file data section (size {})", shown(t.name), t.offset,
                        t.offset + t.byteSize, dataSize);
        }
    }
    std::vector<size_t> byOffset(tensors.size());
    std::iota(byOffset.begin(), byOffset.end(), size_t(0));
    std::sort(byOffset.begin(), byOffset.end(),
              [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
    for (size_t i = 1; i < byOffset.size(); ++i) {
        const TensorInfo& before = tensors[byOffset[i - 1]];
        const TensorInfo& after = tensors[byOffset[i]];
        if (after.offset < before.offset + before.byteSize) {
            return fail("tensor '{}': data [{}, {}) overlaps tensor '{}' data [{}, {})", shown(after.name),
                        after.offset, after.offset + after.byteSize, shown(before.name), before.offset,
                        before.offset + before.byteSize);
        }
    }
    return {};
}

Result<const Value*> findValue(const GgufFile& file, std::string_view key) {
    const Value* value = file.find(key);
    if (value == nullptr) return fail("missing metadata key '{}'", shown(key));
    return value;
}

std::string describeType(const Value& value) {
    if (const Array* array = value.asArray()) return fmt::format("array of {}", valueTypeName(array->elementType));
    return std::string(valueTypeName(value.type()));
}

std::unexpected<Error> typeMismatch(std::string_view key, std::string_view expected, const Value& value) {
    return fail("key '{}': expected {}, found {}", shown(key), expected, describeType(value));
}

bool isInteger(ValueType type) {
    switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
        return true;
    default:
        return false;
    }
}

}  // namespace

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

Result<GgufFile> GgufFile::open(const std::filesystem::path& path) {
    auto context = [&] { return path.string(); };
    PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, inContext(MappedFile::open(path), context));
    PAGODA_ASSIGN_OR_RETURN(GgufFile file, inContext(parse(mapping->bytes()), context));
    file.m_mapping = std::move(mapping);
    return file;
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes) {
    // The counts are bounded by the file size before anything is reserved, so
    // running out of memory means a large file on a small machine, not a lie.
    try {
        Cursor cursor(bytes);
        PAGODA_ASSIGN_OR_RETURN(Header header, readHeader(cursor));
        PAGODA_ASSIGN_OR_RETURN(Metadata metadata, readMetadata(cursor, header.keyValueCount));
        PAGODA_ASSIGN_OR_RETURN(std::vector<TensorInfo> tensors,
                                readTensorInfos(cursor, header.tensorCount, metadata.alignment));
        uint64_t alignment = metadata.alignment;
        uint64_t dataOffset = (cursor.offset() + alignment - 1) / alignment * alignment;
        // Without tensors the padding before the (empty) data section may be missing.
        if (dataOffset > bytes.size() && !tensors.empty()) {
            return fail("data section starts at offset {}, past end of file (size {})", dataOffset, bytes.size());
        }
        uint64_t dataSize = dataOffset < bytes.size() ? bytes.size() - dataOffset : 0;
        PAGODA_RETURN_IF_ERROR(checkTensorData(tensors, dataSize));

        GgufFile file;
        file.m_bytes = bytes;
        file.m_version = header.version;
        file.m_alignment = alignment;
        file.m_dataOffset = dataOffset;
        file.m_metadata = std::move(metadata.keyValues);
        file.m_tensors = std::move(tensors);
        return file;
    } catch (const std::bad_alloc&) {
        return fail("out of memory parsing the metadata of a {} byte file", bytes.size());
    }
}

const Value* GgufFile::find(std::string_view key) const {
    for (const KeyValue& kv : m_metadata) {
        if (kv.key == key) return &kv.value;
    }
    return nullptr;
}

Result<int64_t> GgufFile::getInt(std::string_view key) const {
    PAGODA_ASSIGN_OR_RETURN(const Value* value, findValue(*this, key));
    if (!isInteger(value->type())) return typeMismatch(key, "an integer", *value);
    std::optional<int64_t> result = value->asInt();
    if (!result) {
        return fail("key '{}': value {} exceeds the int64 maximum {}", shown(key), std::get<uint64_t>(value->storage),
                    std::numeric_limits<int64_t>::max());
    }
    return *result;
}

Result<double> GgufFile::getFloat(std::string_view key) const {
    PAGODA_ASSIGN_OR_RETURN(const Value* value, findValue(*this, key));
    ValueType type = value->type();
    if (!isInteger(type) && type != ValueType::F32 && type != ValueType::F64) {
        return typeMismatch(key, "a number", *value);
    }
    return *value->asFloat();
}

Result<std::string> GgufFile::getString(std::string_view key) const {
    PAGODA_ASSIGN_OR_RETURN(const Value* value, findValue(*this, key));
    const std::string* text = value->asString();
    if (text == nullptr) return typeMismatch(key, "a string", *value);
    return *text;
}

Result<const Array*> GgufFile::getArray(std::string_view key) const {
    PAGODA_ASSIGN_OR_RETURN(const Value* value, findValue(*this, key));
    const Array* array = value->asArray();
    if (array == nullptr) return typeMismatch(key, "an array", *value);
    return array;
}

Result<bool> GgufFile::getBool(std::string_view key) const {
    PAGODA_ASSIGN_OR_RETURN(const Value* value, findValue(*this, key));
    std::optional<bool> flag = value->asBool();
    if (!flag) return typeMismatch(key, "a bool", *value);
    return *flag;
}

const TensorInfo* GgufFile::findTensor(std::string_view name) const {
    for (const TensorInfo& tensor : m_tensors) {
        if (tensor.name == name) return &tensor;
    }
    return nullptr;
}

std::span<const uint8_t> GgufFile::tensorData(const TensorInfo& tensor) const {
    return m_bytes.subspan(size_t(m_dataOffset + tensor.offset), size_t(tensor.byteSize));
}

Result<void> GgufFile::copyToMemory(uint64_t begin, uint64_t end) {
    if (!m_mapping || inMemory()) return {};
    return m_mapping->copyToMemory(size_t(std::min(begin, fileSize())), size_t(std::min(end, fileSize())));
}

uint64_t GgufFile::bytesInMemory() const { return m_mapping ? m_mapping->bytesInMemory() : fileSize(); }

bool GgufFile::inMemory() const { return bytesInMemory() >= fileSize(); }

}  // namespace pagoda::gguf

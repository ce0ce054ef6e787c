// The reader against crafted, truncated and randomly corrupted files: every
// one must give an Error naming the field and value, never a crash.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "gguf_bytes.h"

namespace pagoda::gguf {
namespace {

using test::GgufBytes;
using ::testing::HasSubstr;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kF32 = uint32_t(DType::F32);
constexpr uint32_t kQ8_0 = uint32_t(DType::Q8_0);

// The parse error, or "<parsed>" so that a HasSubstr expectation fails
// with a readable message when a bad file is accepted.
std::string errorOf(const GgufBytes& bytes) {
    Result<GgufFile> file = GgufFile::parse(bytes.bytes());
    return file ? std::string("<parsed>") : file.error().message;
}

// One tensor and no metadata; `dataBytes` of data after the padding.
GgufBytes oneTensor(const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset, size_t dataBytes) {
    GgufBytes b;
    b.header(1, 0).tensorInfo("blk.0.w", dims, type, offset).padTo(kDefaultAlignment).pattern(dataBytes);
    return b;
}

// One key of `type`; the caller appends the value.
GgufBytes oneKey(std::string_view key, ValueType type) {
    GgufBytes b;
    b.header(0, 1).key(key, type);
    return b;
}

// A small valid file with every value type, nested and empty arrays and two
// tensors; the last tensor ends exactly at the end of the file, so every
// shorter prefix is invalid.
GgufBytes richFile() {
    GgufBytes b;
    b.header(2, 17);
    b.key("general.architecture", ValueType::String).str("llama");
    b.key("v.u8", ValueType::U8).u8(200);
    b.key("v.i8", ValueType::I8).put(int8_t(-5));
    b.key("v.u16", ValueType::U16).put(uint16_t(65000));
    b.key("v.i16", ValueType::I16).put(int16_t(-300));
    b.key("v.u32", ValueType::U32).u32(4000000000u);
    b.key("v.i32", ValueType::I32).put(int32_t(-7));
    b.key("v.f32", ValueType::F32).put(1.5f);
    b.key("v.bool", ValueType::Bool).u8(1);
    b.key("v.u64", ValueType::U64).u64(kU64Max);
    b.key("v.i64", ValueType::I64).put(int64_t(-9));
    b.key("v.f64", ValueType::F64).put(0.25);
    b.key("v.strings", ValueType::Array).u32(uint32_t(ValueType::String)).u64(3).str("a").str("").str("bc");
    b.key("v.nested", ValueType::Array).u32(uint32_t(ValueType::Array)).u64(2);
    b.u32(uint32_t(ValueType::String)).u64(1).str("x");
    b.u32(uint32_t(ValueType::I32)).u64(0);
    b.key("v.empty", ValueType::Array).u32(uint32_t(ValueType::U8)).u64(0);
    b.key("v.bools", ValueType::Array).u32(uint32_t(ValueType::Bool)).u64(2).u8(0).u8(1);
    b.key("general.alignment", ValueType::U32).u32(32);
    b.tensorInfo("a", {4, 2}, kF32, 0);
    b.tensorInfo("b", {32}, kQ8_0, 32);
    b.padTo(32).pattern(32 + 34);
    return b;
}

// Reads every value and every data byte, so that the sanitizers see any
// out-of-bounds view the parser let through.
uint64_t touchAll(const Value& value) {
    if (const Array* array = value.asArray()) {
        uint64_t sum = array->items.size();
        for (const Value& item : array->items) sum += touchAll(item);
        return sum;
    }
    if (const std::string* text = value.asString()) {
        uint64_t sum = text->size();
        for (char c : *text) sum += uint8_t(c);
        return sum;
    }
    return uint64_t(value.asInt().value_or(0)) + uint64_t(value.asFloat().value_or(0) != 0);
}

uint64_t touchAll(const GgufFile& file) {
    uint64_t sum = 0;
    for (const KeyValue& kv : file.metadata()) sum += kv.key.size() + touchAll(kv.value);
    for (const TensorInfo& tensor : file.tensors()) {
        for (uint8_t byte : file.tensorData(tensor)) sum += byte;
    }
    return sum;
}

TEST(GgufHostile, RichFileParses) {
    GgufBytes b = richFile();
    Result<GgufFile> file = GgufFile::parse(b.bytes());
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->metadata().size(), 17u);
    ASSERT_EQ(file->tensors().size(), 2u);
    EXPECT_EQ(file->tensors()[1].byteSize, 34u);
    EXPECT_EQ(file->dataOffset() + 32 + 34, b.size());
    const Array* nested = *file->getArray("v.nested");
    ASSERT_EQ(nested->items.size(), 2u);
    EXPECT_EQ(*nested->items[0].asArray()->items[0].asString(), "x");
    EXPECT_TRUE(nested->items[1].asArray()->items.empty());
}

TEST(GgufHostile, EveryTruncationFails) {
    GgufBytes full = richFile();
    for (size_t length = 0; length < full.size(); ++length) {
        std::span<const uint8_t> prefix(full.bytes().data(), length);
        Result<GgufFile> file = GgufFile::parse(prefix);
        EXPECT_FALSE(file) << "prefix of " << length << " bytes parsed";
    }
    EXPECT_TRUE(GgufFile::parse(full.bytes()));
}

TEST(GgufHostile, TruncationMessagesNameTheField) {
    GgufBytes full = richFile();
    std::span<const uint8_t> bytes(full.bytes());
    EXPECT_THAT(GgufFile::parse(bytes.first(2)).error().message,
                HasSubstr("unexpected end of file reading magic at offset 0: need 4 bytes, 2 remain"));
    EXPECT_THAT(GgufFile::parse(bytes.first(10)).error().message, HasSubstr("reading tensor_count at offset 8"));
    EXPECT_THAT(GgufFile::parse(bytes.first(24)).error().message,
                HasSubstr("tensor_count 2 exceeds 0, the most that the remaining 0 bytes can hold"));
}

TEST(GgufHostile, RandomByteFlipsNeverCrash) {
    const GgufBytes valid = richFile();
    std::mt19937_64 rng(20240611);
    int parsed = 0;
    constexpr int kMutations = 4000;
    for (int i = 0; i < kMutations; ++i) {
        std::vector<uint8_t> bytes = valid.bytes();
        int flips = 1 + int(rng() % 4);
        for (int f = 0; f < flips; ++f) {
            size_t at = rng() % bytes.size();
            // Half the time a single bit, else a byte that often makes a length or count huge.
            bytes[at] = rng() % 2 ? uint8_t(bytes[at] ^ (1u << (rng() % 8))) : uint8_t(rng());
        }
        if (rng() % 8 == 0) bytes.resize(rng() % bytes.size());
        Result<GgufFile> file = GgufFile::parse(bytes);
        if (file) {
            ++parsed;
            touchAll(*file);
        } else {
            EXPECT_FALSE(file.error().message.empty());
        }
    }
    // Flips inside tensor data and values keep the file valid.
    EXPECT_GT(parsed, 0);
    EXPECT_LT(parsed, kMutations);
}

TEST(GgufHostile, BadMagic) {
    GgufBytes b;
    b.u32(0x46554746).u32(3).u64(0).u64(0);
    EXPECT_THAT(errorOf(b), HasSubstr("bad magic 0x46554746"));
}

TEST(GgufHostile, Versions) {
    GgufBytes v1;
    v1.u32(kMagic).u32(1).u32(0).u32(0);
    EXPECT_THAT(errorOf(v1), HasSubstr("GGUF version 1 is not supported"));
    GgufBytes v4;
    v4.header(0, 0, 4);
    EXPECT_THAT(errorOf(v4), HasSubstr("unsupported GGUF version 4 (supported: 2, 3)"));
    GgufBytes v0;
    v0.header(0, 0, 0);
    EXPECT_THAT(errorOf(v0), HasSubstr("unsupported GGUF version 0"));
    GgufBytes bigEndian;
    bigEndian.header(0, 0, 0x03000000);
    EXPECT_THAT(errorOf(bigEndian), HasSubstr("big-endian files are not supported"));
    GgufBytes v2;
    v2.header(0, 0, 2);
    Result<GgufFile> file = GgufFile::parse(v2.bytes());
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->version(), 2u);
}

TEST(GgufHostile, EmptyAndTinyBuffers) {
    EXPECT_THAT(GgufFile::parse({}).error().message, HasSubstr("reading magic at offset 0: need 4 bytes, 0 remain"));
    GgufBytes b;
    b.u32(kMagic).u32(3).u32(0);
    EXPECT_THAT(errorOf(b), HasSubstr("reading tensor_count at offset 8: need 8 bytes, 4 remain"));
}

TEST(GgufHostile, ZeroTensorsWithoutTrailingPadding) {
    GgufBytes b;
    b.header(0, 1).key("general.name", ValueType::String).str("x");
    Result<GgufFile> file = GgufFile::parse(b.bytes());
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_TRUE(file->tensors().empty());
}

TEST(GgufHostile, HugeTensorCount) {
    GgufBytes b;
    b.header(uint64_t(1) << 63, 0).pattern(100);
    EXPECT_THAT(errorOf(b), HasSubstr("tensor_count 9223372036854775808 exceeds 3, the most that the remaining 100 "
                                      "bytes can hold at 32 bytes each"));
}

TEST(GgufHostile, HugeKeyValueCount) {
    GgufBytes b;
    b.header(0, kU64Max).pattern(100);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata_kv_count 18446744073709551615 exceeds 7"));
}

TEST(GgufHostile, KeyValueAndTensorCountsTogetherBounded) {
    GgufBytes b;
    b.header(3, 1).pattern(100);  // 3 tensor infos take at least 96 bytes: no room for a key
    EXPECT_THAT(errorOf(b), HasSubstr("metadata_kv_count 1 exceeds 0"));
}

TEST(GgufHostile, HugeKeyLength) {
    GgufBytes b;
    b.header(0, 1).u64(kU64Max).pattern(120);
    EXPECT_THAT(errorOf(b),
                HasSubstr("metadata key #0: string length 18446744073709551615 exceeds remaining 120 bytes"));
}

TEST(GgufHostile, HugeStringValueLength) {
    GgufBytes b = oneKey("general.name", ValueType::String);
    b.u64(uint64_t(1) << 40).pattern(16);
    EXPECT_THAT(errorOf(b),
                HasSubstr("metadata key 'general.name': string length 1099511627776 exceeds remaining 16 bytes"));
}

TEST(GgufHostile, EmptyKey) {
    GgufBytes b;
    b.header(0, 1).key("", ValueType::U8).u8(1);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key #0: empty key"));
}

TEST(GgufHostile, KeyLongerThanLimit) {
    std::string key(kMaxNameLength + 1, 'k');
    GgufBytes b;
    b.header(0, 1).key(key, ValueType::U8).u8(1);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key #0: string length 65536 exceeds limit 65535"));
}

TEST(GgufHostile, ControlBytesInNamesAreEscaped) {
    GgufBytes b;
    b.header(0, 1).key(std::string("bad\x1b[2Jkey", 10), ValueType::U32).u8(1);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key 'bad\\x1b[2Jkey': unexpected end of file reading u32"));
}

TEST(GgufHostile, UnknownValueType) {
    GgufBytes b = oneKey("x", ValueType(13));
    b.u8(0);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key 'x': value type 13 is not a GGUF value type (0..12)"));
}

TEST(GgufHostile, BadBoolByte) {
    GgufBytes b = oneKey("flag", ValueType::Bool);
    b.u8(2);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key 'flag': bool value 2 is not 0 or 1"));
}

TEST(GgufHostile, BadBoolInsideArray) {
    GgufBytes b = oneKey("flags", ValueType::Array);
    b.u32(uint32_t(ValueType::Bool)).u64(3).u8(1).u8(0).u8(255);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key 'flags': array item 2: bool value 255 is not 0 or 1"));
}

TEST(GgufHostile, HugeArrayCount) {
    GgufBytes b = oneKey("tokenizer.ggml.tokens", ValueType::Array);
    b.u32(uint32_t(ValueType::String)).u64(uint64_t(1) << 60).pattern(64);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key 'tokenizer.ggml.tokens': array count 1152921504606846976 exceeds "
                                      "the 8 string elements that the remaining 64 bytes can hold"));
}

TEST(GgufHostile, HugeArrayOfArraysCount) {
    GgufBytes b = oneKey("nested", ValueType::Array);
    b.u32(uint32_t(ValueType::Array)).u64(kU64Max).pattern(48);
    EXPECT_THAT(errorOf(b), HasSubstr("array count 18446744073709551615 exceeds the 4 array elements"));
}

TEST(GgufHostile, ArrayCountAboveValueLimit) {
    uint64_t count = kMaxMetadataValues + 1;
    GgufBytes b = oneKey("big", ValueType::Array);
    b.u32(uint32_t(ValueType::U8)).u64(count);
    std::vector<uint8_t> bytes = b.bytes();
    bytes.resize(bytes.size() + count, 0);
    Result<GgufFile> file = GgufFile::parse(bytes);
    ASSERT_FALSE(file);
    EXPECT_THAT(file.error().message, HasSubstr("array count 67108865 exceeds the 67108863 values left of the "
                                                "metadata limit 67108864"));
}

TEST(GgufHostile, UnknownArrayElementType) {
    GgufBytes b = oneKey("arr", ValueType::Array);
    b.u32(77).u64(0);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key 'arr': array element type 77 is not a GGUF value type"));
}

// Arrays nested `depth` deep, the innermost holding one u8.
GgufBytes nestedArrays(uint32_t depth) {
    GgufBytes b = oneKey("deep", ValueType::Array);
    for (uint32_t d = 1; d < depth; ++d) b.u32(uint32_t(ValueType::Array)).u64(1);
    b.u32(uint32_t(ValueType::U8)).u64(1).u8(42);
    return b;
}

TEST(GgufHostile, ArrayNestingDepth) {
    Result<GgufFile> file = GgufFile::parse(nestedArrays(kMaxArrayDepth).bytes());
    EXPECT_TRUE(file) << file.error().message;
    EXPECT_THAT(errorOf(nestedArrays(kMaxArrayDepth + 1)), HasSubstr("array nesting depth 17 exceeds limit 16"));
    // Far deeper than the limit: must fail on the limit, not on the stack.
    GgufBytes b = oneKey("deep", ValueType::Array);
    for (int d = 0; d < 100000; ++d) b.u32(uint32_t(ValueType::Array)).u64(1);
    EXPECT_THAT(errorOf(b), HasSubstr("array nesting depth 17 exceeds limit 16"));
}

TEST(GgufHostile, DuplicateKey) {
    GgufBytes b;
    b.header(0, 3);
    b.key("a", ValueType::U8).u8(1).key("b", ValueType::U8).u8(2).key("a", ValueType::U32).u32(3);
    EXPECT_THAT(errorOf(b), HasSubstr("metadata key #2 'a': duplicate key (first at #0)"));
}

GgufBytes withAlignmentValue(ValueType type, uint64_t value) {
    GgufBytes b = oneKey("general.alignment", type);
    if (type == ValueType::U32) {
        b.u32(uint32_t(value));
    } else {
        b.u64(value);
    }
    return b;
}

TEST(GgufHostile, BadAlignment) {
    EXPECT_THAT(errorOf(withAlignmentValue(ValueType::U32, 0)),
                HasSubstr("metadata key 'general.alignment': alignment 0 is not a nonzero power of two"));
    EXPECT_THAT(errorOf(withAlignmentValue(ValueType::U32, 3)),
                HasSubstr("metadata key 'general.alignment': alignment 3 is not a nonzero power of two"));
    EXPECT_THAT(errorOf(withAlignmentValue(ValueType::U64, 64)),
                HasSubstr("metadata key 'general.alignment': expected u32, found u64"));
}

TEST(GgufHostile, HugeAlignmentPushesDataPastEnd) {
    GgufBytes b;
    b.header(1, 1).key("general.alignment", ValueType::U32).u32(uint32_t(1) << 31);
    b.tensorInfo("t", {8}, kF32, 0).pattern(32);
    EXPECT_THAT(errorOf(b), HasSubstr("data section starts at offset 2147483648, past end of file (size"));
}

TEST(GgufHostile, NonDefaultAlignmentIsUsed) {
    GgufBytes b;
    b.header(1, 1).key("general.alignment", ValueType::U32).u32(64);
    b.tensorInfo("t", {8}, kF32, 0).padTo(64).pattern(32);
    Result<GgufFile> file = GgufFile::parse(b.bytes());
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->alignment(), 64u);
    EXPECT_EQ(file->dataOffset() % 64, 0u);
    EXPECT_EQ(file->tensorData(file->tensors()[0])[5], 5);
}

TEST(GgufHostile, HugeTensorNameLength) {
    GgufBytes b;
    b.header(1, 0).u64(kU64Max).pattern(40);
    EXPECT_THAT(errorOf(b), HasSubstr("tensor info #0: name: string length 18446744073709551615 exceeds remaining"));
}

TEST(GgufHostile, EmptyTensorName) {
    GgufBytes b;
    b.header(1, 0).tensorInfo("", {8}, kF32, 0).padTo(32).pattern(32);
    EXPECT_THAT(errorOf(b), HasSubstr("tensor info #0: empty name"));
}

TEST(GgufHostile, DimensionCount) {
    EXPECT_THAT(errorOf(oneTensor({1, 1, 1, 1, 1}, kF32, 0, 4)), HasSubstr("tensor 'blk.0.w': n_dims 5 outside 1..4"));
    GgufBytes zeroDims;
    zeroDims.header(1, 0).str("blk.0.w").u32(0).u32(kF32).u64(0).pattern(40);
    EXPECT_THAT(errorOf(zeroDims), HasSubstr("tensor 'blk.0.w': n_dims 0 outside 1..4"));
    GgufBytes hugeDims;
    hugeDims.header(1, 0).str("blk.0.w").u32(0xffffffff).pattern(40);
    EXPECT_THAT(errorOf(hugeDims), HasSubstr("tensor 'blk.0.w': n_dims 4294967295 outside 1..4"));
}

TEST(GgufHostile, ZeroDimension) {
    EXPECT_THAT(errorOf(oneTensor({4, 0}, kF32, 0, 16)),
                HasSubstr("tensor 'blk.0.w': dimension 1 is 0 (must be at least 1)"));
}

TEST(GgufHostile, ElementCountOverflow) {
    EXPECT_THAT(errorOf(oneTensor({uint64_t(1) << 32, uint64_t(1) << 32}, kF32, 0, 16)),
                HasSubstr("tensor 'blk.0.w': element count of dims [4294967296, 4294967296] overflows u64"));
}

TEST(GgufHostile, ByteSizeOverflow) {
    EXPECT_THAT(errorOf(oneTensor({uint64_t(1) << 62}, kF32, 0, 16)),
                HasSubstr("tensor 'blk.0.w': byte size of f32 dims [4611686018427387904] overflows u64"));
}

TEST(GgufHostile, HugeButValidSizeIsPastEnd) {
    EXPECT_THAT(errorOf(oneTensor({uint64_t(1) << 20, uint64_t(1) << 20}, kF32, 0, 64)),
                HasSubstr("tensor 'blk.0.w': data [0, 4398046511104) past end of file data section (size 64)"));
}

TEST(GgufHostile, UnknownTypes) {
    EXPECT_THAT(errorOf(oneTensor({8}, 99, 0, 32)),
                HasSubstr("tensor 'blk.0.w': unsupported ggml type 99 (not in Pagoda's type table)"));
    // Q4_2/Q4_3 (removed from ggml) and IQ types that Pagoda does not know.
    for (uint32_t type : {4u, 5u, 16u, 17u, 18u, 19u, 20u, 21u, 22u, 23u, 29u}) {
        EXPECT_THAT(errorOf(oneTensor({256}, type, 0, 1024)),
                    HasSubstr(fmt::format("unsupported ggml type {} (not in Pagoda's type table)", type)));
    }
}

TEST(GgufHostile, RowNotMultipleOfBlock) {
    EXPECT_THAT(errorOf(oneTensor({33, 2}, kQ8_0, 0, 128)),
                HasSubstr("tensor 'blk.0.w': ne0 33 is not a multiple of the q8_0 block size 32"));
    EXPECT_THAT(errorOf(oneTensor({128}, uint32_t(DType::Q4_K), 0, 1024)),
                HasSubstr("ne0 128 is not a multiple of the q4_k block size 256"));
}

TEST(GgufHostile, MisalignedOffset) {
    EXPECT_THAT(errorOf(oneTensor({8}, kF32, 8, 64)),
                HasSubstr("tensor 'blk.0.w': offset 8 is not a multiple of the alignment 32"));
}

TEST(GgufHostile, OffsetPastEnd) {
    EXPECT_THAT(errorOf(oneTensor({8}, kF32, 4096, 64)),
                HasSubstr("tensor 'blk.0.w': offset 4096 past end of file data section (size 64)"));
    EXPECT_THAT(errorOf(oneTensor({8}, kF32, kU64Max - 31, 64)),
                HasSubstr("offset 18446744073709551584 past end of file data section (size 64)"));
}

TEST(GgufHostile, DataPastEnd) {
    EXPECT_THAT(errorOf(oneTensor({16}, kF32, 32, 64)),
                HasSubstr("tensor 'blk.0.w': data [32, 96) past end of file data section (size 64)"));
    EXPECT_THAT(errorOf(oneTensor({8}, kF32, 0, 31)),
                HasSubstr("tensor 'blk.0.w': data [0, 32) past end of file data section (size 31)"));
}

TEST(GgufHostile, DataSectionMissing) {
    GgufBytes b;
    b.header(1, 0).tensorInfo("t", {8}, kF32, 0);  // no padding, no data
    EXPECT_THAT(errorOf(b), HasSubstr("data section starts at offset 64, past end of file (size 57)"));
}

TEST(GgufHostile, OverlappingTensors) {
    GgufBytes b;
    b.header(3, 0);
    b.tensorInfo("first", {16}, kF32, 0).tensorInfo("second", {8}, kF32, 128).tensorInfo("third", {8}, kF32, 32);
    b.padTo(32).pattern(160);
    EXPECT_THAT(errorOf(b), HasSubstr("tensor 'third': data [32, 64) overlaps tensor 'first' data [0, 64)"));
}

TEST(GgufHostile, SameOffsetOverlaps) {
    GgufBytes b;
    b.header(2, 0).tensorInfo("x", {8}, kF32, 0).tensorInfo("y", {8}, kF32, 0).padTo(32).pattern(32);
    EXPECT_THAT(errorOf(b), HasSubstr("overlaps tensor"));
}

TEST(GgufHostile, AdjacentTensorsInAnyOrder) {
    GgufBytes b;
    b.header(2, 0).tensorInfo("late", {8}, kF32, 32).tensorInfo("early", {8}, kF32, 0).padTo(32).pattern(64);
    Result<GgufFile> file = GgufFile::parse(b.bytes());
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->tensorData(*file->findTensor("late"))[0], 32);
}

TEST(GgufHostile, DuplicateTensorName) {
    GgufBytes b;
    b.header(2, 0).tensorInfo("w", {8}, kF32, 0).tensorInfo("w", {8}, kF32, 32).padTo(32).pattern(64);
    EXPECT_THAT(errorOf(b), HasSubstr("tensor info #1 'w': duplicate tensor name (first at #0)"));
}

}  // namespace
}  // namespace pagoda::gguf

// Writer → reader round trips in memory and on disk, writer errors, and the
// reader on real GGUF files made with llama.cpp's tools.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"

namespace pagoda::gguf {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::vector<uint8_t> randomBytes(size_t count, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> bytes(count);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    return bytes;
}

// Values are equal in type and content; floats bit for bit (NaN included).
void expectSameValue(const Value& expected, const Value& actual, const std::string& where) {
    ASSERT_EQ(expected.type(), actual.type()) << where;
    if (const Array* array = expected.asArray()) {
        const Array* other = actual.asArray();
        ASSERT_EQ(array->elementType, other->elementType) << where;
        ASSERT_EQ(array->items.size(), other->items.size()) << where;
        for (size_t i = 0; i < array->items.size(); ++i) {
            expectSameValue(array->items[i], other->items[i], where + "[" + std::to_string(i) + "]");
        }
        return;
    }
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (!std::is_same_v<T, Array>) {
                const T& w = std::get<T>(actual.storage);
                if constexpr (std::is_same_v<T, float>) {
                    EXPECT_EQ(std::bit_cast<uint32_t>(v), std::bit_cast<uint32_t>(w)) << where;
                } else if constexpr (std::is_same_v<T, double>) {
                    EXPECT_EQ(std::bit_cast<uint64_t>(v), std::bit_cast<uint64_t>(w)) << where;
                } else {
                    EXPECT_EQ(v, w) << where;
                }
            }
        },
        expected.storage);
}

std::vector<KeyValue> allValueTypes() {
    Array nestedStrings{ValueType::Array,
                        {Value(makeArray(std::vector<std::string>{"x", "", "yz"})),
                         Value(makeArray(std::vector<std::string>{}))}};
    Array innermost{ValueType::U8, {Value(uint8_t(9))}};
    Array threeDeep{ValueType::Array, {Value(Array{ValueType::Array, {Value(std::move(innermost))}})}};
    return {
        {"general.architecture", Value("llama")},
        {"v.u8", Value(uint8_t(255))},
        {"v.i8", Value(int8_t(-128))},
        {"v.u16", Value(uint16_t(65535))},
        {"v.i16", Value(int16_t(-32768))},
        {"v.u32", Value(uint32_t(4294967295u))},
        {"v.i32", Value(int32_t(std::numeric_limits<int32_t>::min()))},
        {"v.f32", Value(-1.25f)},
        {"v.f32.nan", Value(std::numeric_limits<float>::quiet_NaN())},
        {"v.bool.true", Value(true)},
        {"v.bool.false", Value(false)},
        {"v.string", Value("h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c")},
        {"v.string.empty", Value("")},
        {"v.u64", Value(std::numeric_limits<uint64_t>::max())},
        {"v.i64", Value(std::numeric_limits<int64_t>::min())},
        {"v.f64", Value(-std::numeric_limits<double>::infinity())},
        {"a.strings", Value(makeArray(std::vector<std::string>{"<s>", "</s>", ""}))},
        {"a.f32", Value(makeArray(std::vector<float>{0.5f, -0.0f}))},
        {"a.i32.empty", Value(makeArray(std::vector<int32_t>{}))},
        {"a.bool", Value(Array{ValueType::Bool, {Value(true), Value(false)}})},
        {"a.u64", Value(Array{ValueType::U64, {Value(uint64_t(1) << 40)}})},
        {"a.nested.strings", Value(std::move(nestedStrings))},
        {"a.nested.empty", Value(Array{ValueType::Array, {}})},
        {"a.three.deep", Value(std::move(threeDeep))},
    };
}

struct TensorCase {
    std::string name;
    std::vector<uint64_t> dims;
    DType type;
    uint64_t byteSize;  // expected, from ggml's block geometry
};

std::vector<TensorCase> tensorCases() {
    return {
        {"f32.w", {3, 2}, DType::F32, 24},
        {"f16.w", {5}, DType::F16, 10},
        {"q8_0.w", {64, 2}, DType::Q8_0, 4 * 34},
        {"q4_0.w", {32, 3}, DType::Q4_0, 3 * 18},
        {"i8.w", {7}, DType::I8, 7},
        {"bf16.w", {2, 2, 2, 2}, DType::BF16, 32},
        {"q4_k.w", {256}, DType::Q4_K, 144},
        {"q6_k.w", {512, 1, 1}, DType::Q6_K, 2 * 210},
        {"q2_k.w", {256, 3}, DType::Q2_K, 3 * 84},
        {"q3_k.w", {768}, DType::Q3_K, 3 * 110},
    };
}

class GgufRoundTrip : public ::testing::TestWithParam<std::tuple<uint32_t, uint32_t>> {};

TEST_P(GgufRoundTrip, MetadataAndTensors) {
    auto [version, alignment] = GetParam();
    GgufWriter writer(version, alignment);
    std::vector<KeyValue> metadata = allValueTypes();
    for (const KeyValue& kv : metadata) writer.set(kv.key, kv.value);
    std::vector<TensorCase> cases = tensorCases();
    std::vector<std::vector<uint8_t>> data;
    for (size_t i = 0; i < cases.size(); ++i) {
        data.push_back(randomBytes(cases[i].byteSize, i));
        if (i % 2 == 0) {
            writer.addTensor(cases[i].name, cases[i].dims, cases[i].type, data.back());
        } else {
            writer.addTensor(cases[i].name, cases[i].dims, cases[i].type,
                             [bytes = data.back()](std::span<uint8_t> out) {
                                 ASSERT_EQ(out.size(), bytes.size());
                                 std::copy(bytes.begin(), bytes.end(), out.begin());
                             });
        }
    }
    auto bytes = writer.writeToMemory();
    ASSERT_TRUE(bytes) << bytes.error().message;
    auto file = GgufFile::parse(*bytes);
    ASSERT_TRUE(file) << file.error().message;

    EXPECT_EQ(file->version(), version);
    EXPECT_EQ(file->alignment(), alignment);
    EXPECT_EQ(file->dataOffset() % alignment, 0u);
    EXPECT_EQ(file->fileSize(), bytes->size());
    // The writer adds general.alignment last, and only when it is not the default.
    size_t extra = alignment == kDefaultAlignment ? 0 : 1;
    ASSERT_EQ(file->metadata().size(), metadata.size() + extra);
    for (size_t i = 0; i < metadata.size(); ++i) {
        EXPECT_EQ(file->metadata()[i].key, metadata[i].key);
        expectSameValue(metadata[i].value, file->metadata()[i].value, metadata[i].key);
    }
    if (extra == 1) {
        EXPECT_EQ(file->metadata().back().key, "general.alignment");
        EXPECT_EQ(file->metadata().back().value.type(), ValueType::U32);
        EXPECT_EQ(file->getInt("general.alignment"), alignment);
    } else {
        EXPECT_EQ(file->find("general.alignment"), nullptr);
    }

    ASSERT_EQ(file->tensors().size(), cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
        const TensorInfo& t = file->tensors()[i];
        EXPECT_EQ(t.name, cases[i].name);
        EXPECT_EQ(t.dims, cases[i].dims);
        EXPECT_EQ(t.type, cases[i].type);
        EXPECT_EQ(t.byteSize, cases[i].byteSize) << t.name;
        EXPECT_EQ(t.offset % alignment, 0u) << t.name;
        if (i > 0) {
            EXPECT_GT(t.offset, file->tensors()[i - 1].offset) << "tensors keep the order they were added";
        }
        std::span<const uint8_t> stored = file->tensorData(t);
        EXPECT_TRUE(std::equal(stored.begin(), stored.end(), data[i].begin(), data[i].end())) << t.name;
        EXPECT_EQ(file->findTensor(t.name), &t);
    }
    // Every tensor, the last included, is padded to the alignment.
    EXPECT_EQ(bytes->size() % alignment, 0u);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, GgufRoundTrip,
                         ::testing::Combine(::testing::Values(2u, 3u), ::testing::Values(1u, 32u, 64u, 8192u)));

TEST(GgufWriter, VersionsDifferOnlyInTheHeader) {
    auto make = [](uint32_t version) {
        GgufWriter writer(version);
        writer.set("k", uint32_t(1));
        writer.addTensor("t", {8}, DType::F32, std::vector<uint8_t>(32, 3));
        return *writer.writeToMemory();
    };
    std::vector<uint8_t> v2 = make(2);
    std::vector<uint8_t> v3 = make(3);
    ASSERT_EQ(v2.size(), v3.size());
    EXPECT_EQ(v2[4], 2);
    EXPECT_EQ(v3[4], 3);
    v2[4] = 3;
    EXPECT_EQ(v2, v3);
}

TEST(GgufWriter, SetReplacesInPlace) {
    GgufWriter writer;
    writer.set("a", uint8_t(1));
    writer.set("b", uint8_t(2));
    writer.set("a", "replaced");
    auto file = GgufFile::parse(*writer.writeToMemory());
    ASSERT_TRUE(file);
    ASSERT_EQ(file->metadata().size(), 2u);
    EXPECT_EQ(file->metadata()[0].key, "a");
    EXPECT_EQ(file->getString("a"), "replaced");
}

TEST(GgufWriter, ExplicitMatchingAlignmentKeyIsKept) {
    GgufWriter writer(3, 64);
    writer.set("general.alignment", uint32_t(64));
    writer.set("z", uint8_t(0));
    auto file = GgufFile::parse(*writer.writeToMemory());
    ASSERT_TRUE(file);
    ASSERT_EQ(file->metadata().size(), 2u);
    EXPECT_EQ(file->metadata()[0].key, "general.alignment");
    EXPECT_EQ(file->alignment(), 64u);
}

TEST(GgufWriter, EmptyFileHasHeaderOnly) {
    auto bytes = GgufWriter(3, 1u << 31).writeToMemory();
    ASSERT_TRUE(bytes);
    // Header and general.alignment; without tensors there is no data section to pad to.
    EXPECT_EQ(bytes->size(), 24u + 8 + 17 + 4 + 4);
    auto file = GgufFile::parse(*bytes);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->alignment(), 1u << 31);
    EXPECT_EQ(file->metadata().size(), 1u);
    EXPECT_TRUE(file->tensors().empty());
}

std::string writeError(const GgufWriter& writer) {
    auto bytes = writer.writeToMemory();
    return bytes ? std::string("<written>") : bytes.error().message;
}

TEST(GgufWriter, RejectsWhatTheReaderWouldReject) {
    EXPECT_THAT(writeError(GgufWriter(4)), HasSubstr("GGUF version 4 cannot be written (supported: 2, 3)"));
    EXPECT_THAT(writeError(GgufWriter(1)), HasSubstr("GGUF version 1 cannot be written"));
    EXPECT_THAT(writeError(GgufWriter(3, 3)), HasSubstr("writer alignment 3 is not a nonzero power of two"));
    EXPECT_THAT(writeError(GgufWriter(3, 0)), HasSubstr("writer alignment 0 is not a nonzero power of two"));

    auto withTensor = [](std::vector<uint64_t> dims, DType type, size_t bytes) {
        GgufWriter writer;
        writer.addTensor("w", std::move(dims), type, std::vector<uint8_t>(bytes));
        return writeError(writer);
    };
    EXPECT_THAT(withTensor({8}, DType::F32, 31), HasSubstr("tensor 'w': data has 31 bytes, f32 dims [8] take 32"));
    EXPECT_THAT(withTensor({33}, DType::Q8_0, 34), HasSubstr("tensor 'w': ne0 33 is not a multiple of the q8_0"));
    EXPECT_THAT(withTensor({}, DType::F32, 0), HasSubstr("tensor 'w': 0 dims outside 1..4"));
    EXPECT_THAT(withTensor({1, 1, 1, 1, 1}, DType::F32, 4), HasSubstr("tensor 'w': 5 dims outside 1..4"));
    EXPECT_THAT(withTensor({4, 0}, DType::F32, 0), HasSubstr("tensor 'w': dims [4, 0] contain 0"));
    EXPECT_THAT(withTensor({8}, DType(99), 32), HasSubstr("tensor 'w': unknown ggml type 99"));

    GgufWriter duplicate;
    duplicate.addTensor("w", {8}, DType::F32, std::vector<uint8_t>(32));
    duplicate.addTensor("w", {8}, DType::F32, std::vector<uint8_t>(32));
    EXPECT_THAT(writeError(duplicate), HasSubstr("tensor 'w': duplicate tensor name"));

    GgufWriter noFill;
    noFill.addTensor("w", {8}, DType::F32, TensorFill());
    EXPECT_THAT(writeError(noFill), HasSubstr("tensor 'w': no fill callback"));

    GgufWriter conflicting(3, 64);
    conflicting.set("general.alignment", uint32_t(32));
    EXPECT_THAT(writeError(conflicting), HasSubstr("metadata key 'general.alignment' must be the u32 64"));

    GgufWriter mixed;
    mixed.set("mixed", Array{ValueType::U32, {Value(uint32_t(1)), Value("two")}});
    EXPECT_THAT(writeError(mixed), HasSubstr("metadata key 'mixed': array of u32 holds a string at item 1"));

    GgufWriter emptyKey;
    emptyKey.set("", uint8_t(1));
    EXPECT_THAT(writeError(emptyKey), HasSubstr("metadata key #0: empty key"));
}

Value nested(uint32_t depth) {
    Value value = Array{ValueType::U8, {Value(uint8_t(1))}};
    for (uint32_t d = 1; d < depth; ++d) value = Array{ValueType::Array, {std::move(value)}};
    return value;
}

TEST(GgufWriter, ArrayDepthLimitMatchesTheReader) {
    GgufWriter deepest;
    deepest.set("deep", nested(kMaxArrayDepth));
    auto bytes = deepest.writeToMemory();
    ASSERT_TRUE(bytes) << bytes.error().message;
    EXPECT_TRUE(GgufFile::parse(*bytes));

    GgufWriter tooDeep;
    tooDeep.set("deep", nested(kMaxArrayDepth + 1));
    EXPECT_THAT(writeError(tooDeep), HasSubstr("array nesting depth 17 exceeds limit 16"));
}

class GgufFiles : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = fs::path(::testing::TempDir()) /
                ("pagoda_gguf_" + std::to_string(::getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(m_dir);
        fs::create_directories(m_dir);
    }
    void TearDown() override { fs::remove_all(m_dir); }

    // A writer of one key, n = value.
    static GgufWriter writerOf(uint32_t value) {
        GgufWriter writer;
        writer.set("n", value);
        return writer;
    }

    fs::path m_dir;
};

TEST_F(GgufFiles, WriteFileThenOpen) {
    GgufWriter writer(3, 64);
    writer.set("general.name", "on disk");
    std::vector<uint8_t> q8 = randomBytes(2 * 34, 7);
    writer.addTensor("q", {32, 2}, DType::Q8_0, q8);
    writer.addTensor("f", {3}, DType::F32, [](std::span<uint8_t> out) {
        for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(100 + i);
    });
    fs::path path = m_dir / "created" / "on" / "demand" / "model.gguf";
    auto written = writer.writeFile(path);
    ASSERT_TRUE(written) << written.error().message;
    EXPECT_FALSE(fs::exists(fs::path(path.string() + ".tmp")));

    auto file = GgufFile::open(path);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->getString("general.name"), "on disk");
    EXPECT_EQ(file->alignment(), 64u);
    std::span<const uint8_t> q = file->tensorData(*file->findTensor("q"));
    EXPECT_TRUE(std::equal(q.begin(), q.end(), q8.begin(), q8.end()));
    std::span<const uint8_t> f = file->tensorData(*file->findTensor("f"));
    ASSERT_EQ(f.size(), 12u);
    EXPECT_EQ(f[11], 111);
    EXPECT_EQ(file->fileSize(), fs::file_size(path));

    // The file on disk is byte for byte what writeToMemory makes.
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> onDisk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(onDisk, *writer.writeToMemory());

    // A moved GgufFile keeps its mapping.
    GgufFile moved = std::move(*file);
    EXPECT_EQ(moved.tensorData(*moved.findTensor("f"))[0], 100);
}

// copyToMemory: the same bytes at the same addresses, no longer the file's
// (the file changing on disk afterwards changes nothing), once; a file
// parsed from a caller's buffer is in memory already. The mapping starts on
// a 2 MiB boundary, where huge pages can back the copy.
TEST_F(GgufFiles, CopyToMemoryKeepsEveryAddressAndByte) {
    GgufWriter writer;
    writer.set("general.name", "copied");
    // Over 2 MiB of tensor data, so the copy spans a huge page and a tail.
    const std::vector<uint8_t> data = randomBytes(34 * 70000, 11);
    writer.addTensor("q", {32, 70000}, DType::Q8_0, data);
    const fs::path path = m_dir / "model.gguf";
    ASSERT_TRUE(writer.writeFile(path));

    auto file = GgufFile::open(path);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_FALSE(file->inMemory());
    const std::span<const uint8_t> before = file->tensorData(*file->findTensor("q"));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(before.data() - file->dataOffset() - file->findTensor("q")->offset) %
                  (uintptr_t(2) << 20),
              0u);
    ASSERT_TRUE(file->copyToMemory());
    EXPECT_TRUE(file->inMemory());
    const std::span<const uint8_t> after = file->tensorData(*file->findTensor("q"));
    EXPECT_EQ(after.data(), before.data());
    EXPECT_TRUE(std::equal(after.begin(), after.end(), data.begin(), data.end()));
    EXPECT_EQ(file->getString("general.name"), "copied");

    // Rewritten in place on disk: a mapping would show the new bytes, the copy does not.
    {
        std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
        out.seekp(std::streamoff(file->dataOffset()));
        const std::vector<char> zeros(4096, 0);
        out.write(zeros.data(), std::streamsize(zeros.size()));
    }
    EXPECT_TRUE(std::equal(after.begin(), after.end(), data.begin(), data.end()));
    ASSERT_TRUE(file->copyToMemory());  // once only
    EXPECT_EQ(file->tensorData(*file->findTensor("q")).data(), before.data());

    const std::vector<uint8_t> bytes = *writer.writeToMemory();
    auto parsed = GgufFile::parse(bytes);
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(parsed->inMemory());
    EXPECT_TRUE(parsed->copyToMemory());
}

// A range is copied widened to 2 MiB boundaries; the rest stays mapped
// (a rewrite on disk shows there, not in the copy).
TEST_F(GgufFiles, CopyToMemoryOfARangeLeavesTheRestMapped) {
    constexpr uint64_t kMiB = uint64_t(1) << 20;
    GgufWriter writer;
    const std::vector<uint8_t> data = randomBytes(34 * 200000, 12);  // 6.5 MiB of Q8_0 blocks
    writer.addTensor("q", {32, 200000}, DType::Q8_0, data);
    const fs::path path = m_dir / "model.gguf";
    ASSERT_TRUE(writer.writeFile(path));
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file) << file.error().message;
    ASSERT_TRUE(file->copyToMemory(3 * kMiB, 3 * kMiB + 1));
    EXPECT_EQ(file->bytesInMemory(), 2 * kMiB);  // [2, 4) MiB
    EXPECT_FALSE(file->inMemory());
    {
        std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
        const std::vector<char> ones(6 * kMiB, 1);
        out.write(ones.data(), std::streamsize(ones.size()));
    }
    const uint8_t* bytes = file->tensorData(*file->findTensor("q")).data() - file->dataOffset();
    EXPECT_EQ(bytes[2 * kMiB - 1], 1);  // mapped: the new byte
    EXPECT_EQ(bytes[5 * kMiB], 1);
    const size_t in = 3 * kMiB - file->dataOffset();  // copied: the old bytes
    const auto old = data.begin() + ptrdiff_t(2 * kMiB - file->dataOffset());
    EXPECT_TRUE(std::equal(bytes + 2 * kMiB, bytes + 4 * kMiB, old));
    EXPECT_EQ(bytes[3 * kMiB], data[in]);
}

TEST_F(GgufFiles, WriteFileReplacesAnExistingFile) {
    fs::path path = m_dir / "model.gguf";
    ASSERT_TRUE(writerOf(1).writeFile(path));
    ASSERT_TRUE(writerOf(2).writeFile(path));
    EXPECT_EQ(GgufFile::open(path)->getInt("n"), 2);
}

TEST_F(GgufFiles, CancelledWriteLeavesTheOldFileAndNoTemporary) {
    fs::path path = m_dir / "model.gguf";
    ASSERT_TRUE(writerOf(1).writeFile(path));
    GgufWriter second = writerOf(2);
    int tensorsFilled = 0;
    for (const char* name : {"t0", "t1", "t2", "t3"}) {
        second.addTensor(name, {8}, DType::F32, [&](std::span<uint8_t> out) {
            ++tensorsFilled;
            std::fill(out.begin(), out.end(), uint8_t(0));
        });
    }
    int asked = 0;
    auto written = second.writeFile(path, [&] { return ++asked > 2; });
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error().message, "cancelled");
    EXPECT_LT(tensorsFilled, 4);  // it stopped early rather than at the end
    EXPECT_FALSE(fs::exists(fs::path(path.string() + ".tmp")));
    EXPECT_EQ(GgufFile::open(path)->getInt("n"), 1);
}

TEST_F(GgufFiles, WriteFileErrorsNameThePath) {
    fs::path blocker = m_dir / "blocker";
    std::ofstream(blocker) << "a file, not a directory";
    fs::path path = blocker / "model.gguf";
    auto written = GgufWriter().writeFile(path);
    ASSERT_FALSE(written);
    EXPECT_THAT(written.error().message, HasSubstr(path.string()));
    EXPECT_THAT(written.error().message, HasSubstr("cannot create directory"));

    GgufWriter invalid(3, 3);
    fs::path target = m_dir / "invalid.gguf";
    EXPECT_FALSE(invalid.writeFile(target));
    EXPECT_FALSE(fs::exists(target));
    EXPECT_FALSE(fs::exists(fs::path(target.string() + ".tmp")));
}

TEST_F(GgufFiles, OpenErrorsNameThePath) {
    fs::path missing = m_dir / "missing.gguf";
    auto file = GgufFile::open(missing);
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().message, missing.string() + ": cannot open: No such file or directory");

    file = GgufFile::open(m_dir);
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().message, m_dir.string() + ": is a directory, not a GGUF file");

    fs::path empty = m_dir / "empty.gguf";
    std::ofstream{empty};
    file = GgufFile::open(empty);
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().message, empty.string() + ": file is empty (0 bytes), not a GGUF file");

    fs::path text = m_dir / "notes.txt";
    std::ofstream(text) << "hello, world";
    file = GgufFile::open(text);
    ASSERT_FALSE(file);
    EXPECT_THAT(file.error().message, HasSubstr(text.string() + ": bad magic 0x6c6c6568"));
}

TEST_F(GgufFiles, OpenRejectsAFifoWithoutBlocking) {
    fs::path fifo = m_dir / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    auto file = GgufFile::open(fifo);
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().message, fifo.string() + ": not a regular file");
}

// Real GGUF files made with llama.cpp's tools, shipped in the shared folder.
class GgufSharedFiles : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufSharedFiles, OpenAndRewriteIdentically) {
    fs::path path = fs::path(PAGODA_SHARED_DIR) / GetParam();
    if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_TRUE(file->getString("general.architecture")) << "every llama.cpp file names its architecture";
    auto tokens = file->getArray("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens) << tokens.error().message;
    EXPECT_GT((*tokens)->items.size(), 100u);

    // Our writer reproduces the same content, which our reader reads back unchanged.
    GgufWriter writer(file->version(), uint32_t(file->alignment()));
    for (const KeyValue& kv : file->metadata()) writer.set(kv.key, kv.value);
    for (const TensorInfo& t : file->tensors()) {
        std::span<const uint8_t> data = file->tensorData(t);
        writer.addTensor(t.name, t.dims, t.type, std::vector<uint8_t>(data.begin(), data.end()));
    }
    auto bytes = writer.writeToMemory();
    ASSERT_TRUE(bytes) << bytes.error().message;
    auto copy = GgufFile::parse(*bytes);
    ASSERT_TRUE(copy) << copy.error().message;
    ASSERT_EQ(copy->metadata().size(), file->metadata().size());
    for (size_t i = 0; i < file->metadata().size(); ++i) {
        EXPECT_EQ(copy->metadata()[i].key, file->metadata()[i].key);
        expectSameValue(file->metadata()[i].value, copy->metadata()[i].value, file->metadata()[i].key);
    }
    ASSERT_EQ(copy->tensors().size(), file->tensors().size());
    for (size_t i = 0; i < file->tensors().size(); ++i) {
        const TensorInfo& a = file->tensors()[i];
        const TensorInfo& b = copy->tensors()[i];
        EXPECT_EQ(a.name, b.name);
        EXPECT_EQ(a.dims, b.dims);
        EXPECT_EQ(a.type, b.type);
        EXPECT_EQ(a.offset, b.offset) << "gguf-py and our writer lay tensors out alike";
        std::span<const uint8_t> x = file->tensorData(a);
        std::span<const uint8_t> y = copy->tensorData(b);
        EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << a.name;
    }
}

INSTANTIATE_TEST_SUITE_P(Shared, GgufSharedFiles,
                         ::testing::Values("models/stories260K.gguf", "tokenizers/ggml-vocab-llama-spm.gguf",
                                           "tokenizers/ggml-vocab-gpt-2.gguf", "tokenizers/ggml-vocab-phi-3.gguf",
                                           "tokenizers/ggml-vocab-starcoder.gguf"));

TEST(GgufSharedFile, StoriesTensors) {
    fs::path path = fs::path(PAGODA_SHARED_DIR) / "models/stories260K.gguf";
    if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_FALSE(file->tensors().empty());
    const TensorInfo* embedding = file->findTensor("token_embd.weight");
    ASSERT_NE(embedding, nullptr);
    EXPECT_EQ(embedding->dims.size(), 2u);
    EXPECT_EQ(file->tensorData(*embedding).size(), embedding->byteSize);
    EXPECT_LE(file->dataOffset() + embedding->offset + embedding->byteSize, file->fileSize());
}

}  // namespace
}  // namespace pagoda::gguf

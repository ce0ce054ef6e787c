// Value conversions and GgufFile's typed getters.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_value.h"
#include "engine/gguf/gguf_writer.h"

namespace pagoda::gguf {
namespace {

using ::testing::HasSubstr;

TEST(GgufValue, TypeFollowsTheFormatNumbering) {
    EXPECT_EQ(Value(uint8_t(1)).type(), ValueType::U8);
    EXPECT_EQ(Value(int16_t(1)).type(), ValueType::I16);
    EXPECT_EQ(Value(1.0f).type(), ValueType::F32);
    EXPECT_EQ(Value(true).type(), ValueType::Bool);
    EXPECT_EQ(Value("text").type(), ValueType::String);
    EXPECT_EQ(Value(makeArray(std::vector<int32_t>{1})).type(), ValueType::Array);
    EXPECT_EQ(Value(uint64_t(1)).type(), ValueType::U64);
    EXPECT_EQ(Value(1.0).type(), ValueType::F64);
    EXPECT_EQ(valueTypeName(ValueType::U8), "u8");
    EXPECT_EQ(valueTypeName(ValueType::Array), "array");
    EXPECT_EQ(valueTypeName(ValueType::F64), "f64");
    EXPECT_EQ(valueTypeName(ValueType(99)), "unknown");
}

TEST(GgufValue, AsIntWidensIntegersAndBool) {
    EXPECT_EQ(Value(uint8_t(255)).asInt(), 255);
    EXPECT_EQ(Value(int8_t(-128)).asInt(), -128);
    EXPECT_EQ(Value(uint32_t(4000000000u)).asInt(), 4000000000);
    EXPECT_EQ(Value(int64_t(std::numeric_limits<int64_t>::min())).asInt(), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(Value(uint64_t(std::numeric_limits<int64_t>::max())).asInt(), std::numeric_limits<int64_t>::max());
    EXPECT_EQ(Value(uint64_t(std::numeric_limits<int64_t>::max()) + 1).asInt(), std::nullopt);
    EXPECT_EQ(Value(true).asInt(), 1);
    EXPECT_EQ(Value(1.0f).asInt(), std::nullopt);
    EXPECT_EQ(Value("7").asInt(), std::nullopt);
}

TEST(GgufValue, AsFloatAsBoolAsString) {
    EXPECT_EQ(Value(1.5f).asFloat(), 1.5);
    EXPECT_EQ(Value(-2.25).asFloat(), -2.25);
    EXPECT_EQ(Value(int32_t(-3)).asFloat(), -3.0);
    EXPECT_EQ(Value(true).asFloat(), std::nullopt);
    EXPECT_EQ(Value("x").asFloat(), std::nullopt);
    EXPECT_EQ(Value(false).asBool(), false);
    EXPECT_EQ(Value(uint8_t(1)).asBool(), std::nullopt);
    ASSERT_NE(Value("abc").asString(), nullptr);
    EXPECT_EQ(*Value("abc").asString(), "abc");
    EXPECT_EQ(Value(1).asString(), nullptr);
    EXPECT_EQ(Value(1).asArray(), nullptr);
}

TEST(GgufValue, MakeArray) {
    Array strings = makeArray(std::vector<std::string>{"a", "b"});
    EXPECT_EQ(strings.elementType, ValueType::String);
    ASSERT_EQ(strings.items.size(), 2u);
    EXPECT_EQ(*strings.items[1].asString(), "b");
    Array floats = makeArray(std::vector<float>{0.5f});
    EXPECT_EQ(floats.elementType, ValueType::F32);
    EXPECT_EQ(floats.items[0].type(), ValueType::F32);
    Array ints = makeArray(std::vector<int32_t>{});
    EXPECT_EQ(ints.elementType, ValueType::I32);
    EXPECT_TRUE(ints.items.empty());
}

class GgufGetters : public ::testing::Test {
protected:
    void SetUp() override {
        GgufWriter writer;
        writer.set("llama.block_count", "twelve");
        writer.set("u8", uint8_t(7));
        writer.set("i16", int16_t(-9));
        writer.set("u64.max", std::numeric_limits<uint64_t>::max());
        writer.set("i64.min", std::numeric_limits<int64_t>::min());
        writer.set("f32", 0.5f);
        writer.set("f64", 1e300);
        writer.set("flag", true);
        writer.set("tokens", makeArray(std::vector<std::string>{"<s>", "</s>"}));
        auto bytes = writer.writeToMemory();
        ASSERT_TRUE(bytes) << bytes.error().message;
        m_bytes = std::move(*bytes);
        auto file = GgufFile::parse(m_bytes);
        ASSERT_TRUE(file) << file.error().message;
        m_file.emplace(std::move(*file));
    }

    const GgufFile& file() const { return *m_file; }

private:
    std::vector<uint8_t> m_bytes;
    std::optional<GgufFile> m_file;
};

TEST_F(GgufGetters, GetInt) {
    EXPECT_EQ(file().getInt("u8"), 7);
    EXPECT_EQ(file().getInt("i16"), -9);
    EXPECT_EQ(file().getInt("i64.min"), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(file().getInt("llama.block_count").error().message,
              "key 'llama.block_count': expected an integer, found string");
    EXPECT_EQ(file().getInt("flag").error().message, "key 'flag': expected an integer, found bool");
    EXPECT_EQ(file().getInt("f32").error().message, "key 'f32': expected an integer, found f32");
    EXPECT_EQ(file().getInt("u64.max").error().message,
              "key 'u64.max': value 18446744073709551615 exceeds the int64 maximum 9223372036854775807");
    EXPECT_EQ(file().getInt("absent").error().message, "missing metadata key 'absent'");
}

TEST_F(GgufGetters, GetFloat) {
    EXPECT_EQ(file().getFloat("f32"), 0.5);
    EXPECT_EQ(file().getFloat("f64"), 1e300);
    EXPECT_EQ(file().getFloat("u8"), 7.0);
    EXPECT_EQ(file().getFloat("u64.max"), 18446744073709551615.0);
    EXPECT_EQ(file().getFloat("flag").error().message, "key 'flag': expected a number, found bool");
    EXPECT_EQ(file().getFloat("tokens").error().message, "key 'tokens': expected a number, found array of string");
}

TEST_F(GgufGetters, GetStringArrayBool) {
    EXPECT_EQ(file().getString("llama.block_count"), "twelve");
    EXPECT_EQ(file().getString("u8").error().message, "key 'u8': expected a string, found u8");
    auto tokens = file().getArray("tokens");
    ASSERT_TRUE(tokens) << tokens.error().message;
    ASSERT_EQ((*tokens)->items.size(), 2u);
    EXPECT_EQ(*(*tokens)->items[1].asString(), "</s>");
    EXPECT_EQ(file().getArray("f64").error().message, "key 'f64': expected an array, found f64");
    EXPECT_EQ(file().getBool("flag"), true);
    EXPECT_EQ(file().getBool("u8").error().message, "key 'u8': expected a bool, found u8");
    EXPECT_THAT(file().getBool("nope").error().message, HasSubstr("'nope'"));
}

TEST_F(GgufGetters, FindKeepsFileOrder) {
    ASSERT_EQ(file().metadata().size(), 9u);
    EXPECT_EQ(file().metadata()[0].key, "llama.block_count");
    EXPECT_EQ(file().metadata()[8].key, "tokens");
    EXPECT_NE(file().find("flag"), nullptr);
    EXPECT_EQ(file().find("fla"), nullptr);
    EXPECT_EQ(file().findTensor("anything"), nullptr);
}

}  // namespace
}  // namespace pagoda::gguf

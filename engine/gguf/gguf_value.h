#pragma once
// GGUF metadata values: the 13 value types of the format, arrays nested to
// any depth.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace pagoda::gguf {

enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};
constexpr uint32_t kValueTypeCount = 13;

std::string_view valueTypeName(ValueType type);

struct Value;

struct Array {
    ValueType elementType = ValueType::U8;
    std::vector<Value> items;  // every item has elementType
};

struct Value {
    using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                                 std::string, Array, uint64_t, int64_t, double>;
    Storage storage;

    Value() = default;
    template <class T>
        requires std::is_constructible_v<Storage, T>
    Value(T v) : storage(std::move(v)) {}  // NOLINT: implicit by design
    Value(const char* s) : storage(std::string(s)) {}

    ValueType type() const { return ValueType(storage.index()); }

    // Any integer type (and bool) widened; nullopt for other types or when the
    // value does not fit in int64.
    std::optional<int64_t> asInt() const;
    // F32/F64 (and integers) as double.
    std::optional<double> asFloat() const;
    const std::string* asString() const { return std::get_if<std::string>(&storage); }
    const Array* asArray() const { return std::get_if<Array>(&storage); }
    std::optional<bool> asBool() const;
};

// Helpers for writers: arrays of plain values.
Array makeArray(const std::vector<std::string>& items);
Array makeArray(const std::vector<float>& items);
Array makeArray(const std::vector<int32_t>& items);

struct KeyValue {
    std::string key;
    Value value;
};

}  // namespace pagoda::gguf

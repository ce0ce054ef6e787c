#include "engine/gguf/gguf_value.h"

#include <array>
#include <limits>
#include <type_traits>

namespace pagoda::gguf {

std::string_view valueTypeName(ValueType type) {
    // Indexed by the raw type number; the order is the format's.
    constexpr std::array<std::string_view, kValueTypeCount> kNames = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
    };
    uint32_t raw = uint32_t(type);
    return raw < kValueTypeCount ? kNames[raw] : "unknown";
}

std::optional<int64_t> Value::asInt() const {
    return std::visit(
        [](const auto& v) -> std::optional<int64_t> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>) {
                return v ? 1 : 0;
            } else if constexpr (std::is_same_v<T, uint64_t>) {
                if (v > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
                return int64_t(v);
            } else if constexpr (std::is_integral_v<T>) {
                return int64_t(v);
            } else {
                return std::nullopt;
            }
        },
        storage);
}

std::optional<double> Value::asFloat() const {
    return std::visit(
        [](const auto& v) -> std::optional<double> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>) {
                return std::nullopt;
            } else if constexpr (std::is_arithmetic_v<T>) {
                return double(v);
            } else {
                return std::nullopt;
            }
        },
        storage);
}

std::optional<bool> Value::asBool() const {
    if (const bool* b = std::get_if<bool>(&storage)) return *b;
    return std::nullopt;
}

namespace {

template <class T>
Array makeArrayOf(ValueType elementType, const std::vector<T>& items) {
    Array array{elementType, {}};
    array.items.reserve(items.size());
    for (const T& item : items) array.items.emplace_back(item);
    return array;
}

}  // namespace

Array makeArray(const std::vector<std::string>& items) { return makeArrayOf(ValueType::String, items); }
Array makeArray(const std::vector<float>& items) { return makeArrayOf(ValueType::F32, items); }
Array makeArray(const std::vector<int32_t>& items) { return makeArrayOf(ValueType::I32, items); }

}  // namespace pagoda::gguf

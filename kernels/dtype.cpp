#include "kernels/dtype.h"

#include <array>

namespace pagoda {
namespace {

struct Entry {
    DType type;
    DTypeInfo info;
};

// Block geometry of ggml's types (ggml.c type_traits).
constexpr std::array kTable = {
    Entry{DType::F32, {"f32", 1, 4}},      Entry{DType::F16, {"f16", 1, 2}},
    Entry{DType::Q4_0, {"q4_0", 32, 18}},  Entry{DType::Q4_1, {"q4_1", 32, 20}},
    Entry{DType::Q5_0, {"q5_0", 32, 22}},  Entry{DType::Q5_1, {"q5_1", 32, 24}},
    Entry{DType::Q8_0, {"q8_0", 32, 34}},  Entry{DType::Q8_1, {"q8_1", 32, 36}},
    Entry{DType::Q2_K, {"q2_k", 256, 84}}, Entry{DType::Q3_K, {"q3_k", 256, 110}},
    Entry{DType::Q4_K, {"q4_k", 256, 144}}, Entry{DType::Q5_K, {"q5_k", 256, 176}},
    Entry{DType::Q6_K, {"q6_k", 256, 210}}, Entry{DType::Q8_K, {"q8_k", 256, 292}},
    Entry{DType::I8, {"i8", 1, 1}},        Entry{DType::I16, {"i16", 1, 2}},
    Entry{DType::I32, {"i32", 1, 4}},      Entry{DType::I64, {"i64", 1, 8}},
    Entry{DType::F64, {"f64", 1, 8}},      Entry{DType::BF16, {"bf16", 1, 2}},
};

}  // namespace

std::optional<DTypeInfo> dtypeInfo(uint32_t rawType) {
    for (const Entry& e : kTable) {
        if (uint32_t(e.type) == rawType) return e.info;
    }
    return std::nullopt;
}

DTypeInfo dtypeInfo(DType type) { return *dtypeInfo(uint32_t(type)); }

std::string_view dtypeName(DType type) { return dtypeInfo(type).name; }

std::optional<DType> dtypeFromName(std::string_view name) {
    for (const Entry& e : kTable) {
        if (e.info.name == name) return e.type;
    }
    return std::nullopt;
}

bool isComputeSupported(DType type) {
    switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
        return true;
    default:
        return false;
    }
}

std::string computeSupportedNames() {
    std::string names;
    for (const Entry& e : kTable) {
        if (!isComputeSupported(e.type)) continue;
        if (!names.empty()) names += ", ";
        names += e.info.name;
    }
    return names;
}

}  // namespace pagoda

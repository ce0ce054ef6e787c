#pragma once
// Tensor element types, numbered as GGUF/ggml numbers them, with the block
// geometry of each: a row of n elements of type t takes
// (n / blockElements(t)) * blockBytes(t) bytes.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pagoda {

enum class DType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
};

struct DTypeInfo {
    std::string_view name;   // "q4_0"
    uint32_t blockElements;  // elements per block (1 for plain types)
    uint32_t blockBytes;     // bytes per block
};

// nullopt for a value GGUF does not define (or that Pagoda does not know).
std::optional<DTypeInfo> dtypeInfo(uint32_t rawType);
DTypeInfo dtypeInfo(DType type);
std::string_view dtypeName(DType type);
std::optional<DType> dtypeFromName(std::string_view name);

// Types the CPU matmul/embedding kernels compute with.
bool isComputeSupported(DType type);

// Bytes of one row of n elements; n must be a multiple of blockElements.
inline size_t rowBytes(DType type, size_t n) {
    DTypeInfo info = dtypeInfo(type);
    return n / info.blockElements * info.blockBytes;
}

// GGUF block layouts (ggml's block_q8_0 / block_q4_0).
constexpr int kQK8_0 = 32;
struct BlockQ8_0 {
    uint16_t d;        // fp16 scale
    int8_t qs[kQK8_0]; // value = d * qs[i]
};
static_assert(sizeof(BlockQ8_0) == 34);

constexpr int kQK4_0 = 32;
struct BlockQ4_0 {
    uint16_t d;               // fp16 scale
    uint8_t qs[kQK4_0 / 2];   // element i (< 16) in the low nibble of qs[i],
                              // element i + 16 in the high nibble; value = d * (q - 8)
};
static_assert(sizeof(BlockQ4_0) == 18);

}  // namespace pagoda

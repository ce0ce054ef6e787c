#pragma once
// Tensor element types, numbered as GGUF/ggml numbers them, with the block
// geometry of each: a row of n elements of type t takes
// (n / blockElements(t)) * blockBytes(t) bytes.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
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

// The names of the types isComputeSupported accepts, in table order:
// "f32, f16, q4_0, ...".
std::string computeSupportedNames();

// Bytes of one row of n elements; n must be a multiple of blockElements.
inline size_t rowBytes(DType type, size_t n) {
    DTypeInfo info = dtypeInfo(type);
    return n / info.blockElements * info.blockBytes;
}

// GGUF block layouts (ggml's block_* structs in ggml-common.h). All scales
// are fp16 bit patterns; "q" is the unsigned integer stored for an element.
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

constexpr int kQK4_1 = 32;
struct BlockQ4_1 {
    uint16_t d;              // fp16 scale
    uint16_t m;              // fp16 offset
    uint8_t qs[kQK4_1 / 2];  // nibbles as in Q4_0; value = d * q + m
};
static_assert(sizeof(BlockQ4_1) == 20);

constexpr int kQK5_0 = 32;
struct BlockQ5_0 {
    uint16_t d;              // fp16 scale
    uint8_t qh[4];           // bit i of the little-endian u32 = bit 4 of element i's q
    uint8_t qs[kQK5_0 / 2];  // low 4 bits, nibbles as in Q4_0; value = d * (q - 16)
};
static_assert(sizeof(BlockQ5_0) == 22);

constexpr int kQK5_1 = 32;
struct BlockQ5_1 {
    uint16_t d;              // fp16 scale
    uint16_t m;              // fp16 offset
    uint8_t qh[4];           // as in Q5_0
    uint8_t qs[kQK5_1 / 2];  // as in Q5_0; value = d * q + m
};
static_assert(sizeof(BlockQ5_1) == 24);

// K-quants: super-blocks of 256 elements.
constexpr int kQK_K = 256;

// Q2_K / Q3_K share the layout of their 2-bit integers: each half h of the
// block (elements 128h..128h + 127) reads qs[32h..32h + 31]; element
// 128h + 32k + i (k < 4, i < 32) is bits 2k..2k + 1 of qs[32h + i]. Both
// have 16 sub-blocks of 16 elements: element e belongs to sub-block e / 16.

// Q2_K: value = d * sc_j * q - dmin * m_j, q in 0..3, sc_j and m_j 4 bits.
struct BlockQ2_K {
    uint8_t scales[kQK_K / 16];  // sub-block j: sc_j in the low nibble, m_j in the high
    uint8_t qs[kQK_K / 4];       // 2-bit integers, as above
    uint16_t d;                  // fp16 scale of the sub-block scales
    uint16_t dmin;               // fp16 scale of the sub-block mins
};
static_assert(sizeof(BlockQ2_K) == 84);

// Q3_K: q = the 2 bits from qs + 4 * (bit 2 from hmask), q in 0..7; value =
// d * (sc_j - 32) * (q - 4). Bit 2 of element e is bit e / 32 of
// hmask[e % 32]. The 16 sub-block scales sc_j (6 bits, 0..63) are packed
// in scales[12]: the low 4 bits of sc_j are the low nibble of scales[j]
// for j < 8, the high nibble of scales[j - 8] for j >= 8; its top 2 bits
// are bits 2 (j / 4)..2 (j / 4) + 1 of scales[8 + j % 4].
struct BlockQ3_K {
    uint8_t hmask[kQK_K / 8];  // bit 2 of each integer
    uint8_t qs[kQK_K / 4];     // bits 0-1, as above
    uint8_t scales[12];        // packed 6-bit sub-block scales
    uint16_t d;                // fp16
};
static_assert(sizeof(BlockQ3_K) == 110);
// Q4_K / Q5_K: 8 sub-blocks of 32 elements; sub-block j has a 6-bit scale
// sc_j and a 6-bit min m_j, packed in scales[12]: for j < 4, sc_j is the low
// 6 bits of scales[j] and m_j those of scales[j + 4]; for j >= 4, sc_j is
// the low nibble of scales[j + 4] plus the top 2 bits of scales[j - 4] as
// bits 4-5, m_j the high nibble of scales[j + 4] plus the top 2 bits of
// scales[j]. Value = d * sc_j * q - dmin * m_j.
constexpr int kKScaleBytes = 12;
struct BlockQ4_K {
    uint16_t d;                    // fp16 scale of the sub-block scales
    uint16_t dmin;                 // fp16 scale of the sub-block mins
    uint8_t scales[kKScaleBytes];  // packed 6-bit scales and mins
    uint8_t qs[kQK_K / 2];         // per 64 elements, 32 bytes: low nibbles are
                                   // elements 0..31, high nibbles 32..63
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleBytes];  // as in Q4_K
    uint8_t qh[kQK_K / 8];         // bit 4 of q: element 64c + i (i < 32) in bit 2c of
                                   // qh[i], element 64c + 32 + i in bit 2c + 1
    uint8_t qs[kQK_K / 2];         // low 4 bits, laid out as in Q4_K
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16 elements with int8 scales. Each half h of the
// block (elements 128h..128h + 127) reads ql[64h..64h + 63] and
// qh[32h..32h + 31]; with those offsets, for i < 32, elements i, 32 + i,
// 64 + i, 96 + i take as bits 0-3 the low nibble of ql[i], the low nibble
// of ql[32 + i], the high nibble of ql[i], the high nibble of ql[32 + i],
// and as bits 4-5 bits 0-1, 2-3, 4-5, 6-7 of qh[i].
// Value = d * scales[e / 16] * (q - 32) for element e.
struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ6_K) == 210);

}  // namespace pagoda

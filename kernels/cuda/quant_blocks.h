#pragma once
// Decoding of GGUF weight rows, the one decoder per type that the CUDA
// kernels use: block-quantized types through QuantTraits (32-element chunks,
// 8 elements at a time), every CUDA weight type element by element through
// dequantElement. nvcc (device and host passes, C++17) and the host
// compiler (which gets fp16/bf16 from kernels/half.h) both build it, so the
// host tests check these very functions against the float64 reference
// decoder.
//
// Decoded values are final (scales and offsets applied) and correctly
// rounded to f32: each is one rounding of an exact scale * q + offset (the
// products of an fp16 scale, a 6- or 8-bit sub-block scale and q take at
// most 23 bits), as cpu::dequantizeRow gives them.
//
// Most blocks are only 2-byte aligned (Q4_0 18 bytes, Q5_0 22, Q6_K 210),
// so they are read as bytes or 16-bit words. Q4_K (144 bytes) and Q5_K
// (176) keep 8-byte alignment from a row start that has it
// (QuantTraits::kAlignment), and are read in 32- and 64-bit words.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/host_device.h"
#include "kernels/dtype.h"

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#else
#include "kernels/half.h"
#endif

namespace pagoda::cuda {

PAGODA_HD float halfBitsToFloat(uint16_t bits) {
#ifdef __CUDACC__
    return __half2float(__ushort_as_half(bits));
#else
    return halfToFloat(bits);
#endif
}

PAGODA_HD float bf16BitsToFloat(uint16_t bits) {
#ifdef __CUDACC__
    return __bfloat162float(__ushort_as_bfloat16(bits));
#else
    return bf16ToFloat(bits);
#endif
}

// q as f32, exactly, for |q| < 2^22 (every quantized integer and scale
// here). On the device an integer add and a float subtract on the ALU and
// FMA pipes instead of cvt.rn.f32.s32, which goes to the narrower
// conversion pipe (whether that matters here is not measured yet): with
// 1.5 * 2^23 added, q lands in the mantissa.
PAGODA_HD float smallIntToFloat(int q) {
#ifdef __CUDA_ARCH__
    return __int_as_float(0x4B400000 + q) - 12582912.0f;
#else
    return float(q);
#endif
}

namespace detail {

// Element i of an array of T at p (aligned for T): a plain load on the
// device, memcpy on the host (the bytes are not T objects there; the CTA
// emulator checks the alignment the device needs).
template <class T>
PAGODA_HD T load(const uint8_t* p, int64_t i) {
#ifdef __CUDA_ARCH__
    return reinterpret_cast<const T*>(p)[i];
#else
    PAGODA_EXPECT_ALIGNED(p + i * int64_t(sizeof(T)), sizeof(T));
    T value;
    std::memcpy(&value, p + i * int64_t(sizeof(T)), sizeof(T));
    return value;
#endif
}

// Word i of 2-byte aligned bytes p (little endian: byte 2i is the low half).
PAGODA_HD uint32_t word(const uint8_t* p, int i) { return load<uint16_t>(p, i); }

// Bytes p[0..7] (2-byte aligned) as a little-endian word, in as few loads
// as p's alignment allows: one, two or four. Where the lanes of a warp read
// one block (the K-quants in the matvec: 32 units of 8 per block) the
// branch is the same for all of them.
PAGODA_HD uint64_t load8Bytes(const uint8_t* p) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(p);
    if (address % 8 == 0) return load<uint64_t>(p, 0);
    if (address % 4 == 0) return load<uint32_t>(p, 0) | uint64_t(load<uint32_t>(p, 1)) << 32;
    return word(p, 0) | word(p, 1) << 16 | uint64_t(word(p, 2) | word(p, 3) << 16) << 32;
}

// The bit fields (p[i] >> shift) & mask of bytes p[0..7] (2-byte aligned),
// shift < 8.
PAGODA_HD void bitFields8(const uint8_t* p, int shift, uint32_t mask, int (&q)[8]) {
    PAGODA_UNROLL
    for (int i = 0; i < 4; ++i) {
        const uint32_t w = word(p, i) >> shift;
        q[2 * i] = int(w & mask);
        q[2 * i + 1] = int((w >> 8) & mask);
    }
}

// The 8 nibbles of bytes p[0..7] (2-byte aligned), low or high halves.
PAGODA_HD void nibbles8(const uint8_t* p, bool high, int (&q)[8]) { bitFields8(p, high ? 4 : 0, 0x0f, q); }

// Bits `bit` of bytes p[0..7] (2-byte aligned).
PAGODA_HD void bits8(const uint8_t* p, int bit, int (&h)[8]) { bitFields8(p, bit, 1, h); }

// Elements 8e..8e+7 of a 32-element block (Q4_0, Q4_1, Q5_0, Q5_1): element
// j < 16 in the low nibble of qs[j], element 16 + j in the high nibble.
PAGODA_HD void legacyNibbles8(const uint8_t* qs, int e, int (&q)[8]) { nibbles8(qs + 8 * (e % 2), e >= 2, q); }

// Adds bit 4 of elements 8e..8e+7 from Q5_0/Q5_1's qh (bit i of the
// little-endian u32 for element i).
PAGODA_HD void addQ5HighBits(const uint8_t* qh, int e, int (&q)[8]) {
    const uint32_t bits = (word(qh, 0) | word(qh, 1) << 16) >> (8 * e);
    PAGODA_UNROLL
    for (int i = 0; i < 8; ++i) q[i] |= int((bits >> i) & 1) << 4;
}

// The 2-bit integers at bits shift, shift + 1 of bytes p[0..7] (2-byte
// aligned): Q2_K / Q3_K.
PAGODA_HD void twoBits8(const uint8_t* p, int shift, int (&q)[8]) { bitFields8(p, shift, 3, q); }

// Sub-block j's scale of a Q3_K block, sc_j - 32 (layout in dtype.h).
PAGODA_HD int q3kScale(const uint8_t* s, int j) {
    const int low = j < 8 ? s[j] & 0x0f : s[j - 8] >> 4;
    return (low | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
}

// Sub-block j's 6-bit scale and min of a Q4_K / Q5_K block (layout in
// dtype.h) from its 12 scale bytes as three little-endian words: they are
// in bytes j % 4 of the words (s[j % 4], s[j % 4 + 4], s[j % 4 + 8]).
PAGODA_HD void kScaleMin(const uint32_t (&words)[3], int j, int& scale, int& min) {
    const int shift = 8 * (j % 4);
    const int b0 = int(words[0] >> shift) & 0xff;
    const int b1 = int(words[1] >> shift) & 0xff;
    const int b2 = int(words[2] >> shift) & 0xff;
    if (j < 4) {
        scale = b0 & 63;
        min = b1 & 63;
    } else {
        scale = (b2 & 0x0f) | (b0 >> 6) << 4;
        min = (b2 >> 4) | (b1 >> 6) << 4;
    }
}

// Bit fields (byte i >> shift) & mask of the 8 bytes of a little-endian
// 64-bit word, shift < 8.
PAGODA_HD void bitFields8(uint64_t bytes, int shift, uint32_t mask, int (&q)[8]) {
    const uint32_t lo = uint32_t(bytes) >> shift;
    const uint32_t hi = uint32_t(bytes >> 32) >> shift;
    PAGODA_UNROLL
    for (int i = 0; i < 4; ++i) {
        q[i] = int((lo >> (8 * i)) & mask);
        q[4 + i] = int((hi >> (8 * i)) & mask);
    }
}

}  // namespace detail

// Per block type: Block, kElements (32 or 256), kAlignment (the bytes a
// block's address must be a multiple of: 2, or 8 for Q4_K and Q5_K) and
// decode8(block, chunk, e, v), which writes elements 8e..8e+7 (e < 4) of the
// block's 32-element chunk `chunk` (elements 32 chunk .. 32 chunk + 31,
// chunk < kElements / 32) to v[0..7] as f32 values.
template <DType Q>
struct QuantTraits;

template <>
struct QuantTraits<DType::Q8_0> {
    using Block = BlockQ8_0;
    static constexpr int kElements = kQK8_0;
    static constexpr int kAlignment = 2;
    PAGODA_HD static void decode8(const Block& b, int /*chunk*/, int e, float* v) {
        const float d = halfBitsToFloat(b.d);
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) {
            const uint32_t w = detail::word(reinterpret_cast<const uint8_t*>(b.qs), 4 * e + i);
            v[2 * i] = d * smallIntToFloat(int8_t(w & 0xff));
            v[2 * i + 1] = d * smallIntToFloat(int8_t(w >> 8));
        }
    }
};

// The 32-element types with 4 or 5 bits: value = d * (q - 8) (Q4_0),
// d * (q - 16) (Q5_0), or d * q + m (Q4_1, Q5_1).
template <class B, bool kOffset, bool kFiveBits>
struct LegacyTraits {
    using Block = B;
    static constexpr int kElements = 32;
    static constexpr int kAlignment = 2;
    PAGODA_HD static void decode8(const Block& b, int /*chunk*/, int e, float* v) {
        const float d = halfBitsToFloat(b.d);
        int q[8];
        detail::legacyNibbles8(b.qs, e, q);
        if constexpr (kFiveBits) detail::addQ5HighBits(b.qh, e, q);
        if constexpr (kOffset) {
            const float m = halfBitsToFloat(b.m);
            PAGODA_UNROLL
            for (int i = 0; i < 8; ++i) v[i] = d * smallIntToFloat(q[i]) + m;
        } else {
            constexpr int kZero = kFiveBits ? 16 : 8;
            PAGODA_UNROLL
            for (int i = 0; i < 8; ++i) v[i] = d * smallIntToFloat(q[i] - kZero);
        }
    }
};

template <>
struct QuantTraits<DType::Q4_0> : LegacyTraits<BlockQ4_0, false, false> {};
template <>
struct QuantTraits<DType::Q4_1> : LegacyTraits<BlockQ4_1, true, false> {};
template <>
struct QuantTraits<DType::Q5_0> : LegacyTraits<BlockQ5_0, false, true> {};
template <>
struct QuantTraits<DType::Q5_1> : LegacyTraits<BlockQ5_1, true, true> {};

// Chunk j = 4 h + k of a Q2_K / Q3_K block (half h, k < 4) takes its 2 low
// bits from bits 2k, 2k + 1 of qs[32 h ..]; 16-element sub-blocks, so two
// scales per chunk.
template <>
struct QuantTraits<DType::Q2_K> {
    using Block = BlockQ2_K;
    static constexpr int kElements = kQK_K;
    static constexpr int kAlignment = 2;
    PAGODA_HD static void decode8(const Block& b, int chunk, int e, float* v) {
        const int packed = b.scales[2 * chunk + e / 2];
        const float d = halfBitsToFloat(b.d) * float(packed & 0x0f);
        const float m = halfBitsToFloat(b.dmin) * float(packed >> 4);
        int q[8];
        detail::twoBits8(b.qs + 32 * (chunk / 4) + 8 * e, 2 * (chunk % 4), q);
        PAGODA_UNROLL
        for (int i = 0; i < 8; ++i) v[i] = d * smallIntToFloat(q[i]) - m;
    }
};

// As Q2_K, bit 2 of element i of chunk j in bit j of hmask[i].
template <>
struct QuantTraits<DType::Q3_K> {
    using Block = BlockQ3_K;
    static constexpr int kElements = kQK_K;
    static constexpr int kAlignment = 2;
    PAGODA_HD static void decode8(const Block& b, int chunk, int e, float* v) {
        const float d = halfBitsToFloat(b.d) * float(detail::q3kScale(b.scales, 2 * chunk + e / 2));
        int q[8];
        int h[8];
        detail::twoBits8(b.qs + 32 * (chunk / 4) + 8 * e, 2 * (chunk % 4), q);
        detail::bits8(b.hmask + 8 * e, chunk, h);
        PAGODA_UNROLL
        for (int i = 0; i < 8; ++i) v[i] = d * smallIntToFloat((q[i] | h[i] << 2) - 4);
    }
};

// Chunk j of a Q4_K / Q5_K block is sub-block j: its low 4 bits are the low
// (j even) or high (j odd) nibbles of qs[32 (j / 2) ..]; Q5_K's bit 4 of
// element i of chunk j is bit j of qh[i]. Read in words (kAlignment): d and
// dmin as one 32-bit word, the scales as three, 8 elements' quants as one
// 64-bit word (qs and qh start 8-byte aligned in the block).
template <class B, bool kFiveBits>
struct KTraits {
    using Block = B;
    static constexpr int kElements = kQK_K;
    static constexpr int kAlignment = 8;
    static_assert(sizeof(B) % kAlignment == 0 && offsetof(B, qs) % 8 == 0 && offsetof(B, scales) == 4);
    PAGODA_HD static void decode8(const Block& b, int chunk, int e, float* v) {
        const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&b);
        const uint32_t dm = detail::load<uint32_t>(bytes, 0);
        const uint32_t words[3] = {detail::load<uint32_t>(bytes, 1), detail::load<uint32_t>(bytes, 2),
                                   detail::load<uint32_t>(bytes, 3)};
        int scale;
        int min;
        detail::kScaleMin(words, chunk, scale, min);
        const float d = halfBitsToFloat(uint16_t(dm & 0xffff)) * float(scale);
        const float m = halfBitsToFloat(uint16_t(dm >> 16)) * float(min);
        int q[8];
        detail::bitFields8(detail::load<uint64_t>(b.qs + 32 * (chunk / 2) + 8 * e, 0), chunk % 2 == 1 ? 4 : 0, 0x0f,
                           q);
        if constexpr (kFiveBits) {
            static_assert(offsetof(B, qh) % 8 == 0);
            int h[8];
            detail::bitFields8(detail::load<uint64_t>(b.qh + 8 * e, 0), chunk, 1, h);
            PAGODA_UNROLL
            for (int i = 0; i < 8; ++i) q[i] |= h[i] << 4;
        }
        PAGODA_UNROLL
        for (int i = 0; i < 8; ++i) v[i] = d * smallIntToFloat(q[i]) - m;
    }
};

template <>
struct QuantTraits<DType::Q4_K> : KTraits<BlockQ4_K, false> {};
template <>
struct QuantTraits<DType::Q5_K> : KTraits<BlockQ5_K, true> {};

// Chunk j = 4 h + k of a Q6_K block (half h, k < 4) takes its low 4 bits
// from ql[64 h + 32 (k % 2) ..] (low nibbles for k < 2, high for k >= 2) and
// bits 4-5 from bits 2k, 2k + 1 of qh[32 h ..]; 16-element sub-blocks, so
// two scales per chunk. The 210-byte blocks are 2-byte aligned, and every
// fourth 8-byte aligned: 8 elements' ql and qh bytes are read as widely as
// each block allows (load8Bytes).
template <>
struct QuantTraits<DType::Q6_K> {
    using Block = BlockQ6_K;
    static constexpr int kElements = kQK_K;
    static constexpr int kAlignment = 2;
    PAGODA_HD static void decode8(const Block& b, int chunk, int e, float* v) {
        const int h = chunk / 4;
        const int k = chunk % 4;
        const float d = halfBitsToFloat(b.d) * float(b.scales[2 * chunk + e / 2]);
        int q[8];
        detail::bitFields8(detail::load8Bytes(b.ql + 64 * h + 32 * (k % 2) + 8 * e), k >= 2 ? 4 : 0, 0x0f, q);
        int high[8];
        detail::bitFields8(detail::load8Bytes(b.qh + 32 * h + 8 * e), 2 * k, 3, high);
        PAGODA_UNROLL
        for (int i = 0; i < 8; ++i) q[i] |= high[i] << 4;
        PAGODA_UNROLL
        for (int i = 0; i < 8; ++i) v[i] = d * smallIntToFloat(q[i] - 32);
    }
};

namespace detail {

template <DType Q>
PAGODA_HD float quantElement(const uint8_t* row, int64_t c) {
    using Traits = QuantTraits<Q>;
    const typename Traits::Block& b = reinterpret_cast<const typename Traits::Block*>(row)[c / Traits::kElements];
    const int i = int(c % Traits::kElements);
    float v[8];
    Traits::decode8(b, i / 32, i % 32 / 8, v);
    // Selected without indexing v at run time, which would put it in local
    // memory on the device.
    float out = v[0];
    PAGODA_UNROLL
    for (int k = 1; k < 8; ++k) out = i % 8 == k ? v[k] : out;
    return out;
}

}  // namespace detail

// Calls f(std::integral_constant<DType, Q>{}) when `type` is a
// block-quantized type Q with QuantTraits, and says whether it was one: the
// launchers' dispatch from a weight's type to their kernel templates.
template <class F>
bool visitQuantType(DType type, F&& f) {
    switch (type) {
    case DType::Q8_0: f(std::integral_constant<DType, DType::Q8_0>{}); return true;
    case DType::Q4_0: f(std::integral_constant<DType, DType::Q4_0>{}); return true;
    case DType::Q4_1: f(std::integral_constant<DType, DType::Q4_1>{}); return true;
    case DType::Q5_0: f(std::integral_constant<DType, DType::Q5_0>{}); return true;
    case DType::Q5_1: f(std::integral_constant<DType, DType::Q5_1>{}); return true;
    case DType::Q2_K: f(std::integral_constant<DType, DType::Q2_K>{}); return true;
    case DType::Q3_K: f(std::integral_constant<DType, DType::Q3_K>{}); return true;
    case DType::Q4_K: f(std::integral_constant<DType, DType::Q4_K>{}); return true;
    case DType::Q5_K: f(std::integral_constant<DType, DType::Q5_K>{}); return true;
    case DType::Q6_K: f(std::integral_constant<DType, DType::Q6_K>{}); return true;
    default: return false;
    }
}

// Element c of a row stored as `type`, one of the CUDA weight types
// (isCudaWeightType); 0 for any other type. row: [rowBytes(type, cols)],
// 4-byte aligned for F32, as QuantTraits::kAlignment says for the
// block-quantized types, 2-byte for the others.
PAGODA_HD float dequantElement(DType type, const uint8_t* row, int64_t c) {
    switch (type) {
    case DType::F32: return detail::load<float>(row, c);
    case DType::F16: return halfBitsToFloat(detail::load<uint16_t>(row, c));
    case DType::BF16: return bf16BitsToFloat(detail::load<uint16_t>(row, c));
    case DType::Q8_0: return detail::quantElement<DType::Q8_0>(row, c);
    case DType::Q4_0: return detail::quantElement<DType::Q4_0>(row, c);
    case DType::Q4_1: return detail::quantElement<DType::Q4_1>(row, c);
    case DType::Q5_0: return detail::quantElement<DType::Q5_0>(row, c);
    case DType::Q5_1: return detail::quantElement<DType::Q5_1>(row, c);
    case DType::Q2_K: return detail::quantElement<DType::Q2_K>(row, c);
    case DType::Q3_K: return detail::quantElement<DType::Q3_K>(row, c);
    case DType::Q4_K: return detail::quantElement<DType::Q4_K>(row, c);
    case DType::Q5_K: return detail::quantElement<DType::Q5_K>(row, c);
    case DType::Q6_K: return detail::quantElement<DType::Q6_K>(row, c);
    default: return 0.0f;
    }
}

}  // namespace pagoda::cuda

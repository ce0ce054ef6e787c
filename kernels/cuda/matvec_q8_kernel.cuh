#pragma once
// Int8 decode (OptimizationConfig::int8Matmul on the CUDA backend): the
// activations rounded to 8 bits in blocks of 32 (quantizeActivationsKernel),
// then the decode matvec of block-quantized weights as integer dot products
// (__dp4a: four 8-bit products summed into 32 bits) with one float
// multiply per weight scale and activation block, where the float matvec
// (matvec_kernel.cuh) widens every weight to f32 and takes one FMA per
// element and token. Launched by matvec.cu; a header of its own so that a
// host emulation can compile this very source without nvcc.
//
// A CTA, its rows, the Plain and Swiglu products and the sums over lanes
// and warps are the float matvec's (ctaWork, ctaRow, writeRows); a lane
// takes units of Q8Units<Q>::kElements elements instead of 8.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/matvec_kernel.cuh"

namespace pagoda::cuda::mv {

constexpr int kQ8Block = 32;  // activations per scale

// Activations rounded to 8 bits: q [nTokens][cols] (rows 16-byte aligned:
// cols a multiple of 16) and, per block b of 32 of a token, ds[b] = {d,
// d * sum of its 32 q}, where x ~ d * q and d = max |x| / 127 (0 for a
// block of zeros).
struct Q8Activations {
    const int8_t* q = nullptr;
    const float* ds = nullptr;  // [nTokens][cols / 32][2]
};

// sum of the four products of the bytes of a and b as signed 8-bit
// integers, plus c.
PAGODA_HD int dot4(uint32_t a, uint32_t b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a(int(a), int(b), c);
#else
    for (int i = 0; i < 4; ++i) c += int(int8_t(a >> (8 * i))) * int(int8_t(b >> (8 * i)));
    return c;
#endif
}

PAGODA_HD float intToFloat(int v) {
#ifdef __CUDA_ARCH__
    return __int2float_rn(v);
#else
    return float(v);
#endif
}

// grid: ceil(nTokens * cols / 32 / kQ8BlocksPerCta); block: kQ8BlocksPerCta
// warps, lane i of a warp taking element i of one block of 32. x: [nTokens]
// [cols] f32, cols a multiple of 32.
constexpr int kQ8BlocksPerCta = 8;
__global__ void __launch_bounds__(kQ8BlocksPerCta * 32)
    quantizeActivationsKernel(const float* x, int64_t nBlocks, int8_t* q, float* ds) {
    awaitPrecedingKernel();
    const int lane = threadIdx.x % 32;
    const int64_t block = int64_t(blockIdx.x) * kQ8BlocksPerCta + threadIdx.x / 32;
    if (block >= nBlocks) return;  // whole warps
    const float v = x[block * kQ8Block + lane];
    const float amax = warpMax(fabsf(v));
    const float d = amax / 127.0f;
    // |v| / d <= 127 up to rounding: clamped, so that q is an int8 whatever d rounded to.
    const int rounded = d > 0.0f ? int(rintf(v / d)) : 0;
    const int value = rounded > 127 ? 127 : rounded < -127 ? -127 : rounded;
    q[block * kQ8Block + lane] = int8_t(value);
    const int sum = int(warpSum(float(value)));  // exact: |sum| <= 32 * 127
    if (lane == 0) {
        ds[2 * block] = d;
        ds[2 * block + 1] = d * float(sum);
    }
}

// Q8Units<Q>: a unit of kElements of a row of type Q against the int8
// activations. loadX(xq, ds, u, x) reads a token's activations of unit u
// (xq and ds at that token's row), once for the CTA's rows;
// prepare(row, u, w) a row's weights; dot(w, x) their product.
template <DType Q>
struct Q8Units;

// Token activations of 32-element units that are whole activation blocks
// (Q8_0, Q4_0, Q6_K): the quants of elements 0..15 and 16..31, d and d *
// sum of the block's quants.
struct Block32X {
    uint32_t lo[4];
    uint32_t hi[4];
    float d;
    float dSum;
};

// The weights of such a unit: the quants of elements 0..15 and 16..31 (as
// the type packs them) and the block's d.
struct Block32Weights {
    uint32_t lo[4];
    uint32_t hi[4];
    float d;
};

// The integer dot product of a unit's 32 quants with its activations.
PAGODA_HD int dot32(const Block32Weights& w, const Block32X& x) {
    int sum = 0;
    PAGODA_UNROLL
    for (int i = 0; i < 4; ++i) {
        sum = dot4(w.lo[i], x.lo[i], sum);
        sum = dot4(w.hi[i], x.hi[i], sum);
    }
    return sum;
}

PAGODA_HD void loadBlock32(const int8_t* xq, const float* ds, int64_t b, Block32X& x) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(xq) + kQ8Block * b;
    load16(p, x.lo);
    load16(p + 16, x.hi);
    x.d = ds[2 * b];
    x.dSum = ds[2 * b + 1];
}

// Q4_K and Q5_K (layouts in dtype.h): a unit is 16 bytes of a block's
// quants, 16 of sub-block 2j's elements (low nibbles) and the same 16 of
// sub-block 2j + 1's (high nibbles), unit k of a block being bytes 16k of
// qs: j = k / 2, elements 16 (k % 2) .. of each; Q5_K's fifth bits are
// bits 2j and 2j + 1 of qh[16 (k % 2) ..]. With d * scale_j and dmin *
// min_j, sum_i (d sc q_i - dmin m) x_i ~ d sc dx sum_i q_i xq_i - dmin m
// (dx sum xq): the min term needs the sum of a whole activation block, so
// the unit with k even takes it for both sub-blocks and the odd one none.
// Per unit: two 16-byte loads of weights (the block's 16-byte head: d,
// dmin, scales; the quants), Q5_K a third (qh), and 8 dp4a; per token two
// 16-byte loads of activations.
template <class B, bool kFiveBits>
struct KQ8Units {
    static constexpr int kElements = 32;
    static constexpr int kAlignment = 16;
    static constexpr int kPerBlock = kQK_K / kElements;
    static_assert(sizeof(B) % 16 == 0 && offsetof(B, qs) % 16 == 0);
    struct X {
        uint32_t lo[4];  // the activations of the low nibbles' 16 elements
        uint32_t hi[4];  // of the high nibbles'
        float ds[4];     // d and d * sum of the two activation blocks
    };
    struct Weights {
        uint32_t lo[4];  // the 16 low sub-block quants, one per byte
        uint32_t hi[4];
        float scale[2];  // d * scale of sub-blocks 2j and 2j + 1
        float min[2];    // dmin * min of the same (0 for odd units)
    };
    PAGODA_HD static void loadX(const int8_t* xq, const float* ds, int64_t u, X& x) {
        const int64_t element = (u / kPerBlock) * kQK_K + 64 * (u % kPerBlock / 2) + 16 * (u % 2);
        load16(reinterpret_cast<const uint8_t*>(xq) + element, x.lo);
        load16(reinterpret_cast<const uint8_t*>(xq) + element + 32, x.hi);
        const int64_t b = element / kQ8Block;  // the low sub-block's activation block; b + 1 the high one's
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) x.ds[i] = ds[2 * b + i];
    }
    PAGODA_HD static void prepare(const uint8_t* row, int64_t u, Weights& w) {
        const uint8_t* block = row + (u / kPerBlock) * int64_t(sizeof(B));
        const int k = int(u % kPerBlock);
        uint32_t head[4];
        load16(block, head);
        uint32_t qs[4];
        load16(block + offsetof(B, qs) + 16 * k, qs);
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) {
            w.lo[i] = qs[i] & 0x0f0f0f0f;
            w.hi[i] = (qs[i] >> 4) & 0x0f0f0f0f;
        }
        if constexpr (kFiveBits) {
            static_assert(offsetof(B, qh) % 16 == 0);
            uint32_t qh[4];
            load16(block + offsetof(B, qh) + 16 * (k % 2), qh);
            const int j = k / 2;
            PAGODA_UNROLL
            for (int i = 0; i < 4; ++i) {
                w.lo[i] |= ((qh[i] >> (2 * j)) & 0x01010101) << 4;
                w.hi[i] |= ((qh[i] >> (2 * j + 1)) & 0x01010101) << 4;
            }
        }
        const uint32_t words[3] = {head[1], head[2], head[3]};
        const float d = halfBitsToFloat(uint16_t(head[0] & 0xffff));
        const float dmin = halfBitsToFloat(uint16_t(head[0] >> 16));
        PAGODA_UNROLL
        for (int s = 0; s < 2; ++s) {
            int scale;
            int min;
            detail::kScaleMin(words, 2 * (k / 2) + s, scale, min);
            w.scale[s] = d * float(scale);
            w.min[s] = k % 2 == 0 ? dmin * float(min) : 0.0f;
        }
    }
    PAGODA_HD static float dot(const Weights& w, const X& x) {
        int dotLo = 0;
        int dotHi = 0;
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) {
            dotLo = dot4(w.lo[i], x.lo[i], dotLo);
            dotHi = dot4(w.hi[i], x.hi[i], dotHi);
        }
        return w.scale[0] * x.ds[0] * intToFloat(dotLo) + w.scale[1] * x.ds[2] * intToFloat(dotHi) -
               (w.min[0] * x.ds[1] + w.min[1] * x.ds[3]);
    }
};

template <>
struct Q8Units<DType::Q4_K> : KQ8Units<BlockQ4_K, false> {};
template <>
struct Q8Units<DType::Q5_K> : KQ8Units<BlockQ5_K, true> {};

// 16 bytes at p as four little-endian words, read as wide as an alignment
// of A bytes allows: the 32-element blocks (18 to 34 bytes) put their
// quants 2, 4, 6 or 8 bytes into the block.
template <int A>
PAGODA_HD void loadWords16(const uint8_t* p, uint32_t (&w)[4]) {
    static_assert(A == 2 || A == 4);
    PAGODA_UNROLL
    for (int i = 0; i < 4; ++i) {
        if constexpr (A == 4) {
            w[i] = detail::load<uint32_t>(p, i);
        } else {
            w[i] = detail::word(p, 2 * i) | detail::word(p, 2 * i + 1) << 16;
        }
    }
}

// The integer dot product of 16 quants (one per byte) with 16 activations,
// and the sum of the activations (a dp4a with ones), added to products
// and sum.
PAGODA_HD void dot16(const uint32_t (&w)[4], const uint32_t (&x)[4], int& products, int& sum) {
    PAGODA_UNROLL
    for (int i = 0; i < 4; ++i) {
        products = dot4(w[i], x[i], products);
        sum = dot4(0x01010101u, x[i], sum);
    }
}

// Bits 0..3 of n as bit 4 of bytes 0..3: n * (1 + 2^7 + 2^14 + 2^21) puts
// bit k of n at bit 8k, and its other bits at positions k + 7m that no
// two products share (k, m < 4), so no carry reaches the bits kept.
PAGODA_HD uint32_t fifthBits(uint32_t n) { return ((n * 0x00204081u) & 0x01010101u) << 4; }

// Q8_0: a unit is a block, 32 int8 quants times d: d dx sum q xq.
template <>
struct Q8Units<DType::Q8_0> {
    static constexpr int kElements = 32;
    static constexpr int kAlignment = 2;
    using X = Block32X;
    using Weights = Block32Weights;
    PAGODA_HD static void loadX(const int8_t* xq, const float* ds, int64_t u, X& x) { loadBlock32(xq, ds, u, x); }
    PAGODA_HD static void prepare(const uint8_t* row, int64_t u, Weights& w) {
        const uint8_t* block = row + u * int64_t(sizeof(BlockQ8_0));
        w.d = halfBitsToFloat(uint16_t(detail::word(block, 0)));
        loadWords16<kAlignment>(block + offsetof(BlockQ8_0, qs), w.lo);
        loadWords16<kAlignment>(block + offsetof(BlockQ8_0, qs) + 16, w.hi);
    }
    PAGODA_HD static float dot(const Weights& w, const X& x) {
        return w.d * x.d * intToFloat(dot32(w, x));
    }
};

// Q4_0, Q4_1, Q5_0 and Q5_1: a unit is a block, element i < 16 in the low
// nibble of qs[i], 16 + i in the high one (Q5's fifth bits: bit i of qh,
// a little-endian u32, for element i). Each value is d q + m (Q4_1, Q5_1)
// or d (q - z) (Q4_0 z = 8, Q5_0 z = 16): d dx sum q xq + m (dx sum xq) or
// d (dx sum q xq - z (dx sum xq)), the second sum the activation block's.
// The 20- and 24-byte blocks keep 4-byte alignment, and are read in 32-bit
// words; the others in 16-bit ones.
template <class B, bool kOffset, bool kFiveBits>
struct LegacyQ8Units {
    static constexpr int kElements = 32;
    static constexpr int kAlignment = sizeof(B) % 4 == 0 ? 4 : 2;
    using X = Block32X;
    struct Weights : Block32Weights {  // the quants, one per byte, and d
        float m;                       // the offset (Q4_1, Q5_1)
    };
    static constexpr float kZero = kFiveBits ? 16.0f : 8.0f;  // Q4_0, Q5_0
    PAGODA_HD static void loadX(const int8_t* xq, const float* ds, int64_t u, X& x) { loadBlock32(xq, ds, u, x); }
    PAGODA_HD static void prepare(const uint8_t* row, int64_t u, Weights& w) {
        const uint8_t* block = row + u * int64_t(sizeof(B));
        w.d = halfBitsToFloat(uint16_t(detail::word(block, 0)));
        if constexpr (kOffset) w.m = halfBitsToFloat(uint16_t(detail::word(block, 1)));
        uint32_t qs[4];
        loadWords16<kAlignment>(block + offsetof(B, qs), qs);
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) {
            w.lo[i] = qs[i] & 0x0f0f0f0f;
            w.hi[i] = (qs[i] >> 4) & 0x0f0f0f0f;
        }
        if constexpr (kFiveBits) {
            const uint8_t* qh = block + offsetof(B, qh);
            uint32_t bits;
            if constexpr (kAlignment == 4) {
                bits = detail::load<uint32_t>(qh, 0);
            } else {
                bits = detail::word(qh, 0) | detail::word(qh, 1) << 16;
            }
            PAGODA_UNROLL
            for (int i = 0; i < 4; ++i) {
                w.lo[i] |= fifthBits((bits >> (4 * i)) & 0x0f);
                w.hi[i] |= fifthBits((bits >> (16 + 4 * i)) & 0x0f);
            }
        }
    }
    PAGODA_HD static float dot(const Weights& w, const X& x) {
        if constexpr (kOffset) {
            return w.d * x.d * intToFloat(dot32(w, x)) + w.m * x.dSum;
        } else {
            return w.d * (x.d * intToFloat(dot32(w, x)) - kZero * x.dSum);
        }
    }
};

template <>
struct Q8Units<DType::Q4_0> : LegacyQ8Units<BlockQ4_0, false, false> {};
template <>
struct Q8Units<DType::Q4_1> : LegacyQ8Units<BlockQ4_1, true, false> {};
template <>
struct Q8Units<DType::Q5_0> : LegacyQ8Units<BlockQ5_0, false, true> {};
template <>
struct Q8Units<DType::Q5_1> : LegacyQ8Units<BlockQ5_1, true, true> {};

// The K-quants with 16-element sub-blocks (Q2_K, Q3_K, Q6_K; layouts in
// dtype.h): a unit is one 32-element chunk c of a block B (elements 32 c
// .., one activation block); its weights are the quants of elements 0..15
// and 16..31 of the chunk, one per byte, and the two sub-blocks' scales.
struct Chunk32Weights {
    uint32_t q[2][4];
    int scale[2];
};

template <class B, int A>
struct Chunk32Units {
    static constexpr int kElements = 32;
    static constexpr int kAlignment = A;
    static constexpr int kPerBlock = kQK_K / kElements;
    using X = Block32X;
    PAGODA_HD static void loadX(const int8_t* xq, const float* ds, int64_t u, X& x) { loadBlock32(xq, ds, u, x); }
    PAGODA_HD static const uint8_t* blockOf(const uint8_t* row, int64_t u) {
        return row + (u / kPerBlock) * int64_t(sizeof(B));
    }
    PAGODA_HD static int chunkOf(int64_t u) { return int(u % kPerBlock); }
};

// Over the chunk's two sub-blocks p: scaled = sum_p sc_p (sum q xq), and
// offsets = sum_p c_p (sum xq), both by dp4a, exact in 32 bits.
PAGODA_HD void chunkSums(const Chunk32Weights& w, const int (&c)[2], const Block32X& x, int& scaled, int& offsets) {
    scaled = 0;
    offsets = 0;
    PAGODA_UNROLL
    for (int part = 0; part < 2; ++part) {
        int products = 0;
        int sum = 0;
        dot16(w.q[part], part == 0 ? x.lo : x.hi, products, sum);
        scaled += w.scale[part] * products;
        offsets += c[part] * sum;
    }
}

// Q3_K and Q6_K: each value d sc (q - z) with q unsigned: d dx sum_p sc_p
// (sum q xq - z sum xq).
struct OffsetChunkWeights : Chunk32Weights {
    float d;
};

template <int kZero>
PAGODA_HD float offsetChunkDot(const OffsetChunkWeights& w, const Block32X& x) {
    const int offsets[2] = {kZero * w.scale[0], kZero * w.scale[1]};
    int scaled;
    int offset;
    chunkSums(w, offsets, x, scaled, offset);
    return w.d * x.d * intToFloat(scaled - offset);
}

// Q6_K (decoded as QuantTraits<Q6_K>::decode8 does): chunk c = 4 h + k
// takes its 6-bit quants q' = q + 32 from 32 bytes of ql (low or high
// nibbles) and 32 of qh (2 bits), both 2-byte aligned in the 210-byte
// block; two int8 scales; z = 32.
template <>
struct Q8Units<DType::Q6_K> : Chunk32Units<BlockQ6_K, 2> {
    using Weights = OffsetChunkWeights;
    PAGODA_HD static void prepare(const uint8_t* row, int64_t u, Weights& w) {
        const uint8_t* block = blockOf(row, u);
        const int chunk = chunkOf(u);
        const int h = chunk / 4;
        const int k = chunk % 4;
        const uint8_t* ql = block + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (k % 2);
        const uint8_t* qh = block + offsetof(BlockQ6_K, qh) + 32 * h;
        PAGODA_UNROLL
        for (int part = 0; part < 2; ++part) {
            uint32_t low[4];
            uint32_t high[4];
            loadWords16<kAlignment>(ql + 16 * part, low);
            loadWords16<kAlignment>(qh + 16 * part, high);
            PAGODA_UNROLL
            for (int i = 0; i < 4; ++i) {
                w.q[part][i] = ((low[i] >> (k >= 2 ? 4 : 0)) & 0x0f0f0f0f) | ((high[i] >> (2 * k)) & 0x03030303) << 4;
            }
        }
        const uint32_t scales = detail::word(block + offsetof(BlockQ6_K, scales), chunk);
        w.scale[0] = int(int8_t(scales & 0xff));
        w.scale[1] = int(int8_t(scales >> 8));
        w.d = halfBitsToFloat(uint16_t(detail::word(block + offsetof(BlockQ6_K, d), 0)));
    }
    PAGODA_HD static float dot(const Weights& w, const X& x) { return offsetChunkDot<32>(w, x); }
};

// Q2_K and Q3_K: chunk c = 4 h + k takes its 2 low bits from bits 2k,
// 2k + 1 of qs[32 h ..] (32 bytes) into q.
template <int A>
PAGODA_HD void twoBitChunk(const uint8_t* qs, int chunk, uint32_t (&q)[2][4]) {
    PAGODA_UNROLL
    for (int part = 0; part < 2; ++part) {
        loadWords16<A>(qs + 32 * (chunk / 4) + 16 * part, q[part]);
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) q[part][i] = (q[part][i] >> (2 * (chunk % 4))) & 0x03030303;
    }
}

// Q2_K (84-byte blocks, 4-byte aligned: 32-bit loads): per 16 elements
// d sc q - dmin m, so dx (d sum_p sc_p sum q xq - dmin sum_p m_p sum xq),
// both sums over the two sub-blocks exact in 32 bits.
template <>
struct Q8Units<DType::Q2_K> : Chunk32Units<BlockQ2_K, 4> {
    struct Weights : Chunk32Weights {
        int min[2];
        float d;
        float dmin;
    };
    PAGODA_HD static void prepare(const uint8_t* row, int64_t u, Weights& w) {
        static_assert(offsetof(BlockQ2_K, qs) % 4 == 0 && offsetof(BlockQ2_K, d) % 4 == 0);
        const uint8_t* block = blockOf(row, u);
        const int chunk = chunkOf(u);
        twoBitChunk<kAlignment>(block + offsetof(BlockQ2_K, qs), chunk, w.q);
        const uint32_t packed = detail::word(block + offsetof(BlockQ2_K, scales), chunk);
        PAGODA_UNROLL
        for (int part = 0; part < 2; ++part) {
            w.scale[part] = int(packed >> (8 * part)) & 0x0f;
            w.min[part] = int(packed >> (8 * part + 4)) & 0x0f;
        }
        const uint32_t dm = detail::load<uint32_t>(block + offsetof(BlockQ2_K, d), 0);
        w.d = halfBitsToFloat(uint16_t(dm & 0xffff));
        w.dmin = halfBitsToFloat(uint16_t(dm >> 16));
    }
    PAGODA_HD static float dot(const Weights& w, const X& x) {
        int scaled;
        int mins;
        chunkSums(w, w.min, x, scaled, mins);
        return x.d * (w.d * intToFloat(scaled) - w.dmin * intToFloat(mins));
    }
};

// Q3_K (110-byte blocks: 16-bit loads): q = the 2 bits + 4 * bit c of
// hmask[i], each value d (sc - 32) (q - 4): z = 4, the scale sc - 32.
template <>
struct Q8Units<DType::Q3_K> : Chunk32Units<BlockQ3_K, 2> {
    using Weights = OffsetChunkWeights;
    PAGODA_HD static void prepare(const uint8_t* row, int64_t u, Weights& w) {
        const uint8_t* block = blockOf(row, u);
        const int chunk = chunkOf(u);
        twoBitChunk<kAlignment>(block + offsetof(BlockQ3_K, qs), chunk, w.q);
        PAGODA_UNROLL
        for (int part = 0; part < 2; ++part) {
            uint32_t high[4];
            loadWords16<kAlignment>(block + offsetof(BlockQ3_K, hmask) + 16 * part, high);
            PAGODA_UNROLL
            for (int i = 0; i < 4; ++i) w.q[part][i] |= ((high[i] >> chunk) & 0x01010101) << 2;
            w.scale[part] = detail::q3kScale(block + offsetof(BlockQ3_K, scales), 2 * chunk + part);
        }
        w.d = halfBitsToFloat(uint16_t(detail::word(block + offsetof(BlockQ3_K, d), 0)));
    }
    PAGODA_HD static float dot(const Weights& w, const X& x) { return offsetChunkDot<4>(w, x); }
};

// Every block-quantized type the CUDA kernels read (visitQuantType) has
// an int8 kernel; the alignment it needs of its rows.
inline int q8Alignment(DType type) {
    int alignment = 0;
    visitQuantType(type, [&](auto q) { alignment = Q8Units<decltype(q)::value>::kAlignment; });
    return alignment;
}

// As matvecKernel, over int8 activations: x.q [nTokens][cols], x.ds
// [nTokens][cols / 32][2]; cols a multiple of T's block size.
template <DType T, int NT, Product P = Product::Plain>
__global__ void __launch_bounds__(kWarps * 32)
    matvecQ8Kernel(Matrices m, int64_t rowBytes, Q8Activations x, int64_t cols, int64_t nTokens) {
    awaitPrecedingKernel([&] {
        prefetchFirstPass<T, Q8Units<T>::kElements, P>(m, ctaWork<NT, P>(m, nTokens), rowBytes,
                                                       cols / Q8Units<T>::kElements);
    });
    using Units = Q8Units<T>;
    __shared__ float partial[kWarps][kRows * NT];
    const CtaWork k = ctaWork<NT, P>(m, nTokens);
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int64_t nUnits = cols / Units::kElements;
    float acc[kRows][NT] = {};
    for (int64_t u = warp * 32 + lane; u < nUnits; u += kWarps * 32) {
        typename Units::X xs[NT] = {};
        PAGODA_UNROLL
        for (int t = 0; t < NT; ++t) {
            if (t < k.nTok) {
                Units::loadX(x.q + (k.t0 + t) * cols, x.ds + 2 * (k.t0 + t) * (cols / kQ8Block), u, xs[t]);
            }
        }
        PAGODA_UNROLL
        for (int r = 0; r < kRows; ++r) {
            if (r % kRowsPerMatrix<P> >= k.nRows) {
                if constexpr (P == Product::Plain) break;  // the rest are past the end too
                continue;
            }
            typename Units::Weights w;
            Units::prepare(ctaRow<P>(m, k.c, k.row0, rowBytes, r), u, w);
            PAGODA_UNROLL
            for (int t = 0; t < NT; ++t) {
                if (t < k.nTok) acc[r][t] += Units::dot(w, xs[t]);
            }
        }
    }
    writeRows<NT, P>(acc, partial, k);
}

}  // namespace pagoda::cuda::mv

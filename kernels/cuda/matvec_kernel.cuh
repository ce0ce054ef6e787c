#pragma once
// The matrix-vector kernel of decode steps (1 to kMatvecMaxTokens tokens),
// for every weight type the CUDA backend reads (F32, F16, BF16 and the
// block-quantized types), launched by matvec.cu. A header of its own so
// that a host emulation can compile this very source without nvcc.
//
// Decode reads each weight once per step, so the kernel is built around
// memory traffic: a CTA computes kRows rows, and its warps split the
// columns in units of 8 elements, lane l of warp w taking units
// l + 32 w, l + 32 (w + kWarps), ... Adjacent lanes read adjacent units
// (16 bytes of F16, 8 bytes of a Q4_K block's nibbles), so a warp's loads
// are contiguous, and the 8 activations of a unit are read once for
// the kRows rows. Tokens come in groups of up to 8 (blockIdx.y), each
// reading the weights once. Each token's sum is taken in the same order
// whatever the number of tokens in the launch (explicit fmaf: no compiler
// may contract one instantiation differently from another), so a decode
// row gives the same result alone and in a batch.

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/quant_blocks.h"

namespace pagoda::cuda::mv {

constexpr int kWarps = 4;
constexpr int kRows = 4;

// The tokens a CTA takes (the kernel's NT) for a launch of nTokens: 1, 4
// or 8, the fewest idle accumulators for each count up to 8; groups of 8
// beyond (gridDim.y of them, each reading the weights).
constexpr int tokenGroup(int64_t nTokens) { return nTokens <= 1 ? 1 : nTokens <= 4 ? 4 : 8; }

// 16 bytes at p (16-byte aligned) as four little-endian words.
PAGODA_HD void load16(const uint8_t* p, uint32_t (&w)[4]) {
#ifdef __CUDA_ARCH__
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    w[0] = v.x;
    w[1] = v.y;
    w[2] = v.z;
    w[3] = v.w;
#else
    PAGODA_EXPECT_ALIGNED(p, 16);
    std::memcpy(w, p, sizeof w);
#endif
}

PAGODA_HD float bitsToFloat(uint32_t bits) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(bits);
#else
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
#endif
}

// Units<T>::load8(row, u, v): elements 8u .. 8u + 7 of a row of type T as
// f32. Block-quantized types decode them from their block (quant_blocks.h);
// the float types read 16 bytes at a time, so their rows must be 16-byte
// aligned (matvec.cu checks).
template <DType Q>
struct Units {
    using Traits = QuantTraits<Q>;
    static constexpr int kPerBlock = Traits::kElements / 8;
    PAGODA_HD static void load8(const uint8_t* row, int64_t u, float (&v)[8]) {
        const auto& block = reinterpret_cast<const typename Traits::Block*>(row)[u / kPerBlock];
        const int within = int(u % kPerBlock);
        Traits::decode8(block, within / 4, within % 4, v);
    }
};

template <>
struct Units<DType::F32> {
    PAGODA_HD static void load8(const uint8_t* row, int64_t u, float (&v)[8]) {
        PAGODA_UNROLL
        for (int half = 0; half < 2; ++half) {
            uint32_t w[4];
            load16(row + 32 * u + 16 * half, w);
            PAGODA_UNROLL
            for (int i = 0; i < 4; ++i) v[4 * half + i] = bitsToFloat(w[i]);
        }
    }
};

// The 16-bit float types: a 16-byte load, each half widened exactly (a
// bf16 is the high half of an f32: a shift).
template <DType T>
struct HalfUnits {
    PAGODA_HD static float widen(uint16_t bits) {
        if constexpr (T == DType::BF16) {
            return bitsToFloat(uint32_t(bits) << 16);
        } else {
            return halfBitsToFloat(bits);
        }
    }
    PAGODA_HD static void load8(const uint8_t* row, int64_t u, float (&v)[8]) {
        uint32_t w[4];
        load16(row + 16 * u, w);
        PAGODA_UNROLL
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = widen(uint16_t(w[i] & 0xffff));
            v[2 * i + 1] = widen(uint16_t(w[i] >> 16));
        }
    }
};

template <>
struct Units<DType::F16> : HalfUnits<DType::F16> {};
template <>
struct Units<DType::BF16> : HalfUnits<DType::BF16> {};

// The matrices of one launch (products that share their input: q, k and
// v; gate and up): up to kMaxMatrices of the same type and columns, each
// with its output. CTAs [firstCta[i], firstCta[i + 1]) compute matrix i.
constexpr int kMaxMatrices = 3;
struct Matrices {
    const uint8_t* w[kMaxMatrices] = {};
    float* y[kMaxMatrices] = {};        // [nTokens][rows[i]]
    int64_t rows[kMaxMatrices] = {};
    unsigned firstCta[kMaxMatrices + 1] = {};
    int count = 0;
};

// What a CTA multiplies: kRows rows of the matrices (rowAt(r) null: past
// a matrix's end), for tokens blockIdx.y * NT .. + NT.
enum class Product {
    // y[t][r] = sum_c W[r][c] x[t][c] for rows (blockIdx.x - firstCta[i]) *
    // kRows .. + kRows of the CTA's matrix i.
    Plain,
    // m.y[0][t][r] = silu(gate[t][r]) * up[t][r] (swigluValue) for rows
    // blockIdx.x * kRows / 2 .. + kRows / 2 of gate (m.w[0]) and of up
    // (m.w[1]), each row summed as Plain sums it: the bits of the two
    // products and the swiglu kernel after them.
    Swiglu,
};

// The matrix a CTA of a launch multiplies, picked with constant indices (a
// parameter array indexed at run time would be copied to local memory):
// for Plain, matrix i of m with firstCta[i] <= blockIdx.x; for Swiglu,
// gate (m.w[0]) with up (m.w[1]) beside it.
struct CtaMatrix {
    const uint8_t* w;
    float* y;
    int64_t rows;
    unsigned first;
};

template <Product P>
__device__ __forceinline__ CtaMatrix ctaMatrix(const Matrices& m) {
    CtaMatrix c{m.w[0], m.y[0], m.rows[0], m.firstCta[0]};
    if constexpr (P == Product::Plain) {
        PAGODA_UNROLL
        for (int i = 1; i < kMaxMatrices; ++i) {
            if (i < m.count && blockIdx.x >= m.firstCta[i]) c = {m.w[i], m.y[i], m.rows[i], m.firstCta[i]};
        }
    }
    return c;
}

// The rows of each matrix a CTA takes: kRows of one (Plain), kRows / 2 of
// gate and the same of up (Swiglu).
template <Product P>
constexpr int kRowsPerMatrix = P == Product::Plain ? kRows : kRows / 2;

// Row r of the CTA (r % kRowsPerMatrix<P> < its row count: inside its
// matrix): rows row0 .. of c (Plain), of gate then of up (Swiglu).
template <Product P>
__device__ __forceinline__ const uint8_t* ctaRow(const Matrices& m, const CtaMatrix& c, int64_t row0,
                                                 int64_t rowBytes, int r) {
    if constexpr (P == Product::Plain) {
        return c.w + (row0 + r) * rowBytes;
    } else {
        return (r < kRows / 2 ? c.w : m.w[1]) + (row0 + r % (kRows / 2)) * rowBytes;
    }
}

// What a CTA of a launch of nTokens takes: its matrix, its rows row0 ..
// row0 + nRows of it (of gate and of up for Swiglu) and its tokens t0 ..
// t0 + nTok.
struct CtaWork {
    CtaMatrix c;
    int64_t row0;
    int64_t t0;
    int nRows;
    int nTok;
};

template <int NT, Product P>
__device__ __forceinline__ CtaWork ctaWork(const Matrices& m, int64_t nTokens) {
    CtaWork k;
    k.c = ctaMatrix<P>(m);
    k.row0 = int64_t(blockIdx.x - k.c.first) * kRowsPerMatrix<P>;
    k.t0 = int64_t(blockIdx.y) * NT;
    k.nRows = k.c.rows - k.row0 < kRowsPerMatrix<P> ? int(k.c.rows - k.row0) : kRowsPerMatrix<P>;
    k.nTok = nTokens - k.t0 < NT ? int(nTokens - k.t0) : NT;
    return k;
}

// Sums each lane's acc[r][t] over the CTA (over the warp, then over the
// warps in order) and writes row r of token t: the sum (Plain), or
// swigluValue of gate row r and up row r + kRows / 2 (Swiglu).
template <int NT, Product P>
__device__ __forceinline__ void writeRows(const float (&acc)[kRows][NT], float (&partial)[kWarps][kRows * NT],
                                          const CtaWork& k) {
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    PAGODA_UNROLL
    for (int r = 0; r < kRows; ++r) {
        PAGODA_UNROLL
        for (int t = 0; t < NT; ++t) {
            const float sum = warpSum(acc[r][t]);
            if (lane == 0) partial[warp][r * NT + t] = sum;
        }
    }
    __syncthreads();
    // Row r's sum for token t, over the warps in order.
    auto rowSum = [&](int r, int t) {
        float sum = 0.0f;
        PAGODA_UNROLL
        for (int k = 0; k < kWarps; ++k) sum += partial[k][r * NT + t];
        return sum;
    };
    const int r = threadIdx.x / NT;
    const int t = threadIdx.x % NT;
    if (r < k.nRows && t < k.nTok) {
        float* y = k.c.y + (k.t0 + t) * k.c.rows + k.row0 + r;
        if constexpr (P == Product::Plain) {
            *y = rowSum(r, t);
        } else {
            *y = swigluValue(rowSum(r, t), rowSum(r + kRows / 2, t));
        }
    }
}

// Unit u of `elements` elements of a row of type T: where its bytes start
// (for the block-quantized types, at its block).
template <DType T, int kElements>
PAGODA_HD const uint8_t* unitBytes(const uint8_t* row, int64_t u) {
    if constexpr (T == DType::F32) {
        return row + int64_t(4 * kElements) * u;
    } else if constexpr (T == DType::F16 || T == DType::BF16) {
        return row + int64_t(2 * kElements) * u;
    } else {
        using Traits = QuantTraits<T>;
        return row + u * kElements / Traits::kElements * int64_t(sizeof(typename Traits::Block));
    }
}

// The L2 lines of the CTA's first pass over its rows (each lane's first
// unit of each row): called before awaitPrecedingKernel, so that with a
// dependent launch the weights start streaming while the kernel before
// still runs.
template <DType T, int kElements, Product P>
__device__ __forceinline__ void prefetchFirstPass(const Matrices& m, const CtaWork& k, int64_t rowBytes,
                                                  int64_t nUnits) {
    const int64_t u = threadIdx.x;  // warp * 32 + lane
    if (u >= nUnits) return;
    PAGODA_UNROLL
    for (int r = 0; r < kRows; ++r) {
        if (r % kRowsPerMatrix<P> < k.nRows) {
            prefetchL2(unitBytes<T, kElements>(ctaRow<P>(m, k.c, k.row0, rowBytes, r), u));
        }
    }
}

// grid: (Plain: firstCta[count]; Swiglu: ceil(rows / (kRows / 2)),
// ceil(nTokens / NT)), kWarps * 32 threads. w: [rows][rowBytes] of type T;
// x: [nTokens][cols] (16-byte aligned, cols a multiple of 8).
template <DType T, int NT, Product P = Product::Plain>
__global__ void __launch_bounds__(kWarps * 32)
    matvecKernel(Matrices m, int64_t rowBytes, const float* x, int64_t cols, int64_t nTokens) {
    awaitPrecedingKernel([&] { prefetchFirstPass<T, 8, P>(m, ctaWork<NT, P>(m, nTokens), rowBytes, cols / 8); });
    __shared__ float partial[kWarps][kRows * NT];
    const CtaWork k = ctaWork<NT, P>(m, nTokens);
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int64_t nUnits = cols / 8;
    float acc[kRows][NT] = {};
    for (int64_t u = warp * 32 + lane; u < nUnits; u += kWarps * 32) {
        float xs[NT][8];
        PAGODA_UNROLL
        for (int t = 0; t < NT; ++t) {
            if (t < k.nTok) {
                uint32_t bits[4];
                PAGODA_UNROLL
                for (int half = 0; half < 2; ++half) {
                    load16(reinterpret_cast<const uint8_t*>(x + (k.t0 + t) * cols + 8 * u + 4 * half), bits);
                    PAGODA_UNROLL
                    for (int i = 0; i < 4; ++i) xs[t][4 * half + i] = bitsToFloat(bits[i]);
                }
            } else {
                PAGODA_UNROLL
                for (int i = 0; i < 8; ++i) xs[t][i] = 0.0f;
            }
        }
        PAGODA_UNROLL
        for (int r = 0; r < kRows; ++r) {
            if (r % kRowsPerMatrix<P> >= k.nRows) {
                if constexpr (P == Product::Plain) break;  // the rest are past the end too
                continue;
            }
            float v[8];
            Units<T>::load8(ctaRow<P>(m, k.c, k.row0, rowBytes, r), u, v);
            PAGODA_UNROLL
            for (int t = 0; t < NT; ++t) {
                PAGODA_UNROLL
                for (int i = 0; i < 8; ++i) acc[r][t] = fmaf(v[i], xs[t][i], acc[r][t]);
            }
        }
    }
    writeRows<NT, P>(acc, partial, k);
}

}  // namespace pagoda::cuda::mv

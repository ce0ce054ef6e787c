#pragma once
// Decode's weight products: 1 to kMatvecMaxTokens tokens through any weight
// type the CUDA backend reads (F32, F16, BF16, block-quantized), one kernel
// that converts the weights to f32 in registers and takes the activations
// as they are, in f32 (matvec_kernel.cuh). It reads the weights once per
// group of up to 8 tokens. For the float types this replaces an f16 (or
// bf16) copy of the activations and a cuBLAS call; for the block-quantized
// types it is quantMatmul's path up to 8 tokens and, in CUDA graph
// captures (no workspace for f16 panels), the backend's up to 32.

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

constexpr int64_t kMatvecMaxTokens = 32;
// Matrices one launch may take (matvecs): q, k and v.
constexpr int kMatvecMaxMatrices = 3;

// Whether matvec takes w: an F32, F16, BF16 or block-quantized matrix
// whose columns are a multiple of 8 (of the block size for quantized
// types) and, for the float types, whose rows start 16-byte aligned (the
// quantized ones: quantBlocksAligned).
bool matvecTakes(const DeviceWeight& w);

// y[t][r] = sum_c W[r][c] * x[t][c] with f32 accumulation. w: matvecTakes;
// x: device [nTokens][w.cols] f32 (16-byte aligned); y: device
// [nTokens][w.rows] f32; 0 <= nTokens <= kMatvecMaxTokens.
Status matvec(const LaunchStream& stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens);

// matvec of `count` matrices (1 to kMatvecMaxMatrices, each matvecTakes,
// all of one type and one column count) with one input, in one launch:
// y[i] = w[i] x. Each product's bits are those of matvec alone.
Status matvecs(const LaunchStream& stream, const DeviceWeight* w, float* const* y, int count, const float* x,
               int64_t nTokens);

// out = silu(gate x) * (up x) elementwise ([nTokens][gate.rows]), the
// SwiGLU of a decode step's feed-forward, in one launch: gate and up as
// matvecs takes them, with the same rows; each element's bits are those
// of matvecs of the two and the swiglu kernel after it.
Status matvecSwiglu(const LaunchStream& stream, const DeviceWeight& gate, const DeviceWeight& up, const float* x,
                    float* out, int64_t nTokens);

// Int8 decode (OptimizationConfig::int8Matmul): the activations rounded to
// 8 bits in blocks of 32 (x ~ d * q, d = max |x| / 127 per block), then
// integer dot products with the weights (matvec_q8_kernel.cuh). The error
// of a product is at most sum over blocks of (1/2 + 127 * 2^-23) * d *
// sum |w| of the block (half of d, plus x / d's own rounding), plus float
// rounding.
struct Int8Activations {
    const int8_t* q = nullptr;  // [nTokens][cols]
    const float* ds = nullptr;  // [nTokens][cols / 32]: d, d * sum of the block's q
    int64_t cols = 0;
    int64_t nTokens = 0;
};

// Device bytes quantizeActivations needs for [nTokens][cols].
size_t int8ActivationBytes(int64_t cols, int64_t nTokens);

// x: device [nTokens][cols] f32, cols a multiple of 32; workspace: device,
// int8ActivationBytes(cols, nTokens), 16-byte aligned.
StatusOr<Int8Activations> quantizeActivations(const LaunchStream& stream, const float* x, int64_t cols, int64_t nTokens,
                                              void* workspace);

// Whether the int8 kernels take w: matvecTakes and a type with an int8
// kernel (every block-quantized type; Q4_K, Q5_K with 16-byte aligned
// rows).
bool matvecInt8Takes(const DeviceWeight& w);

// matvecs and matvecSwiglu over int8 activations of the matrices' columns
// (each matrix matvecInt8Takes).
Status matvecsInt8(const LaunchStream& stream, const DeviceWeight* w, float* const* y, int count,
                   const Int8Activations& x);
Status matvecSwigluInt8(const LaunchStream& stream, const DeviceWeight& gate, const DeviceWeight& up,
                        const Int8Activations& x, float* out);

// How products with one input share matvecs launches: the indices i with
// viaMatvec[i], in groups of up to kMatvecMaxMatrices of one type and
// column count (a Q4_K_M model's v may be Q6_K where q and k are Q4_K),
// each group in index order, the groups in the order of their first index.
std::vector<std::vector<int>> matvecGroups(const std::vector<DeviceWeight>& w, const std::vector<bool>& viaMatvec);

}  // namespace pagoda::cuda

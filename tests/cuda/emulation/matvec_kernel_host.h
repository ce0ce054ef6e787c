#pragma once
// The decode matrix-vector kernel of kernels/cuda/matvec_kernel.cuh,
// compiled as host C++ and run by the CTA emulator in the launch shape
// matvec.cu gives it.

#include <cstdint>

#include "kernels/dtype.h"
#include "tests/cuda/emulation/cta_emulator.h"

namespace pagoda::cuda::emulation {

// The tokens one CTA takes in a launch of nTokens (mv::tokenGroup).
int matvecTokenGroup(int64_t nTokens);

// Int8 activations (matvec_q8_kernel.cuh): q [nTokens][cols]; ds
// [nTokens][cols / 32][2]: d, d * sum of the block's q.
struct Int8Input {
    const int8_t* q = nullptr;
    const float* ds = nullptr;
};

// Whether `type` has an int8 matvec kernel: every block-quantized type
// (isCudaQuantType).
bool hasInt8Matvec(DType type);

// quantizeActivationsKernel as quantizeActivations launches it: x
// [nTokens][cols] (cols a multiple of 32) into q and ds (Int8Input).
Findings runQuantizeActivationsKernel(const float* x, int64_t nTokens, int64_t cols, int8_t* q, float* ds,
                                      LaunchConfig config);

// matvecKernel<type, tokenGroup(nTokens)> over `count` matrices (at most
// mv::kMaxMatrices) of one type and `cols` columns, as matvecs launches
// it: grid (sum of ceil(rows[i] / kRows), ceil(nTokens / NT)), kWarps
// warps. w[i]: [rows[i]][rowBytes(type, cols)] (host memory); x:
// [nTokens][cols]; y[i]: [nTokens][rows[i]]. `config` brings the CTA
// hooks and the thread order; the rest is set here. With x8 non-null,
// matvecQ8Kernel over those int8 activations instead of x. A type without
// a kernel is an error finding.
Findings runMatvecKernel(DType type, const uint8_t* const* w, const int64_t* rows, float* const* y, int count,
                         int64_t cols, const float* x, const Int8Input* x8, int64_t nTokens, LaunchConfig config);

// matvecKernel<type, tokenGroup(nTokens), Product::Swiglu> as matvecSwiglu
// launches it: grid (ceil(rows / (kRows / 2)), ceil(nTokens / NT)). gate, up:
// [rows][rowBytes(type, cols)] (host memory); out: [nTokens][rows]; x8 as
// for runMatvecKernel.
Findings runMatvecSwigluKernel(DType type, const uint8_t* gate, const uint8_t* up, int64_t rows, float* out,
                               int64_t cols, const float* x, const Int8Input* x8, int64_t nTokens,
                               LaunchConfig config);

// swigluValue (kernels/cuda/device_common.cuh) as the emulated kernels
// compute it.
float swigluOnHost(float gate, float up);

// The CTAs of matrix i in such a launch: [first, first + ceil(rows / kRows)).
unsigned matvecFirstCta(const int64_t* rows, int i);

}  // namespace pagoda::cuda::emulation

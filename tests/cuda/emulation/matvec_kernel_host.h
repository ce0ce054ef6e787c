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

// matvecKernel<type, tokenGroup(nTokens)> over `count` matrices (at most
// mv::kMaxMatrices) of one type and `cols` columns, as matvecs launches
// it: grid (sum of ceil(rows[i] / kRows), ceil(nTokens / NT)), kWarps
// warps. w[i]: [rows[i]][rowBytes(type, cols)] (host memory); x:
// [nTokens][cols]; y[i]: [nTokens][rows[i]]. `config` brings the CTA
// hooks and the thread order; the rest is set here. A type without a
// kernel is an error finding.
Findings runMatvecKernel(DType type, const uint8_t* const* w, const int64_t* rows, float* const* y, int count,
                         int64_t cols, const float* x, int64_t nTokens, LaunchConfig config);

// matvecKernel<type, tokenGroup(nTokens), Product::Swiglu> as matvecSwiglu
// launches it: grid (ceil(rows / (kRows / 2)), ceil(nTokens / NT)). gate, up:
// [rows][rowBytes(type, cols)] (host memory); out: [nTokens][rows].
Findings runMatvecSwigluKernel(DType type, const uint8_t* gate, const uint8_t* up, int64_t rows, float* out,
                               int64_t cols, const float* x, int64_t nTokens, LaunchConfig config);

// swigluValue (kernels/cuda/device_common.cuh) as the emulated kernels
// compute it.
float swigluOnHost(float gate, float up);

// The CTAs of matrix i in such a launch: [first, first + ceil(rows / kRows)).
unsigned matvecFirstCta(const int64_t* rows, int i);

}  // namespace pagoda::cuda::emulation

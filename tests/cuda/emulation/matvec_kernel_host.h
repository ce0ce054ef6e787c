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

// matvecKernel<type, tokenGroup(nTokens)>: grid (ceil(rows / kRows),
// ceil(nTokens / NT)), kWarps warps. w: [rows][rowBytes(type, cols)] (host
// memory); x: [nTokens][cols]; y: [nTokens][rows]. `config` brings the
// CTA hooks and the thread order; the rest is set here. A type without a
// kernel is an error finding.
Findings runMatvecKernel(DType type, const uint8_t* w, int64_t rows, int64_t cols, const float* x, float* y,
                         int64_t nTokens, LaunchConfig config);

}  // namespace pagoda::cuda::emulation

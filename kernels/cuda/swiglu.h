#pragma once
// SwiGLU: the gated activation of the llama feed-forward block.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// out[i] = silu(gate[i]) * up[i]; device [n] each, out may alias gate or up.
Status swiglu(const LaunchStream& stream, const float* gate, const float* up, float* out, int64_t n);

}  // namespace pagoda::cuda

#pragma once
// The gated activations of the feed-forward block: SwiGLU (llama and most
// others) and GELU-gated (Gemma).

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// out[i] = silu(gate[i]) * up[i]; device [n] each, out may alias gate or up.
Status swiglu(const LaunchStream& stream, const float* gate, const float* up, float* out, int64_t n);

// out[i] = gelu(gate[i]) * up[i], GELU's tanh form (gegluValue in
// activations.h); device [n] each, out may alias gate or up.
Status geglu(const LaunchStream& stream, const float* gate, const float* up, float* out, int64_t n);

}  // namespace pagoda::cuda

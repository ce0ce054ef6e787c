#pragma once
// Rotary position embedding, llama (pairs 2i, 2i+1) and NeoX (pairs i,
// i + ropeDim/2) styles, in place on f32 heads.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/rope_shape.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// x: device [nTokens][nHeads][headDim], rotated at positions[t] (device
// [nTokens]). Angles are computed in double, as the CPU kernel does: at
// positions in the tens of thousands a float angle is off by milliradians.
Status rope(cudaStream_t stream, float* x, int nTokens, int nHeads, const int32_t* positions, const RopeShape& shape);

}  // namespace pagoda::cuda

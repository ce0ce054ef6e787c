#pragma once
// Rotary position embedding, llama (pairs 2i, 2i+1) and NeoX (pairs i,
// i + ropeDim/2) styles, in place on f32 heads; alone, or fused with the
// K/V store that follows it.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/rope_shape.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// x: device [nTokens][nHeads][headDim], rotated at positions[t] (device
// [nTokens]). Angles are computed in double, as the CPU kernel does: at
// positions in the tens of thousands a float angle is off by milliradians.
Status rope(const LaunchStream& stream, float* x, int nTokens, int nHeads, const int32_t* positions,
            const RopeShape& shape);

// rope() of q (nHeads heads) and of k (pools.nKvHeads heads), then
// storeKv() of k and v (kv_store.h) at slots (device [nTokens]), in one
// launch with the same bits; each pair's angle is computed once per token
// for all its heads. shape.headDim == pools.headDim, shape.ropeDim <= 256.
Status ropeStoreKv(const LaunchStream& stream, float* q, float* k, const float* v, int nTokens, int nHeads,
                   const int32_t* positions, const int32_t* slots, const RopeShape& shape, const DeviceKvView& pools,
                   void* kPool, void* vPool);

}  // namespace pagoda::cuda

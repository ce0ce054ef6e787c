#pragma once
// Writes of K/V rows into one layer's paged f16 pools.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// k, v: device [nTokens][nKvHeads][headDim] f32, rounded to f16 into slot
// slots[t] (device [nTokens]; block * blockSize + offset) of kPool/vPool
// (device [numBlocks][nKvHeads][blockSize][headDim]). Negative slots are
// skipped (padding tokens of a CUDA graph bucket).
Status storeKv(const LaunchStream& stream, const DeviceKvView& pools, void* kPool, void* vPool, const float* k,
               const float* v, const int32_t* slots, int nTokens);

}  // namespace pagoda::cuda

#pragma once
// Writes of K/V rows into one layer's paged pools, f16 or Q8_0.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// k, v: device [nTokens][nKvHeads][headDim] f32, rounded to f16 (or
// quantized to Q8_0 rows, as cpu::storeKv does, when pools.q8) into slot
// slots[t] (device [nTokens]; block * blockSize + offset) of kPool/vPool
// (device [numBlocks][nKvHeads][blockSize] rows). Negative slots are
// skipped (padding tokens of a CUDA graph bucket).
Status storeKv(const LaunchStream& stream, const DeviceKvView& pools, void* kPool, void* vPool, const float* k,
               const float* v, const int32_t* slots, int nTokens);

}  // namespace pagoda::cuda

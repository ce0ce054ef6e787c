#pragma once
// Flash attention for prefill chunks: tiles of 128 query rows of one head
// (32 per warp) against K/V tiles of 64 or 32 positions (prefillKvTile)
// copied by cp.async through the block table, double buffered; Q·Kᵀ and P·V
// on tensor cores (ldmatrix, mma.sync m16n8k16, f16 in, f32 accumulate),
// online softmax in registers, causal mask and sliding window, GQA by
// reading the query head's KV head. Head dims 64 and 128.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// tiles: device [nTiles][kTileDescInts] (attention_plan.h); kvTile: K/V
// positions per tile, as AttentionPlan::prefillKvTile (64 at head dim 64;
// 64 or 32 at 128).
Status prefillAttention(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles, int kvTile);

}  // namespace pagoda::cuda

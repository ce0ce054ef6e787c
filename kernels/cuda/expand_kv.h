#pragma once
// The "GQA off" baseline: the K/V blocks a call reads, copied to one head
// per query head (repeat_kv), so that attention then runs as multi-head
// attention over the copies.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// For each copy (device [nCopies][kCopyDescInts]: source block, destination
// block), query head h of the destination gets KV head h / (nHeads /
// src.nKvHeads) of the source. dst: pools of src's rows (f16 or Q8_0)
// [expandedBlocks][nHeads][blockSize].
Status expandKv(cudaStream_t stream, const DeviceKvView& src, int nHeads, const int32_t* copies, int nCopies,
                void* dstK, void* dstV);

}  // namespace pagoda::cuda

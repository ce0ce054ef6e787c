#pragma once
// Device helpers of the attention kernels: where a sequence's query rows
// and K/V rows live. Included by .cu files only.

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"

namespace pagoda::cuda {

struct SeqDesc {
    int queryOffset;
    int nQueries;
    int startPos;
    int tableOffset;
};

__device__ __forceinline__ SeqDesc loadSeq(const int32_t* seqs, int s) {
    const int4 d = reinterpret_cast<const int4*>(seqs)[s];
    return {d.x, d.y, d.z, d.w};
}

__device__ __forceinline__ int windowStart(int pos, int window) { return window > 0 ? max(0, pos - window + 1) : 0; }

// Block sizes are powers of two (planAttention checks), so a position
// splits into its block-table index (pos >> blockShift) and slot
// (pos & (blockSize - 1)) without an integer division.
__device__ __forceinline__ int blockShift(const AttentionArgs& a) {
#ifdef __CUDA_ARCH__
    return __ffs(a.kv.blockSize) - 1;
#else
    return __builtin_ctz(unsigned(a.kv.blockSize));
#endif
}

// Element offset of slot `slot` of physical block `block`, KV head
// `kvHead`, in one layer's pool: one wide multiply, the rest in 32 bits
// (a block of every KV head's rows is far below 2^31 elements).
__device__ __forceinline__ int64_t kvSlotOffset(const AttentionArgs& a, int block, int slot, int kvHead) {
    const int blockElements = a.kv.nKvHeads * a.kv.blockSize * a.kv.headDim;
    return int64_t(block) * blockElements + (kvHead * a.kv.blockSize + slot) * a.kv.headDim;
}

// Element offset of position `pos`, KV head `kvHead`, in one layer's pool;
// -1 when its block was released.
__device__ __forceinline__ int64_t kvRowOffset(const AttentionArgs& a, const SeqDesc& s, int pos, int kvHead) {
    const int block = a.tables[s.tableOffset + (pos >> blockShift(a))];
    if (block < 0) return -1;
    return kvSlotOffset(a, block, pos & (a.kv.blockSize - 1), kvHead);
}

}  // namespace pagoda::cuda

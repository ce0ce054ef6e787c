#pragma once
// Device helpers of the attention kernels: where a sequence's query rows
// and K/V rows live. Included by .cu files only.

#include <cuda_fp16.h>

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

// Row index of slot `slot` of physical block `block`, KV head `kvHead`, in
// one layer's pool (rows of headDim elements): one wide multiply, the rest
// in 32 bits (a block of every KV head's rows is far below 2^31 rows).
__device__ __forceinline__ int64_t kvSlotRow(const AttentionArgs& a, int block, int slot, int kvHead) {
    return int64_t(block) * (a.kv.nKvHeads * a.kv.blockSize) + kvHead * a.kv.blockSize + slot;
}

// Element offset of that row in an f16 pool (the same split of the
// arithmetic).
__device__ __forceinline__ int64_t kvSlotOffset(const AttentionArgs& a, int block, int slot, int kvHead) {
    const int blockElements = a.kv.nKvHeads * a.kv.blockSize * a.kv.headDim;
    return int64_t(block) * blockElements + (kvHead * a.kv.blockSize + slot) * a.kv.headDim;
}

// Row index of position `pos`, KV head `kvHead`, in one layer's pool; -1
// when its block was released.
__device__ __forceinline__ int64_t kvPositionRow(const AttentionArgs& a, const SeqDesc& s, int pos, int kvHead) {
    const int block = a.tables[s.tableOffset + (pos >> blockShift(a))];
    if (block < 0) return -1;
    return kvSlotRow(a, block, pos & (a.kv.blockSize - 1), kvHead);
}

// Element d of a Q8_0 row: its block's scale times its int8 (exact in f32).
__device__ __forceinline__ float q8Element(const uint8_t* row, int d) {
    const uint8_t* block = row + d / kKvQ8Block * kKvQ8BlockBytes;
    return __half2float(*reinterpret_cast<const __half*>(block)) * float(int8_t(block[2 + d % kKvQ8Block]));
}

// Element d of row `row` of a pool (`pool` is a.kv.k or a.kv.v), f16 or Q8_0.
__device__ __forceinline__ float kvElement(const AttentionArgs& a, const void* pool, int64_t row, int d) {
    if (a.kv.q8) return q8Element(static_cast<const uint8_t*>(pool) + row * a.kv.rowBytes(), d);
    return __half2float(static_cast<const __half*>(pool)[row * a.kv.headDim + d]);
}

}  // namespace pagoda::cuda

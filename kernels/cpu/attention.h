#pragma once
// Causal attention of a batch of query tokens over a paged KV pool, with
// grouped-query attention and an optional sliding window. Each query row
// keeps a running max and sum (online softmax) while it walks the
// sequence's blocks, so no score matrix is materialized.

#include <cstdint>
#include <span>

#include "kernels/cpu/cpu_context.h"
#include "kernels/dtype.h"

namespace pagoda::cpu {

// One layer's K and V pools; F32 or F16 elements.
struct PagedKvView {
    DType type = DType::F16;
    const void* k = nullptr;  // [numBlocks][nKvHeads][blockSize][headDim]
    const void* v = nullptr;  // [numBlocks][nKvHeads][blockSize][headDim]
    int nKvHeads = 0;
    int blockSize = 0;
    int headDim = 0;
};

// Query rows [queryOffset, queryOffset + nQueries) of the batch belong to one
// sequence; query i sits at position startPos + i and attends to KV positions
// [max(0, startPos + i - window + 1), startPos + i].
struct AttentionSequence {
    int queryOffset = 0;
    int nQueries = 0;
    int startPos = 0;
    const int32_t* blockTable = nullptr;  // [ceil((startPos + nQueries) / blockSize)] physical block ids
};

struct AttentionParams {
    const float* q = nullptr;  // [nTokens][nHeads][headDim]
    float* out = nullptr;      // [nTokens][nHeads][headDim]
    int nHeads = 0;            // a multiple of kv.nKvHeads; head h reads KV head h / (nHeads / nKvHeads)
    float scale = 1.0f;        // usually 1 / sqrt(headDim)
    int window = 0;            // 0: full causal attention
    PagedKvView kv;
    std::span<const AttentionSequence> sequences;
};

void attention(const CpuContext& ctx, const AttentionParams& params);

// Writes the K and V rows of nTokens tokens into their slots of the pool.
// k, v: [nTokens][nKvHeads][headDim]; slots[t] = block * blockSize + offset.
void storeKv(const PagedKvView& kv, void* kPool, void* vPool, const float* k, const float* v,
             const int32_t* slots, int nTokens);

}  // namespace pagoda::cpu

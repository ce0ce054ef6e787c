#pragma once
// Causal attention of a batch of query tokens over their sequences' K/V,
// read from a paged KV pool through block tables or from contiguous
// per-sequence arrays, with grouped/multi-query heads and an optional
// sliding window. Two algorithms behind one entry point: flash (tiled,
// online softmax, workspace independent of the context length) and naive
// (the full score matrix of each head, then softmax, then ·V). docs/ATTENTION.md
// has the algorithms, workspace formulas and measured numbers.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>

#include "kernels/cpu/cpu_context.h"
#include "kernels/dtype.h"

namespace pagoda::cpu {

// One layer's K and V pools (F32, F16 or Q8_0 rows; Q8_0 needs a head dim
// that is a multiple of 32) and the geometry every
// sequence shares. Contiguous sequences use type, nKvHeads and headDim
// only; k and v are then ignored.
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
// [max(0, startPos + i - window + 1), startPos + i], which must be stored.
struct AttentionSequence {
    int queryOffset = 0;
    int nQueries = 0;
    int startPos = 0;
    // Paged: [ceil((startPos + nQueries) / blockSize)] physical block ids.
    // Entries of blocks wholly below the first query's window may be
    // negative (released by the block manager): they are never read.
    // nullptr: the sequence is contiguous, in k and v below.
    const int32_t* blockTable = nullptr;
    const void* k = nullptr;  // contiguous only: [startPos + nQueries][nKvHeads][headDim] of kv.type
    const void* v = nullptr;  // contiguous only: [startPos + nQueries][nKvHeads][headDim] of kv.type
};

enum class AttentionAlgorithm {
    Flash,  // tiles of query rows x KV chunks, online softmax, split-context decode
    Naive,  // materializes scores [nQueries][context] per head (the baseline)
};

// Grow-only scratch memory that attention() reuses across calls. One per
// caller thread; attention() is not reentrant on the same workspace.
class AttentionWorkspace {
public:
    // At least `bytes` bytes, 64-byte aligned; contents unspecified.
    std::byte* reserve(size_t bytes);
    size_t capacity() const { return m_capacity; }

private:
    struct Free {
        void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(64)); }
    };
    std::unique_ptr<std::byte[], Free> m_data;
    size_t m_capacity = 0;
};

struct AttentionParams {
    const float* q = nullptr;  // [nTokens][nHeads][headDim]
    float* out = nullptr;      // [nTokens][nHeads][headDim]; rows of the sequences are all written
    int nHeads = 0;            // a multiple of kv.nKvHeads; head h reads KV head h / (nHeads / nKvHeads)
    float scale = 1.0f;        // usually 1 / sqrt(headDim)
    int window = 0;            // 0: full causal attention; W: each query sees its last W positions
    float softcap = 0.0f;      // > 0: each score x = scale · q·k becomes softcap · tanh(x / softcap) (Gemma 2)
    PagedKvView kv;
    std::span<const AttentionSequence> sequences;
    AttentionAlgorithm algorithm = AttentionAlgorithm::Flash;
    // The "GQA off" baseline: K/V are first copied to one head per query
    // head ([context][nHeads][headDim] per sequence, as repeat_kv does), then
    // attended as multi-head attention. Costs expandedKv bytes of workspace.
    bool expandKv = false;
    AttentionWorkspace* workspace = nullptr;  // nullptr: scratch is allocated for this call
};

// Bytes attention() takes from its workspace for these params on nThreads threads.
struct AttentionWorkspaceSize {
    size_t expandedKv = 0;  // the repeat_kv copies (expandKv only)
    size_t scratch = 0;     // per-thread tiles or score matrices, split partials
    size_t total() const { return expandedKv + scratch; }
};
AttentionWorkspaceSize attentionWorkspaceSize(const AttentionParams& params, int nThreads);

// out = softmax(scale · q·Kᵀ + mask) · V for every query row of every
// sequence, on ctx.pool's threads (the caller alone when it is null).
void attention(const CpuContext& ctx, const AttentionParams& params);

// Writes the K and V rows of nTokens tokens into their slots of the pool.
// k, v: [nTokens][nKvHeads][headDim]; slots[t] = block * blockSize + offset.
void storeKv(const PagedKvView& kv, void* kPool, void* vPool, const float* k, const float* v,
             const int32_t* slots, int nTokens);

// A per-layer mix of local (sliding-window) and global layers, as in
// Gemma 2/3: layer l is global when globalEvery > 0 and
// (l + 1) % globalEvery == 0, else it uses `window` (0: every layer global).
struct LocalGlobalPattern {
    int window = 0;
    int globalEvery = 0;
};
// The window to pass as AttentionParams::window for `layer`.
int layerWindow(const LocalGlobalPattern& pattern, int layer);

}  // namespace pagoda::cpu

#pragma once
// The KV cache in the paged block layout: per layer, K and V pools of
// fixed-size blocks [numBlocks][nKvHeads][blockSize][headDim], and a
// simple free-list allocator handing whole blocks to sequences. (Prefix
// sharing, eviction and preemption belong to the block manager.)

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/result.h"
#include "kernels/cpu/attention.h"
#include "kernels/dtype.h"

namespace pagoda {

struct ModelConfig;

struct KvLayout {
    int nLayers = 0;
    int nKvHeads = 0;
    int headDim = 0;
    int blockSize = 16;
    int numBlocks = 0;
    DType type = DType::F16;  // F16 or F32

    size_t elementsPerBlock() const { return size_t(nKvHeads) * blockSize * headDim; }
    uint64_t bytesPerBlock() const;  // K and V of every layer
    uint64_t bytes() const { return bytesPerBlock() * uint64_t(numBlocks); }
};

// The layout holding `tokens` tokens (rounded up to whole blocks).
KvLayout kvLayoutForTokens(const ModelConfig& config, int tokens, int blockSize, DType type);

// A sequence's share of the cache: its block table and length in tokens.
struct SequenceKv {
    std::vector<int32_t> blocks;  // logical block -> physical block
    int length = 0;               // tokens stored

    // Pool slot (block * blockSize + offset) of position pos.
    int32_t slot(int pos, int blockSize) const { return blocks[pos / blockSize] * blockSize + pos % blockSize; }
};

class KvCache {
public:
    // Errors on an invalid layout or when the memory cannot be allocated.
    static Result<std::unique_ptr<KvCache>> create(const KvLayout& layout);

    const KvLayout& layout() const { return m_layout; }
    cpu::PagedKvView view(int layer) const;
    void* keys(int layer);    // [numBlocks][nKvHeads][blockSize][headDim]
    void* values(int layer);  // [numBlocks][nKvHeads][blockSize][headDim]

    // Grows seq's block table to hold `length` tokens (length itself is
    // not changed). On "KV cache full" the table is left as it was.
    Result<void> reserve(SequenceKv& seq, int length);
    // Returns all of seq's blocks to the free list and empties it.
    void release(SequenceKv& seq);
    int freeBlocks() const { return int(m_free.size()); }

private:
    explicit KvCache(const KvLayout& layout) : m_layout(layout) {}

    KvLayout m_layout;
    size_t m_poolBytes = 0;                // bytes of one K (or V) pool of one layer
    std::unique_ptr<uint8_t[]> m_storage;  // [nLayers][2][numBlocks][nKvHeads][blockSize][headDim]
    std::vector<int32_t> m_free;           // free physical blocks (stack)
};

}  // namespace pagoda

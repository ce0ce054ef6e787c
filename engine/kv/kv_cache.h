#pragma once
// The KV cache: per layer, K and V pools of fixed-size blocks
// [numBlocks][nKvHeads][blockSize][headDim] (the memory, in host memory or
// a backend's, engine/backend/ops.h KvStorage), and the block manager that
// decides which sequence's tokens live in which block (the bookkeeping,
// engine/cache/block_manager.h).

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/cache/block_manager.h"
#include "engine/core/result.h"
#include "kernels/cpu/attention.h"
#include "kernels/dtype.h"

namespace pagoda {

struct ModelConfig;
struct ForwardBatch;
class KvStorage;
class Ops;

struct KvLayout {
    int nLayers = 0;
    int nKvHeads = 0;
    int headDim = 0;
    int blockSize = 16;
    int numBlocks = 0;
    DType type = DType::F16;  // F16, F32 or Q8_0 (checkKvType)

    // One block of one layer's K (or V) pool.
    uint64_t poolBytesPerBlock() const { return uint64_t(nKvHeads) * blockSize * rowBytes(type, size_t(headDim)); }
    uint64_t bytesPerBlock() const { return 2ull * uint64_t(nLayers) * poolBytesPerBlock(); }  // K and V of every layer
    uint64_t bytes() const { return bytesPerBlock() * uint64_t(numBlocks); }
};

// The KV types: F16, F32, and Q8_0 (blocks of 32 int8 with an fp16 scale,
// llama.cpp's --cache-type-k/v q8_0; 1.06 bytes an element), which needs a
// head dim that is a multiple of 32. An error names what is wrong.
Result<void> checkKvType(DType type, int headDim);

// The layout holding `tokens` tokens (rounded up to whole blocks).
KvLayout kvLayoutForTokens(const ModelConfig& config, int tokens, int blockSize, DType type);

// The pools of `layout` in host memory (the CPU backend's).
Result<std::unique_ptr<KvStorage>> createHostKvStorage(const KvLayout& layout);

class KvCache {
public:
    // Allocates the pools of `layout` where `ops` keeps them (null: host
    // memory) and a block manager over them (manager.numBlocks and
    // manager.blockSize are taken from the layout). Errors on an invalid
    // layout or config, or when the memory cannot be allocated.
    static Result<std::unique_ptr<KvCache>> create(const KvLayout& layout, BlockManagerConfig manager,
                                                   Ops* ops = nullptr);
    ~KvCache();

    const KvLayout& layout() const { return m_layout; }
    BlockManager& blocks() { return m_blocks; }
    const BlockManager& blocks() const { return m_blocks; }

    // --- used by the forward pass ---
    KvStorage& storage() { return *m_storage; }
    cpu::PagedKvView view(int layer) const;
    // Host pools only (view(layer).k and .v, writable).
    void* keys(int layer);    // [numBlocks][nKvHeads][blockSize][headDim]
    void* values(int layer);  // [numBlocks][nKvHeads][blockSize][headDim]

    // --- used by whoever builds batches (generator, scheduler) ---

    // Appends `tokens` of sequence seq to the batch as one chunk: takes
    // their slots from the block manager and points the chunk at seq's block
    // table. NoSpace leaves batch and manager unchanged.
    Result<Alloc> addChunk(ForwardBatch& batch, SeqId seq, std::span<const int32_t> tokens, bool allLogits);
    // Applies the block copies a fork returned (every layer, K and V).
    Result<void> copyBlocks(std::span<const BlockCopy> copies);

private:
    KvCache(const KvLayout& layout, BlockManager blocks, std::unique_ptr<KvStorage> storage);

    KvLayout m_layout;
    BlockManager m_blocks;
    std::unique_ptr<KvStorage> m_storage;
};

}  // namespace pagoda

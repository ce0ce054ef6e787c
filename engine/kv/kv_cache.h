#pragma once
// The KV cache: per layer, K and V pools of fixed-size blocks
// [numBlocks][nKvHeads][blockSize][headDim] (the memory, in host memory or
// a backend's, engine/backend/ops.h KvStorage), and the block manager that
// decides which sequence's tokens live in which block (the bookkeeping,
// engine/cache/block_manager.h).

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
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
    // Local layers with pools of their own (Gemma's; iSWA in llama.cpp):
    // the layers `local` makes local hold numLocalBlocks blocks each, which
    // a second block manager hands out within local.window, since no token
    // of theirs looks further back. globalEvery 0: every layer holds
    // numBlocks.
    cpu::LocalGlobalPattern local;
    int numLocalBlocks = 0;

    bool isLocal(int layer) const { return local.globalEvery > 0 && cpu::layerWindow(local, layer) > 0; }
    int localLayers() const;
    int layerBlocks(int layer) const { return isLocal(layer) ? numLocalBlocks : numBlocks; }
    // One block of one layer's K (or V) pool.
    uint64_t poolBytesPerBlock() const { return uint64_t(nKvHeads) * blockSize * rowBytes(type, size_t(headDim)); }
    // K and V of every layer holding numBlocks (all of them without local pools).
    uint64_t bytesPerBlock() const { return 2ull * uint64_t(nLayers - localLayers()) * poolBytesPerBlock(); }
    // K and V of every local layer with a pool of its own.
    uint64_t localBytesPerBlock() const { return 2ull * uint64_t(localLayers()) * poolBytesPerBlock(); }
    uint64_t localBytes() const { return localBytesPerBlock() * uint64_t(numLocalBlocks); }
    uint64_t bytes() const { return bytesPerBlock() * uint64_t(numBlocks) + localBytes(); }
};

// The KV types: F16, F32, and Q8_0 (blocks of 32 int8 with an fp16 scale,
// llama.cpp's --cache-type-k/v q8_0; 1.06 bytes an element), which needs a
// head dim that is a multiple of 32. An error names what is wrong.
Result<void> checkKvType(DType type, int headDim);

// The layout holding `tokens` tokens (rounded up to whole blocks).
KvLayout kvLayoutForTokens(const ModelConfig& config, int tokens, int blockSize, DType type);

// Whether `model`'s local layers can have pools of their own under a
// sliding window of `window` positions (0: none): it has local and global
// layers, and the window is none or wider than the local one (else every
// layer has it already).
bool localLayerPoolsFit(const ModelConfig& model, int window);
// `layout` with pools of their own for `model`'s local layers, of blocks for
// `sequences` running sequences that take up to `stepTokens` tokens a step
// together: each holds at most a window's blocks and one more, and its
// part of a step's chunk beyond that (docs/KV_CACHE.md).
KvLayout withLocalLayerPools(KvLayout layout, const ModelConfig& model, int sequences, int stepTokens);

// The pools of `layout` in host memory (the CPU backend's).
Result<std::unique_ptr<KvStorage>> createHostKvStorage(const KvLayout& layout);

class KvCache {
public:
    // Allocates the pools of `layout` where `ops` keeps them (null: host
    // memory) and a block manager over them (manager.numBlocks and
    // manager.blockSize are taken from the layout). With local-layer pools
    // (KvLayout::local) a second manager, of `manager`'s settings with
    // layout.numLocalBlocks and the local window, holds the local layers'
    // blocks. Errors on an invalid layout or config, or when the memory
    // cannot be allocated.
    static Result<std::unique_ptr<KvCache>> create(const KvLayout& layout, BlockManagerConfig manager,
                                                   Ops* ops = nullptr);
    ~KvCache();

    const KvLayout& layout() const { return m_layout; }
    // The blocks of every layer, or of the global layers with local pools.
    BlockManager& blocks() { return m_blocks; }
    const BlockManager& blocks() const { return m_blocks; }
    // The local layers' blocks; null without local pools.
    const BlockManager* localBlocks() const { return m_local ? &*m_local : nullptr; }
    // Bytes of the blocks sequences hold now, in every pool.
    uint64_t bytesHeld() const;

    // --- used by whoever runs sequences (scheduler, generator): the block
    // manager's calls, made in every manager, a sequence known by the main
    // manager's id. Prefix hits are those all managers have. ---
    Result<Admission> admit(std::span<const int32_t> prompt);
    Result<bool> canAdmit(std::span<const int32_t> prompt) const;
    Result<bool> canAppend(SeqId seq, int nTokens) const;
    Result<void> release(SeqId seq);
    Result<void> preempt(SeqId seq);

    // --- used by tests ---

    // Every manager's invariants (BlockManager::validate), and each
    // sequence in both managers with the same length.
    Result<void> validate() const;

    // --- used by the forward pass ---
    KvStorage& storage() { return *m_storage; }
    cpu::PagedKvView view(int layer) const;
    // Host pools only (view(layer).k and .v, writable).
    void* keys(int layer);    // [numBlocks][nKvHeads][blockSize][headDim]
    void* values(int layer);  // [numBlocks][nKvHeads][blockSize][headDim]

    // --- used by whoever builds batches (generator, scheduler) ---

    // Appends `tokens` of sequence seq to the batch as one chunk: takes
    // their slots from the block managers and points the chunk at seq's
    // block tables. NoSpace leaves batch and managers unchanged.
    Result<Alloc> addChunk(ForwardBatch& batch, SeqId seq, std::span<const int32_t> tokens, bool allLogits);
    // Applies the block copies a fork returned (every layer, K and V).
    Result<void> copyBlocks(std::span<const BlockCopy> copies);

private:
    KvCache(const KvLayout& layout, BlockManager blocks, std::optional<BlockManager> local,
            std::unique_ptr<KvStorage> storage);

    Result<int> commonHitBlocks(std::span<const int32_t> prompt) const;
    Result<SeqId> localSeq(SeqId seq) const;
    Result<void> releaseBoth(SeqId seq, bool preempted);

    KvLayout m_layout;
    BlockManager m_blocks;
    std::optional<BlockManager> m_local;
    std::unordered_map<SeqId, SeqId> m_localSeqs;  // main manager's id -> local manager's
    std::unique_ptr<KvStorage> m_storage;
};

}  // namespace pagoda

#include "engine/kv/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "engine/backend/ops.h"
#include "engine/core/huge_page_memory.h"
#include "engine/model/model_config.h"
#include "engine/transformer/transformer.h"

namespace pagoda {

Result<void> checkKvType(DType type, int headDim) {
    if (type != DType::F16 && type != DType::F32 && type != DType::Q8_0) {
        return fail("KV cache type {} is not supported (f16, f32 or q8_0)", dtypeName(type));
    }
    if (type == DType::Q8_0 && headDim % kQK8_0 != 0) {
        return fail("KV cache type q8_0 needs a head dim that is a multiple of {} (the model's is {})", kQK8_0,
                    headDim);
    }
    return {};
}

int KvLayout::localLayers() const {
    int n = 0;
    for (int l = 0; l < nLayers; ++l) n += isLocal(l);
    return n;
}

KvLayout kvLayoutForTokens(const ModelConfig& config, int tokens, int blockSize, DType type) {
    KvLayout layout;
    layout.nLayers = config.nLayers;
    layout.nKvHeads = config.nKvHeads;
    layout.headDim = config.headDim;
    layout.blockSize = blockSize;
    layout.numBlocks = (tokens + blockSize - 1) / blockSize;
    layout.type = type;
    return layout;
}

bool localLayerPoolsFit(const ModelConfig& model, int window) {
    return model.globalEvery > 1 && model.nLayers >= model.globalEvery && model.localWindow > 0 &&
           (window == 0 || window > model.localWindow);
}

KvLayout withLocalLayerPools(KvLayout layout, const ModelConfig& model, int sequences, int stepTokens) {
    const auto blocks = [&](int tokens) { return (tokens + layout.blockSize - 1) / layout.blockSize; };
    layout.local = {model.localWindow, model.globalEvery};
    layout.numLocalBlocks = sequences * (blocks(model.localWindow) + 2) + blocks(stepTokens);
    return layout;
}

namespace {

// [nLayers][K, V][layerBlocks(layer)][nKvHeads][blockSize][headDim], in
// huge pages: a new pool's first writes fault once per 2 MiB (measured in
// docs/PERFORMANCE.md), and each layer's K and V become resident 2 MiB at
// a time as their blocks are first used.
class HostKvStorage final : public KvStorage {
public:
    HostKvStorage(const KvLayout& layout, HugePageMemory data) : m_layout(layout), m_data(std::move(data)) {
        size_t at = 0;
        for (int l = 0; l < layout.nLayers; ++l) {
            m_layerAt.push_back(at);
            at += 2 * poolBytes(l);
        }
    }

    cpu::PagedKvView view(int layer) const override {
        const uint8_t* base = m_data.data() + m_layerAt[size_t(layer)];
        return cpu::PagedKvView{m_layout.type,           base,
                                base + poolBytes(layer), m_layout.nKvHeads,
                                m_layout.blockSize,      m_layout.headDim};
    }

    Result<void> copyBlocks(std::span<const BlockCopy> copies) override {
        if (m_layout.localLayers() > 0) return fail("block copies in a KV cache with local-layer pools");
        const size_t blockBytes = m_layout.poolBytesPerBlock();
        for (int layer = 0; layer < m_layout.nLayers; ++layer) {
            for (int pool = 0; pool < 2; ++pool) {
                uint8_t* base = m_data.data() + m_layerAt[size_t(layer)] + size_t(pool) * poolBytes(layer);
                for (const BlockCopy& c : copies) {
                    std::memcpy(base + size_t(c.dst) * blockBytes, base + size_t(c.src) * blockBytes, blockBytes);
                }
            }
        }
        return {};
    }

private:
    size_t poolBytes(int layer) const { return m_layout.poolBytesPerBlock() * size_t(m_layout.layerBlocks(layer)); }

    KvLayout m_layout;
    std::vector<size_t> m_layerAt;  // [nLayers] offset of the layer's K pool (its V pool follows)
    HugePageMemory m_data;
};

Result<void> checkLayout(const KvLayout& layout) {
    PAGODA_RETURN_IF_ERROR(checkKvType(layout.type, layout.headDim));
    if (layout.nLayers < 1 || layout.nKvHeads < 1 || layout.headDim < 1 || layout.numBlocks < 1) {
        return fail("KV layout with {} layers, {} KV heads, head dim {}, {} blocks", layout.nLayers, layout.nKvHeads,
                    layout.headDim, layout.numBlocks);
    }
    const int local = layout.localLayers();
    if (local > 0 && (local == layout.nLayers || layout.local.window < 1 || layout.numLocalBlocks < 1)) {
        return fail("KV layout with {} of {} layers local (window {}) in pools of {} blocks", local, layout.nLayers,
                    layout.local.window, layout.numLocalBlocks);
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<KvStorage>> createHostKvStorage(const KvLayout& layout) {
    PAGODA_RETURN_IF_ERROR(checkLayout(layout));
    const uint64_t total = layout.bytes();
    Result<HugePageMemory> data = HugePageMemory::allocate(total);
    if (!data) return fail("cannot allocate {} bytes for the KV cache: {}", total, data.error().message);
    return std::make_unique<HostKvStorage>(layout, std::move(*data));
}

KvCache::KvCache(const KvLayout& layout, BlockManager blocks, std::optional<BlockManager> local,
                 std::unique_ptr<KvStorage> storage)
    : m_layout(layout), m_blocks(std::move(blocks)), m_local(std::move(local)), m_storage(std::move(storage)) {}

KvCache::~KvCache() = default;

Result<std::unique_ptr<KvCache>> KvCache::create(const KvLayout& layout, BlockManagerConfig manager, Ops* ops) {
    PAGODA_RETURN_IF_ERROR(checkLayout(layout));
    manager.numBlocks = layout.numBlocks;
    manager.blockSize = layout.blockSize;
    PAGODA_ASSIGN_OR_RETURN(BlockManager blocks, BlockManager::create(manager));
    std::optional<BlockManager> local;
    if (layout.localLayers() > 0) {
        if (manager.allocation != KvAllocation::Paged) return fail("local-layer KV pools need paged allocation");
        manager.numBlocks = layout.numLocalBlocks;
        const int window = manager.slidingWindow;
        manager.slidingWindow = window > 0 ? std::min(window, layout.local.window) : layout.local.window;
        PAGODA_ASSIGN_OR_RETURN(local, BlockManager::create(manager));
    }
    PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<KvStorage> storage,
                            ops != nullptr ? ops->createKvStorage(layout) : createHostKvStorage(layout));
    return std::unique_ptr<KvCache>(new KvCache(layout, std::move(blocks), std::move(local), std::move(storage)));
}

cpu::PagedKvView KvCache::view(int layer) const { return m_storage->view(layer); }

void* KvCache::keys(int layer) { return const_cast<void*>(m_storage->view(layer).k); }

void* KvCache::values(int layer) { return const_cast<void*>(m_storage->view(layer).v); }

uint64_t KvCache::bytesHeld() const {
    const uint64_t bytes = uint64_t(m_blocks.stats().blocksUsed) * m_layout.bytesPerBlock();
    return m_local ? bytes + uint64_t(m_local->stats().blocksUsed) * m_layout.localBytesPerBlock() : bytes;
}

Result<int> KvCache::commonHitBlocks(std::span<const int32_t> prompt) const {
    // A manager with a window may take fewer hits under a lower cap (its
    // window then reaches other blocks): each caps the other until they agree.
    int hits = kAnyHits;
    for (;;) {
        PAGODA_ASSIGN_OR_RETURN(const int main, m_blocks.prefixHitBlocks(prompt, hits));
        PAGODA_ASSIGN_OR_RETURN(const int local, m_local->prefixHitBlocks(prompt, main));
        if (local == main) return local;
        hits = local;
    }
}

Result<SeqId> KvCache::localSeq(SeqId seq) const {
    auto it = m_localSeqs.find(seq);
    if (it == m_localSeqs.end()) return fail("sequence {} has no local-layer blocks", seq);
    return it->second;
}

Result<Admission> KvCache::admit(std::span<const int32_t> prompt) {
    if (!m_local) return m_blocks.admit(prompt);
    PAGODA_ASSIGN_OR_RETURN(const int hits, commonHitBlocks(prompt));
    PAGODA_ASSIGN_OR_RETURN(const Admission admission, m_blocks.admit(prompt, hits));
    auto local = m_local->admit(prompt, hits);
    if (!local || local->hitBlocks != admission.hitBlocks) {
        (void)m_blocks.release(admission.seq);
        if (!local) return std::unexpected(local.error());
        (void)m_local->release(local->seq);
        return fail("prefix hits of {} and {} blocks in the global and local layers", admission.hitBlocks,
                    local->hitBlocks);
    }
    m_localSeqs.emplace(admission.seq, local->seq);
    return admission;
}

Result<bool> KvCache::canAdmit(std::span<const int32_t> prompt) const {
    if (!m_local) return m_blocks.canAdmit(prompt);
    PAGODA_ASSIGN_OR_RETURN(const int hits, commonHitBlocks(prompt));
    PAGODA_ASSIGN_OR_RETURN(const bool main, m_blocks.canAdmit(prompt, hits));
    if (!main) return false;
    return m_local->canAdmit(prompt, hits);
}

Result<bool> KvCache::canAppend(SeqId seq, int nTokens) const {
    PAGODA_ASSIGN_OR_RETURN(const bool main, m_blocks.canAppend(seq, nTokens));
    if (!m_local || !main) return main;
    PAGODA_ASSIGN_OR_RETURN(const SeqId local, localSeq(seq));
    return m_local->canAppend(local, nTokens);
}

Result<void> KvCache::releaseBoth(SeqId seq, bool preempted) {
    PAGODA_RETURN_IF_ERROR(preempted ? m_blocks.preempt(seq) : m_blocks.release(seq));
    if (!m_local) return {};
    PAGODA_ASSIGN_OR_RETURN(const SeqId local, localSeq(seq));
    m_localSeqs.erase(seq);
    return preempted ? m_local->preempt(local) : m_local->release(local);
}

Result<void> KvCache::release(SeqId seq) { return releaseBoth(seq, false); }

Result<void> KvCache::preempt(SeqId seq) { return releaseBoth(seq, true); }

Result<void> KvCache::validate() const {
    PAGODA_RETURN_IF_ERROR(m_blocks.validate());
    if (!m_local) return {};
    if (auto local = m_local->validate(); !local) return std::unexpected(withContext("local layers", local.error()));
    if (m_blocks.stats().sequences != m_local->stats().sequences ||
        m_localSeqs.size() != size_t(m_blocks.stats().sequences)) {
        return fail("{} sequences in the global layers, {} in the local ones, {} paired",
                    m_blocks.stats().sequences, m_local->stats().sequences, m_localSeqs.size());
    }
    for (const auto& [seq, local] : m_localSeqs) {
        PAGODA_ASSIGN_OR_RETURN(const int length, m_blocks.length(seq));
        PAGODA_ASSIGN_OR_RETURN(const int localLength, m_local->length(local));
        if (length != localLength) {
            return fail("sequence {}: {} tokens in the global layers, {} in the local ones", seq, length, localLength);
        }
    }
    return {};
}

Result<Alloc> KvCache::addChunk(ForwardBatch& batch, SeqId seq, std::span<const int32_t> tokens, bool allLogits) {
    PAGODA_ASSIGN_OR_RETURN(const int start, m_blocks.length(seq));
    SequenceChunk chunk{{}, {}, start, int(tokens.size()), allLogits};
    if (m_local) {
        // Both managers append or neither does.
        PAGODA_ASSIGN_OR_RETURN(const bool fits, canAppend(seq, int(tokens.size())));
        if (!fits) return Alloc::NoSpace;
        PAGODA_ASSIGN_OR_RETURN(const SeqId local, localSeq(seq));
        PAGODA_ASSIGN_OR_RETURN(const Alloc status, m_local->appendSlots(local, tokens, batch.localSlots));
        if (status != Alloc::Ok) return fail("local-layer KV refused {} tokens it reported to fit", tokens.size());
        PAGODA_ASSIGN_OR_RETURN(chunk.localBlockTable, m_local->blockTable(local));
    }
    const size_t slotsBefore = batch.slots.size();
    PAGODA_ASSIGN_OR_RETURN(const Alloc status, m_blocks.appendSlots(seq, tokens, batch.slots));
    if (status == Alloc::NoSpace) {
        batch.slots.resize(slotsBefore);
        return status;
    }
    PAGODA_ASSIGN_OR_RETURN(chunk.blockTable, m_blocks.blockTable(seq));
    batch.tokens.insert(batch.tokens.end(), tokens.begin(), tokens.end());
    batch.chunks.push_back(chunk);
    return Alloc::Ok;
}

Result<void> KvCache::copyBlocks(std::span<const BlockCopy> copies) { return m_storage->copyBlocks(copies); }

}  // namespace pagoda

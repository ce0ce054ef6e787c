#include "engine/kv/kv_cache.h"

#include <cstring>
#include <new>

#include "engine/model/model_config.h"
#include "engine/transformer/transformer.h"

namespace pagoda {

uint64_t KvLayout::bytesPerBlock() const {
    return 2ull * uint64_t(nLayers) * elementsPerBlock() * dtypeInfo(type).blockBytes;
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

Result<std::unique_ptr<KvCache>> KvCache::create(const KvLayout& layout, BlockManagerConfig manager) {
    if (layout.type != DType::F16 && layout.type != DType::F32) {
        return fail("KV cache type {} is not supported (f16 or f32)", dtypeName(layout.type));
    }
    if (layout.nLayers < 1 || layout.nKvHeads < 1 || layout.headDim < 1) {
        return fail("KV layout with {} layers, {} KV heads, head dim {}", layout.nLayers, layout.nKvHeads, layout.headDim);
    }
    manager.numBlocks = layout.numBlocks;
    manager.blockSize = layout.blockSize;
    PAGODA_ASSIGN_OR_RETURN(BlockManager blocks, BlockManager::create(manager));
    std::unique_ptr<KvCache> cache(new KvCache(layout, std::move(blocks)));
    cache->m_poolBytes = layout.elementsPerBlock() * dtypeInfo(layout.type).blockBytes * size_t(layout.numBlocks);
    const uint64_t total = layout.bytes();
    cache->m_storage.reset(new (std::nothrow) uint8_t[total]);
    if (!cache->m_storage) return fail("cannot allocate {} bytes for the KV cache", total);
    return cache;
}

cpu::PagedKvView KvCache::view(int layer) const {
    const uint8_t* base = m_storage.get() + 2 * m_poolBytes * size_t(layer);
    return cpu::PagedKvView{m_layout.type, base, base + m_poolBytes, m_layout.nKvHeads, m_layout.blockSize,
                            m_layout.headDim};
}

void* KvCache::keys(int layer) { return m_storage.get() + 2 * m_poolBytes * size_t(layer); }

void* KvCache::values(int layer) { return m_storage.get() + 2 * m_poolBytes * size_t(layer) + m_poolBytes; }

Result<Alloc> KvCache::addChunk(ForwardBatch& batch, SeqId seq, std::span<const int32_t> tokens, bool allLogits) {
    PAGODA_ASSIGN_OR_RETURN(const int start, m_blocks.length(seq));
    const size_t slotsBefore = batch.slots.size();
    PAGODA_ASSIGN_OR_RETURN(const Alloc status, m_blocks.appendSlots(seq, tokens, batch.slots));
    if (status == Alloc::NoSpace) {
        batch.slots.resize(slotsBefore);
        return status;
    }
    PAGODA_ASSIGN_OR_RETURN(std::span<const int32_t> table, m_blocks.blockTable(seq));
    batch.tokens.insert(batch.tokens.end(), tokens.begin(), tokens.end());
    batch.chunks.push_back({table, start, int(tokens.size()), allLogits});
    return Alloc::Ok;
}

void KvCache::copyBlocks(std::span<const BlockCopy> copies) {
    const size_t blockBytes = m_layout.elementsPerBlock() * dtypeInfo(m_layout.type).blockBytes;
    for (int layer = 0; layer < m_layout.nLayers; ++layer) {
        for (uint8_t* pool : {static_cast<uint8_t*>(keys(layer)), static_cast<uint8_t*>(values(layer))}) {
            for (const BlockCopy& c : copies) {
                std::memcpy(pool + size_t(c.dst) * blockBytes, pool + size_t(c.src) * blockBytes, blockBytes);
            }
        }
    }
}

}  // namespace pagoda

#include "engine/kv/kv_cache.h"

#include <new>

#include "engine/model/model_config.h"

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

Result<std::unique_ptr<KvCache>> KvCache::create(const KvLayout& layout) {
    if (layout.type != DType::F16 && layout.type != DType::F32) {
        return fail("KV cache type {} is not supported (f16 or f32)", dtypeName(layout.type));
    }
    if (layout.blockSize < 1 || layout.blockSize > 256) return fail("KV block size {} outside [1, 256]", layout.blockSize);
    if (layout.numBlocks < 1) return fail("KV cache of {} blocks: at least one block is needed", layout.numBlocks);
    if (layout.nLayers < 1 || layout.nKvHeads < 1 || layout.headDim < 1) {
        return fail("KV layout with {} layers, {} KV heads, head dim {}", layout.nLayers, layout.nKvHeads, layout.headDim);
    }
    std::unique_ptr<KvCache> cache(new KvCache(layout));
    cache->m_poolBytes = layout.elementsPerBlock() * dtypeInfo(layout.type).blockBytes * size_t(layout.numBlocks);
    const uint64_t total = layout.bytes();
    cache->m_storage.reset(new (std::nothrow) uint8_t[total]);
    if (!cache->m_storage) return fail("cannot allocate {} bytes for the KV cache", total);
    cache->m_free.reserve(layout.numBlocks);
    for (int b = layout.numBlocks - 1; b >= 0; --b) cache->m_free.push_back(b);
    return cache;
}

cpu::PagedKvView KvCache::view(int layer) const {
    const uint8_t* base = m_storage.get() + 2 * m_poolBytes * size_t(layer);
    return cpu::PagedKvView{m_layout.type, base, base + m_poolBytes, m_layout.nKvHeads, m_layout.blockSize,
                            m_layout.headDim};
}

void* KvCache::keys(int layer) { return m_storage.get() + 2 * m_poolBytes * size_t(layer); }

void* KvCache::values(int layer) { return m_storage.get() + 2 * m_poolBytes * size_t(layer) + m_poolBytes; }

Result<void> KvCache::reserve(SequenceKv& seq, int length) {
    const size_t needed = size_t((length + m_layout.blockSize - 1) / m_layout.blockSize);
    if (needed <= seq.blocks.size()) return {};
    const size_t extra = needed - seq.blocks.size();
    if (extra > m_free.size()) {
        return fail("KV cache full: {} more blocks needed for {} tokens, {} free of {}", extra, length, m_free.size(),
                    m_layout.numBlocks);
    }
    for (size_t i = 0; i < extra; ++i) {
        seq.blocks.push_back(m_free.back());
        m_free.pop_back();
    }
    return {};
}

void KvCache::release(SequenceKv& seq) {
    m_free.insert(m_free.end(), seq.blocks.rbegin(), seq.blocks.rend());
    seq.blocks.clear();
    seq.length = 0;
}

}  // namespace pagoda

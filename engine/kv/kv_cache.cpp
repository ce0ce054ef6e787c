#include "engine/kv/kv_cache.h"

#include <cstring>
#include <new>

#include "engine/backend/ops.h"
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

namespace {

// [nLayers][K, V][numBlocks][nKvHeads][blockSize][headDim]
class HostKvStorage final : public KvStorage {
public:
    HostKvStorage(const KvLayout& layout, std::unique_ptr<uint8_t[]> data)
        : m_layout(layout),
          m_poolBytes(layout.poolBytesPerBlock() * size_t(layout.numBlocks)),
          m_data(std::move(data)) {}

    cpu::PagedKvView view(int layer) const override {
        const uint8_t* base = m_data.get() + 2 * m_poolBytes * size_t(layer);
        return cpu::PagedKvView{m_layout.type,      base,
                                base + m_poolBytes, m_layout.nKvHeads,
                                m_layout.blockSize, m_layout.headDim};
    }

    Result<void> copyBlocks(std::span<const BlockCopy> copies) override {
        const size_t blockBytes = m_poolBytes / size_t(m_layout.numBlocks);
        for (int layer = 0; layer < m_layout.nLayers; ++layer) {
            for (int pool = 0; pool < 2; ++pool) {
                uint8_t* base = m_data.get() + (2 * size_t(layer) + size_t(pool)) * m_poolBytes;
                for (const BlockCopy& c : copies) {
                    std::memcpy(base + size_t(c.dst) * blockBytes, base + size_t(c.src) * blockBytes, blockBytes);
                }
            }
        }
        return {};
    }

private:
    KvLayout m_layout;
    size_t m_poolBytes;  // one K (or V) pool of one layer
    std::unique_ptr<uint8_t[]> m_data;
};

Result<void> checkLayout(const KvLayout& layout) {
    PAGODA_RETURN_IF_ERROR(checkKvType(layout.type, layout.headDim));
    if (layout.nLayers < 1 || layout.nKvHeads < 1 || layout.headDim < 1 || layout.numBlocks < 1) {
        return fail("KV layout with {} layers, {} KV heads, head dim {}, {} blocks", layout.nLayers, layout.nKvHeads,
                    layout.headDim, layout.numBlocks);
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<KvStorage>> createHostKvStorage(const KvLayout& layout) {
    PAGODA_RETURN_IF_ERROR(checkLayout(layout));
    const uint64_t total = layout.bytes();
    std::unique_ptr<uint8_t[]> data(new (std::nothrow) uint8_t[total]);
    if (!data) return fail("cannot allocate {} bytes for the KV cache", total);
    return std::make_unique<HostKvStorage>(layout, std::move(data));
}

KvCache::KvCache(const KvLayout& layout, BlockManager blocks, std::unique_ptr<KvStorage> storage)
    : m_layout(layout), m_blocks(std::move(blocks)), m_storage(std::move(storage)) {}

KvCache::~KvCache() = default;

Result<std::unique_ptr<KvCache>> KvCache::create(const KvLayout& layout, BlockManagerConfig manager, Ops* ops) {
    PAGODA_RETURN_IF_ERROR(checkLayout(layout));
    manager.numBlocks = layout.numBlocks;
    manager.blockSize = layout.blockSize;
    PAGODA_ASSIGN_OR_RETURN(BlockManager blocks, BlockManager::create(manager));
    PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<KvStorage> storage,
                            ops != nullptr ? ops->createKvStorage(layout) : createHostKvStorage(layout));
    return std::unique_ptr<KvCache>(new KvCache(layout, std::move(blocks), std::move(storage)));
}

cpu::PagedKvView KvCache::view(int layer) const { return m_storage->view(layer); }

void* KvCache::keys(int layer) { return const_cast<void*>(m_storage->view(layer).k); }

void* KvCache::values(int layer) { return const_cast<void*>(m_storage->view(layer).v); }

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

Result<void> KvCache::copyBlocks(std::span<const BlockCopy> copies) { return m_storage->copyBlocks(copies); }

}  // namespace pagoda

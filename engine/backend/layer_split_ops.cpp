#include "engine/backend/layer_split_ops.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "engine/kv/kv_cache.h"

namespace pagoda {
namespace {

// Layers [0, secondFrom) in `first`, the others in `second` at their index
// less secondFrom.
class SplitKvStorage final : public KvStorage {
public:
    SplitKvStorage(std::unique_ptr<KvStorage> first, std::unique_ptr<KvStorage> second, int secondFrom)
        : m_first(std::move(first)), m_second(std::move(second)), m_secondFrom(secondFrom) {}

    Part part(int layer) override {
        return layer < m_secondFrom ? m_first->part(layer) : m_second->part(layer - m_secondFrom);
    }
    cpu::PagedKvView view(int layer) const override {
        return layer < m_secondFrom ? m_first->view(layer) : m_second->view(layer - m_secondFrom);
    }
    Result<void> copyBlocks(std::span<const BlockCopy> copies) override {
        PAGODA_RETURN_IF_ERROR(m_first->copyBlocks(copies));
        return m_second->copyBlocks(copies);
    }

private:
    std::unique_ptr<KvStorage> m_first;
    std::unique_ptr<KvStorage> m_second;
    int m_secondFrom;
};

}  // namespace

std::string describeLayers(int first, int end) {
    return end - first == 1 ? fmt::format("layer {}", first) : fmt::format("layers {}-{}", first, end - 1);
}

LayerSplitOps::LayerSplitOps(std::unique_ptr<Ops> first, std::unique_ptr<Ops> second, int secondFrom, int nLayers)
    : m_first(std::move(first)), m_second(std::move(second)), m_secondFrom(secondFrom), m_nLayers(nLayers) {}

Result<std::unique_ptr<LayerSplitOps>> LayerSplitOps::create(std::unique_ptr<Ops> first, std::unique_ptr<Ops> second,
                                                             int secondFrom, int nLayers) {
    if (first == nullptr || second == nullptr) return fail("a layer split needs two backends");
    if (secondFrom <= 0 || secondFrom >= nLayers) {
        return fail("a layer split of {} layers from layer {} (each backend needs at least one)", nLayers,
                    secondFrom);
    }
    return std::unique_ptr<LayerSplitOps>(
        new LayerSplitOps(std::move(first), std::move(second), secondFrom, nLayers));
}

std::string LayerSplitOps::description() const {
    return fmt::format("{}; {} of {} ({} on {})", m_second->description(), describeLayers(m_secondFrom, m_nLayers),
                       m_nLayers, describeLayers(0, m_secondFrom), m_first->description());
}

Result<std::unique_ptr<ActivationMemory>> LayerSplitOps::allocateActivations(size_t floats) {
    return m_second->allocateActivations(floats);
}

Result<std::unique_ptr<KvStorage>> LayerSplitOps::createKvStorage(const KvLayout& layout) {
    if (layout.nLayers != m_nLayers) {
        return fail("a KV layout of {} layers for a model of {} split by layer", layout.nLayers, m_nLayers);
    }
    if (layout.localLayers() > 0) return fail("a model split by layer has no pools of their own for local layers");
    KvLayout first = layout;
    first.nLayers = m_secondFrom;
    KvLayout second = layout;
    second.nLayers = m_nLayers - m_secondFrom;
    PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<KvStorage> firstPools, m_first->createKvStorage(first));
    PAGODA_ASSIGN_OR_RETURN(std::unique_ptr<KvStorage> secondPools, m_second->createKvStorage(second));
    return std::make_unique<SplitKvStorage>(std::move(firstPools), std::move(secondPools), m_secondFrom);
}

Result<uint64_t> LayerSplitOps::kvMemoryAvailable() {
    PAGODA_ASSIGN_OR_RETURN(const uint64_t first, m_first->kvMemoryAvailable());
    PAGODA_ASSIGN_OR_RETURN(const uint64_t second, m_second->kvMemoryAvailable());
    return wholePoolBytes(first, second, m_secondFrom, m_nLayers);
}

uint64_t LayerSplitOps::wholePoolBytes(uint64_t first, uint64_t second, int secondFrom, int nLayers) {
    const auto whole = [&](uint64_t share, int layers) { return share / uint64_t(layers) * uint64_t(nLayers); };
    return std::min(whole(first, secondFrom), whole(second, nLayers - secondFrom));
}

Result<std::span<const float>> LayerSplitOps::readBack(const float* data, size_t n, std::vector<float>& staging) {
    return m_second->readBack(data, n, staging);
}

void LayerSplitOps::setInt8Matmul(Int8Matmul mode) {
    m_first->setInt8Matmul(mode);
    m_second->setInt8Matmul(mode);
}

void LayerSplitOps::setDependentLaunch(bool on) {
    m_first->setDependentLaunch(on);
    m_second->setDependentLaunch(on);
}

uint64_t LayerSplitOps::scratchBytes() const { return m_first->scratchBytes() + m_second->scratchBytes(); }

Result<void> LayerSplitOps::status() {
    Result<void> first = m_first->status();
    Result<void> second = m_second->status();
    std::optional<Error> own = std::exchange(m_error, std::nullopt);
    if (!first) return first;
    if (!second) return second;
    if (own) return std::unexpected(std::move(*own));
    return {};
}

void LayerSplitOps::finish() {
    m_first->finish();
    m_second->finish();
}

Result<void> LayerSplitOps::runDecodeStep(const ForwardBatch&, const DecodeStepShape&,
                                          const std::function<void(int nRows)>&) {
    refuse();
    return status();
}

void LayerSplitOps::refuse() {
    if (!m_error) {
        m_error = Error{"an operation called on a layer split itself (the Transformer runs each layer on its "
                        "backend's operations)"};
    }
}

}  // namespace pagoda

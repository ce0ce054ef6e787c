#pragma once
// A model on two backends by layer, for a GPU too small for the whole model
// (llama.cpp's -ngl, "GPU offload" elsewhere): the token embedding and the
// first layers on the CPU, the rest of the layers, the final norm and the
// output on the GPU. The Transformer runs each layer on its backend's
// operations (layerSplit()) and passes the residual stream ([tokens][dim]
// floats) from the first to the second once per forward pass. The memory
// side (KV pools, the budget, device memory) answers for both; the
// operations themselves are the two backends', and calling them on this
// object is an error.

#include <memory>
#include <optional>
#include <string>

#include "engine/backend/ops.h"

namespace pagoda {

// "layer 7" or "layers 0-6": layers [first, end).
std::string describeLayers(int first, int end);

class LayerSplitOps final : public Ops {
public:
    // Layers [0, secondFrom) of nLayers on `first`, the rest on `second`;
    // 0 < secondFrom < nLayers.
    static Result<std::unique_ptr<LayerSplitOps>> create(std::unique_ptr<Ops> first, std::unique_ptr<Ops> second,
                                                         int secondFrom, int nLayers);

    Ops& first() { return *m_first; }
    Ops& second() { return *m_second; }
    int secondFrom() const { return m_secondFrom; }
    int nLayers() const { return m_nLayers; }

    // "cuda: …; layers 12-31 of 32 (layers 0-11 on cpu: 2 threads, avx2)"
    std::string description() const override;
    std::optional<LayerSplit> layerSplit() override { return LayerSplit{m_first.get(), m_second.get(), m_secondFrom}; }

    // The second's (where the output is; the Transformer allocates each
    // backend's activations through that backend).
    Result<std::unique_ptr<ActivationMemory>> allocateActivations(size_t floats) override;
    // The pools of layers [0, secondFrom) on the first, the others on the
    // second (KvStorage::part finds a layer's).
    Result<std::unique_ptr<KvStorage>> createKvStorage(const KvLayout& layout) override;
    // The whole pool's bytes such that each backend's share (its layers')
    // fits what it has available: wholePoolBytes of the two.
    Result<uint64_t> kvMemoryAvailable() override;
    // The most bytes of a KV pool of nLayers layers whose first secondFrom
    // layers' share fits in `first` bytes and the others' in `second`.
    static uint64_t wholePoolBytes(uint64_t first, uint64_t second, int secondFrom, int nLayers);
    Result<std::span<const float>> readBack(const float* data, size_t n, std::vector<float>& staging) override;
    void setInt8Matmul(Int8Matmul mode) override;
    void setDependentLaunch(bool on) override;
    uint64_t scratchBytes() const override;
    std::optional<DeviceMemoryStats> deviceMemory() override { return m_second->deviceMemory(); }
    // The first failure of either backend, else of a call made here.
    Result<void> status() override;
    void finish() override;

    // Not run here (each layer runs on its backend's): each records an error.
    void embed(const cpu::WeightMatrix&, std::span<const int32_t>, float*) override { refuse(); }
    void rmsNorm(const float*, const float*, float*, int64_t, int64_t, float) override { refuse(); }
    void matmul(const cpu::WeightMatrix&, const float*, float*, int64_t) override { refuse(); }
    void rope(float*, int, int, const int32_t*, const cpu::RopeParams&) override { refuse(); }
    void storeKv(KvStorage&, int, const float*, const float*, const int32_t*, int) override { refuse(); }
    void attention(KvStorage&, int, const cpu::AttentionParams&) override { refuse(); }
    void swiglu(const float*, const float*, float*, int64_t) override { refuse(); }
    void geglu(const float*, const float*, float*, int64_t) override { refuse(); }
    void scale(float*, float, int64_t) override { refuse(); }
    void softcap(float*, float, int64_t) override { refuse(); }
    void add(float*, const float*, int64_t) override { refuse(); }
    void addBias(float*, const float*, int64_t, int64_t) override { refuse(); }
    void copy(float*, const float*, int64_t) override { refuse(); }
    void copyFromHost(float*, std::span<const float>) override { refuse(); }
    Result<void> runDecodeStep(const ForwardBatch&, const DecodeStepShape&,
                               const std::function<void(int nRows)>&) override;

private:
    LayerSplitOps(std::unique_ptr<Ops> first, std::unique_ptr<Ops> second, int secondFrom, int nLayers);
    void refuse();

    std::unique_ptr<Ops> m_first;
    std::unique_ptr<Ops> m_second;
    int m_secondFrom;
    int m_nLayers;
    std::optional<Error> m_error;
};

}  // namespace pagoda

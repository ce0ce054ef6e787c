#pragma once
// The CUDA backend behind Ops: each call forwarded to the module's
// DeviceBackend, with activations in device memory. Weights and norm
// vectors are named by their host addresses (the memory-mapped GGUF and the
// Model's vectors), so uploadModel() must run first; the KV pools live on
// the device (createKvStorage), the KvCache keeping only the bookkeeping.
// The backend holds one KV pool: creating a KvCache replaces the pool of
// the one before (whose contents are then gone).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "engine/backend/cuda_loader.h"
#include "engine/backend/ops.h"
#include "engine/cache/block_manager.h"
#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"

namespace pagoda {

class Model;
struct ForwardBatch;

// A model's weights on a device, uploaded by one CudaOps, for others on
// the same device to run on (CudaOps::useWeights) without a copy of their
// own. Holds the module loaded for as long as the weights live.
struct SharedCudaWeights {
    std::shared_ptr<CudaModule> module;  // declared first: let go of last
    std::shared_ptr<const cuda::DeviceWeights> weights;
    const Model* model = nullptr;  // whose host addresses name them
    int firstLayer = 0;            // the layers they hold are [firstLayer, nLayers) (CudaOps::uploadModel)
};

class CudaOps final : public Ops {
public:
    static Result<std::unique_ptr<CudaOps>> create(const std::shared_ptr<CudaModule>& module, int deviceIndex = 0);

    std::string description() const override;

    Result<std::unique_ptr<ActivationMemory>> allocateActivations(size_t floats) override;
    Result<std::unique_ptr<KvStorage>> createKvStorage(const KvLayout& layout) override;
    Result<uint64_t> kvMemoryAvailable() override;
    // What kvMemoryAvailable gives with freeBytes of the device free (90%
    // less 1 GiB of workspace), and the free memory it takes to give
    // kvBytes: kvMemoryBeside(deviceBytesFor(kvBytes)) >= kvBytes.
    static uint64_t kvMemoryBeside(uint64_t freeBytes);
    static uint64_t deviceBytesFor(uint64_t kvBytes);
    Result<std::span<const float>> readBack(const float* data, size_t n, std::vector<float>& staging) override;
    void setInt8Matmul(Int8Matmul mode) override;  // the int8 decode with Int8Matmul::On only
    void setDependentLaunch(bool on) override;
    uint64_t scratchBytes() const override { return 0; }
    Result<void> status() override;
    void finish() override;
    std::optional<DeviceMemoryStats> deviceMemory() override;

    void embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) override;
    void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) override;
    void addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                    float eps) override;
    void matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) override;
    void matmuls(std::span<const MatmulOutput> outputs, const float* x, int64_t nTokens) override;
    void rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) override;
    void ropeStoreKv(KvStorage& kv, int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                     int nKvHeads, const int32_t* positions, const int32_t* slots,
                     const cpu::RopeParams& params) override;
    void storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots,
                 int nTokens) override;
    void attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) override;
    void swiglu(const float* gate, const float* up, float* out, int64_t n) override;
    void geglu(const float* gate, const float* up, float* out, int64_t n) override;
    void scale(float* x, float s, int64_t n) override;
    void softcap(float* x, float cap, int64_t n) override;
    void matmulSwiglu(const cpu::WeightMatrix& gate, const cpu::WeightMatrix& up, const float* x, float* out,
                      float* upScratch, int64_t nTokens) override;
    void add(float* y, const float* x, int64_t n) override;
    void addBias(float* y, const float* bias, int64_t nRows, int64_t n) override;

    void copy(float* dst, const float* src, int64_t n) override;
    void copyFromHost(float* dst, std::span<const float> src) override;

    // The decode step as the CUDA graph of its batch-size bucket
    // (cuda::defaultGraphBuckets(shape.maxBatch)): the step's metadata is
    // staged, then layers(bucket) issues the step's operations on `bucket`
    // rows, the extra rows padding. The first step of a bucket records
    // them; later steps replay the recording and skip `layers`. The shape
    // fixes the attention launch shape.
    Result<void> runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                               const std::function<void(int nRows)>& layers) override;

    // --- beyond Ops ---

    // Uploads every weight matrix and norm/bias vector once; fails with a
    // clear out-of-memory error, before allocating, when they do not fit.
    // With firstLayer > 0 (a model split by layer, LayerSplitOps) only
    // those of layers [firstLayer, nLayers), the final norm and the output:
    // the CPU embeds the tokens and runs the layers before.
    Result<void> uploadModel(const Model& model, const cuda::UploadProgressFn& progress = {}, int firstLayer = 0);
    // Bytes uploadModel(model, {}, firstLayer) puts on the device (each
    // tensor aligned as the module places it).
    static uint64_t weightBytes(const Model& model, int firstLayer = 0);
    // The first layer whose weights this backend runs on (0 before upload).
    int firstLayer() const { return m_shared ? m_shared->firstLayer : 0; }
    // What uploadModel() put on the device, to share; null before. Set
    // once, on the thread that uploads, before the backend is handed on.
    std::shared_ptr<const SharedCudaWeights> sharedWeights() const { return m_shared; }
    // Runs on weights another CudaOps uploaded for `model` to this device,
    // instead of uploadModel(). An error, with nothing changed, for another
    // model's weights or another device's.
    Result<void> useWeights(const Model& model, std::shared_ptr<const SharedCudaWeights> weights);
    Result<void> copyToDevice(const void* host, void* device, size_t bytes);
    Result<void> synchronize();
    cuda::MemoryAccounting memory() { return m_backend->memory(); }
    // Device-to-device copy bandwidth (GB/s read + written): the roofline.
    Result<double> measureCopyBandwidthSync(size_t bytes, int repetitions);
    // Dense f16 GEMM TFLOP/s (n x n x n, cuBLAS): the prefill roofline.
    Result<double> measureGemmTflopsSync(int n, int repetitions);

private:
    explicit CudaOps(DeviceBackendPtr backend) : m_backend(std::move(backend)) {}

    bool failed() const { return m_error.has_value(); }
    void record(const cuda::Status& status);

    DeviceBackendPtr m_backend;
    std::shared_ptr<const SharedCudaWeights> m_shared;  // the weights m_backend runs on
    bool m_weightsOfAnother = false;                    // m_shared came through useWeights
    std::optional<Error> m_error;
    // Whether `storage` is the backend's current pool.
    Result<void> checkPool(const KvStorage& storage) const;
    friend class CudaKvStorage;

    std::optional<DecodeStepShape> m_graphShape;  // what the recorded decode graphs were recorded for
    uint64_t m_kvGeneration = 0;  // counts createKvStorage calls: the current pool's
    int m_kvBlockSize = 0;        // of the current pool
    bool m_int8Matmul = false;    // setInt8Matmul (the backend drops its graphs when it changes)
    bool m_dependentLaunch = false;  // setDependentLaunch (likewise)
};

}  // namespace pagoda

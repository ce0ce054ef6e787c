#pragma once
// The DeviceBackend of the CUDA module: kernels/cuda behind the interface
// the engine sees, over weights it uploaded or shares with another backend,
// with the host metadata of each operation (token ids, positions, slots,
// attention descriptors) staged to the device through a pinned mirror and
// uploaded only when it changed (the positions of one step are uploaded
// once, not once per layer).

#include <cuda_runtime_api.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/decode_graphs.h"
#include "kernels/cuda/device_backend.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/matvec.h"

namespace pagoda::cuda {

// int32 metadata mirrored host (pinned) -> device, re-uploaded only when
// its content changes. The device copy moves when it grows.
class StagedInts {
public:
    // The device copy of data[0, n), uploaded on `stream` if it differs
    // from the last staged content.
    StatusOr<int32_t*> stage(MemoryPool& pool, cudaStream_t stream, const int32_t* data, size_t n);

private:
    struct PinnedDeleter {
        void operator()(int32_t* p) const { cudaFreeHost(p); }
    };
    std::unique_ptr<int32_t, PinnedDeleter> m_host;  // [m_capacity]
    DeviceBuffer m_device;                           // [m_capacity]
    EventPtr m_uploaded;                             // the last upload out of m_host
    size_t m_capacity = 0;
    size_t m_size = 0;
};

// Weights one backend uploaded (DeviceWeights), in memory of their own
// pool, so that they outlive that backend's context when another backend
// holds them. Each backend's context pool counts them as held outside it.
class UploadedWeights final : public DeviceWeights {
public:
    explicit UploadedWeights(int deviceIndex) : m_deviceIndex(deviceIndex) {}
    // Frees the memory on its device, whichever is current.
    ~UploadedWeights() override;
    UploadedWeights(const UploadedWeights&) = delete;
    UploadedWeights& operator=(const UploadedWeights&) = delete;

    int deviceIndex() const override { return m_deviceIndex; }
    uint64_t bytes() const override { return buffer.bytes(); }

    CudaRawAllocator raw;
    MemoryPool pool{raw};
    DeviceBuffer buffer;
    std::unordered_map<const void*, DeviceWeight> matrices;  // by host address
    std::unordered_map<const void*, const float*> vectors;   // by host address
    int64_t maxCols = 0;                                      // widest matrix

private:
    int m_deviceIndex;
};

class CudaBackend final : public DeviceBackend {
public:
    static StatusOr<std::unique_ptr<CudaBackend>> create(int deviceIndex);
    ~CudaBackend() override;

    const DeviceInfo& device() const override { return m_context->device(); }
    std::shared_ptr<const DeviceWeights> weights() const override { return m_weights; }

    Status uploadWeights(const std::vector<HostMatrix>& matrices, const std::vector<HostVector>& vectors,
                         const UploadProgressFn& progress) override;
    Status useWeights(std::shared_ptr<const DeviceWeights> weights) override;
    Status createKvPool(const KvPoolShape& shape) override;
    StatusOr<DeviceBuffer> allocate(size_t bytes, MemoryUse use) override;
    Status copyToDevice(const void* host, void* device, size_t bytes) override;
    Status copyToHostSync(const void* device, void* host, size_t bytes) override;
    Status copyOnDevice(void* dst, const void* src, size_t bytes) override;
    Status copyKvBlocks(const int32_t* pairs, int n) override;
    Status synchronize() override;
    MemoryAccounting memory() override;
    StatusOr<double> measureCopyBandwidthSync(size_t bytes, int repetitions) override;
    StatusOr<double> measureGemmTflopsSync(int n, int repetitions) override;

    void setInt8Matmul(bool on) override;
    void setDependentLaunch(bool on) override;

    Status embed(const void* table, const int32_t* ids, int n, float* out) override;
    Status rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) override;
    Status addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                      float eps) override;
    Status matmul(const void* weight, const float* x, float* y, int64_t nTokens) override;
    Status matmuls(const void* const* weights, float* const* ys, int count, const float* x,
                   int64_t nTokens) override;
    Status rope(float* x, int nTokens, int nHeads, const int32_t* positions, const RopeShape& shape) override;
    Status storeKv(int layer, const float* k, const float* v, const int32_t* slots, int nTokens) override;
    Status ropeStoreKv(int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                       const int32_t* positions, const int32_t* slots, const RopeShape& shape) override;
    Status attention(const AttentionCall& call) override;
    Status swiglu(const float* gate, const float* up, float* out, int64_t n) override;
    Status geglu(const float* gate, const float* up, float* out, int64_t n) override;
    Status scale(float* x, float s, int64_t n) override;
    Status softcap(float* x, float cap, int64_t n) override;
    Status matmulSwiglu(const void* gate, const void* up, const float* x, float* out, float* upScratch,
                        int64_t nTokens) override;
    Status add(float* y, const float* x, int64_t n) override;
    Status addBias(float* y, const float* bias, int64_t nRows, int64_t n) override;

    StatusOr<GraphMode> beginDecodeGraph(const DecodeStep& step) override;
    Status endDecodeGraph(bool abandon) override;
    void dropDecodeGraphs() override;

private:
    explicit CudaBackend(std::unique_ptr<CudaContext> context) : m_context(std::move(context)) {}

    cudaStream_t stream() const { return m_context->stream(); }
    // The stream for the decode-step launchers: with dependent launch
    // where it is on and the device has it.
    LaunchStream launchStream() const;
    StatusOr<DeviceWeight> findMatrix(const void* key, const char* op) const;
    StatusOr<const float*> findVector(const float* key, const char* op) const;
    // `shape` with its frequency factors' host address (an uploaded vector)
    // replaced by the device's.
    StatusOr<RopeShape> deviceRopeShape(const RopeShape& shape, const char* op) const;
    DeviceKvView kvView(int layer) const;
    // A buffer of at least `bytes`, grown (not while a graph is captured).
    Status ensure(DeviceBuffer& buffer, size_t bytes, MemoryUse use);
    // A block-quantized product with many tokens: f16 panels of the weights
    // through cuBLAS.
    Status dequantizedMatmul(const DeviceWeight& w, const float* x, float* y, int64_t nTokens);
    // An error unless `layer` is one of the KV pool's.
    Status checkKvLayer(int layer, const char* op) const;
    // What every attention plan is made for: this device's SMs, shared
    // memory and decode occupancy for `nHeads` query heads (over as many KV
    // heads with `expandKv`).
    StatusOr<AttentionPlanOptions> attentionOptions(int nHeads, bool expandKv);
    // Whether matmul() runs this product through matvec.
    bool usesMatvec(const DeviceWeight& w, int64_t nTokens) const;
    // Whether it runs through the int8 matvec (int8 decode on, usesMatvec,
    // an int8 kernel for the type).
    bool usesInt8(const DeviceWeight& w, int64_t nTokens) const;
    // x [nTokens][cols] rounded to int8 in m_int8Activations.
    StatusOr<Int8Activations> int8Activations(const float* x, int64_t cols, int64_t nTokens);
    // matmul() of an uploaded matrix.
    Status product(const DeviceWeight& w, const float* x, float* y, int64_t nTokens);
    // The device metadata of an operation: the staged decode step's, or
    // `host` uploaded through `staged`.
    StatusOr<const int32_t*> metadata(StagedInts& staged, const int32_t* host, int n, const int32_t* graphCopy,
                                      const char* op);

    // Declared first: destroyed last, after every buffer went back to its pool.
    std::unique_ptr<CudaContext> m_context;

    std::shared_ptr<const UploadedWeights> m_weights;  // uploaded, or another backend's

    KvPoolShape m_kvShape;
    DeviceBuffer m_kv;         // [nLayers][2][numBlocks][nKvHeads][blockSize] rows, f16 or Q8_0
    size_t m_poolBytes = 0;    // one layer's K (or V) pool

    DeviceBuffer m_gemmScratch;
    DeviceBuffer m_dequantized;  // an f16 panel of a quantized matrix, then its [nTokens][panel rows] product
    size_t m_dequantizedRefused = 0;  // the smallest size the pool refused for it (0: none)
    DeviceBuffer m_attentionWorkspace;
    bool m_int8Matmul = false;
    bool m_dependentLaunch = false;
    DeviceBuffer m_int8Activations;  // quantizeActivations of a decode product's input
    std::unordered_map<int, int> m_decodeCtasPerSm;  // by group (query heads per KV head) of the pool's head dim
    StagedInts m_ids;
    StagedInts m_positions;
    StagedInts m_slots;
    StagedInts m_attentionMetadata;

    // The decode step staged for a CUDA graph.
    DecodeGraphs m_graphs;
    bool m_staged = false;
    int m_stagedBucket = 0;
    int m_stagedHeads = 0;
    int m_stagedWindow = 0;
    AttentionPlan m_stagedPlan;
    StagedInts m_graphIds;
    StagedInts m_graphPositions;
    StagedInts m_graphSlots;
    StagedInts m_graphAttention;
    const int32_t* m_graphIdsData = nullptr;
    const int32_t* m_graphPositionsData = nullptr;
    const int32_t* m_graphSlotsData = nullptr;
    const int32_t* m_graphAttentionData = nullptr;
};

}  // namespace pagoda::cuda

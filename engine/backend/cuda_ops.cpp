#include "engine/backend/cuda_ops.h"

#include <set>
#include <vector>

#include <fmt/format.h>

#include "engine/model/model.h"
#include "engine/transformer/transformer.h"
#include "kernels/cuda/graph_buckets.h"
#include "kernels/cuda/weight_upload.h"

namespace pagoda {
namespace {

// The automatic KV pool takes 90% of the device's free memory (TensorRT-LLM's
// default free_gpu_memory_fraction) less this, for the workspace allocated
// after it (cuBLAS, attention scratch, decode graphs); the engine takes the
// activations off itself.
constexpr uint64_t kKvWorkspaceHeadroom = 1ull << 30;

Result<void> toResult(const cuda::Status& status) {
    if (status.ok()) return {};
    return fail("{}", status.message());
}

cuda::HostMatrix hostMatrix(const cpu::WeightMatrix& w) { return {w.type, w.data, w.rows, w.cols}; }

cuda::RopeShape ropeShape(const cpu::RopeParams& params) {
    return {params.headDim, params.ropeDim, params.base, params.style == cpu::RopeStyle::NeoX, params.freqFactors,
            params.scaling};
}

// Blocks covering positions [0, startPos + nQueries): the block-table
// length attention reads (kernels/cpu/attention.h).
int tableLength(int startPos, int nQueries, int blockSize) { return (startPos + nQueries + blockSize - 1) / blockSize; }

class DeviceActivations final : public ActivationMemory {
public:
    explicit DeviceActivations(cuda::DeviceBuffer buffer) : m_buffer(std::move(buffer)) {}
    float* data() override { return m_buffer.as<float>(); }

private:
    cuda::DeviceBuffer m_buffer;
};

}  // namespace

// The device pool of one KvCache: the backend's pool while `generation` is
// its newest.
class CudaKvStorage final : public KvStorage {
public:
    CudaKvStorage(CudaOps& ops, const KvLayout& layout, uint64_t generation)
        : m_ops(ops), m_layout(layout), m_generation(generation) {}

    cpu::PagedKvView view(int) const override {
        return {m_layout.type, nullptr, nullptr, m_layout.nKvHeads, m_layout.blockSize, m_layout.headDim};
    }
    Result<void> copyBlocks(std::span<const BlockCopy> copies) override {
        PAGODA_RETURN_IF_ERROR(m_ops.checkPool(*this));
        std::vector<int32_t> pairs;
        pairs.reserve(2 * copies.size());
        for (const BlockCopy& c : copies) pairs.insert(pairs.end(), {c.src, c.dst});
        return toResult(m_ops.m_backend->copyKvBlocks(pairs.data(), int(copies.size())));
    }
    uint64_t generation() const { return m_generation; }

private:
    CudaOps& m_ops;
    KvLayout m_layout;
    uint64_t m_generation;
};

Result<std::unique_ptr<CudaOps>> CudaOps::create(const std::shared_ptr<CudaModule>& module, int deviceIndex) {
    PAGODA_ASSIGN_OR_RETURN(DeviceBackendPtr backend, module->createBackend(deviceIndex));
    return std::unique_ptr<CudaOps>(new CudaOps(std::move(backend)));
}

std::string CudaOps::description() const {
    const cuda::DeviceInfo& d = m_backend->device();
    const char* dependent = !m_dependentLaunch              ? ""
                            : cuda::hasDependentLaunch(d) ? ", dependent launch"
                                                          : ", no dependent launch before sm_90";
    return fmt::format("cuda: {}, sm_{}{}, {} SMs{}{}{}", d.name, d.ccMajor, d.ccMinor, d.smCount,
                       m_int8Matmul ? ", int8 matmul" : "", dependent,
                       m_weightsOfAnother ? ", weights shared with another engine" : "");
}

void CudaOps::setInt8Matmul(Int8Matmul mode) {
    m_int8Matmul = mode == Int8Matmul::On;
    m_backend->setInt8Matmul(m_int8Matmul);
}

void CudaOps::setDependentLaunch(bool on) {
    m_dependentLaunch = on;
    m_backend->setDependentLaunch(on);
}

Result<std::unique_ptr<ActivationMemory>> CudaOps::allocateActivations(size_t floats) {
    auto buffer = m_backend->allocate(floats * sizeof(float), cuda::MemoryUse::Activations);
    if (!buffer.ok()) return fail("{}", buffer.status().message());
    return std::make_unique<DeviceActivations>(std::move(buffer.value()));
}

Result<std::unique_ptr<KvStorage>> CudaOps::createKvStorage(const KvLayout& layout) {
    if (layout.type != DType::F16 && layout.type != DType::Q8_0) {
        return fail("the CUDA backend keeps the KV cache in f16 or q8_0 (the layout asks for {})",
                    dtypeName(layout.type));
    }
    if (layout.localLayers() > 0) return fail("the CUDA backend has no pools of their own for local layers");
    ++m_kvGeneration;
    m_kvBlockSize = layout.blockSize;
    PAGODA_RETURN_IF_ERROR(toResult(m_backend->createKvPool({layout.nLayers, layout.nKvHeads, layout.headDim,
                                                             layout.blockSize, layout.numBlocks,
                                                             layout.type == DType::Q8_0})));
    return std::make_unique<CudaKvStorage>(*this, layout, m_kvGeneration);
}

Result<uint64_t> CudaOps::kvMemoryAvailable() {
    const cuda::MemoryAccounting m = m_backend->memory();
    // The device's free memory, what our pool holds unused, and the current
    // KV pool, which createKvPool frees before it allocates the next.
    return kvMemoryBeside(m.deviceFree + m.cached + m.inUseBy(cuda::MemoryUse::KvCache));
}

uint64_t CudaOps::kvMemoryBeside(uint64_t freeBytes) {
    const uint64_t share = freeBytes / 10 * 9;
    return share > kKvWorkspaceHeadroom ? share - kKvWorkspaceHeadroom : 0;
}

uint64_t CudaOps::deviceBytesFor(uint64_t kvBytes) {
    return (kvBytes + kKvWorkspaceHeadroom + 8) / 9 * 10;
}

Result<void> CudaOps::checkPool(const KvStorage& storage) const {
    const auto* device = dynamic_cast<const CudaKvStorage*>(&storage);
    if (device == nullptr) return fail("the KV cache is not in device memory (create it with the CUDA backend)");
    if (device->generation() != m_kvGeneration) {
        return fail("the KV cache's device pool was replaced by a newer cache's (the backend holds one pool)");
    }
    return {};
}

std::optional<DeviceMemoryStats> CudaOps::deviceMemory() {
    const cuda::MemoryAccounting m = m_backend->memory();
    DeviceMemoryStats stats;
    stats.weightsBytes = m.inUseBy(cuda::MemoryUse::Weights);
    stats.kvCacheBytes = m.inUseBy(cuda::MemoryUse::KvCache);
    stats.activationsBytes = m.inUseBy(cuda::MemoryUse::Activations);
    stats.workspaceBytes = m.inUseBy(cuda::MemoryUse::Workspace);
    stats.reservedBytes = m.reserved;
    stats.freeBytes = m.deviceFree;
    stats.totalBytes = m.deviceTotal;
    return stats;
}

Result<std::span<const float>> CudaOps::readBack(const float* data, size_t n, std::vector<float>& staging) {
    PAGODA_RETURN_IF_ERROR(status());
    staging.resize(n);
    PAGODA_RETURN_IF_ERROR(toResult(m_backend->copyToHostSync(data, staging.data(), n * sizeof(float))));
    return std::span<const float>(staging);
}

void CudaOps::record(const cuda::Status& status) {
    if (!status.ok() && !m_error) m_error = Error{status.message()};
}

Result<void> CudaOps::status() {
    if (!m_error) return {};
    Error error = std::move(*m_error);
    m_error.reset();
    return std::unexpected(std::move(error));
}

void CudaOps::finish() {
    if (failed()) return;
    record(m_backend->synchronize());
}

void CudaOps::embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) {
    if (failed()) return;
    record(m_backend->embed(table.data, ids.data(), int(ids.size()), out));
}

void CudaOps::rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) {
    if (failed()) return;
    record(m_backend->rmsNorm(x, weight, y, nRows, n, eps));
}

void CudaOps::addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                         float eps) {
    if (failed()) return;
    record(m_backend->addRmsNorm(x, delta, weight, y, nRows, n, eps));
}

void CudaOps::matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) {
    if (failed()) return;
    record(m_backend->matmul(w.data, x, y, nTokens));
}

void CudaOps::matmuls(std::span<const MatmulOutput> outputs, const float* x, int64_t nTokens) {
    if (failed()) return;
    std::vector<const void*> weights;
    std::vector<float*> ys;
    for (const MatmulOutput& out : outputs) {
        weights.push_back(out.w->data);
        ys.push_back(out.y);
    }
    record(m_backend->matmuls(weights.data(), ys.data(), int(outputs.size()), x, nTokens));
}

void CudaOps::rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) {
    if (failed()) return;
    record(m_backend->rope(x, nTokens, nHeads, positions, ropeShape(params)));
}

void CudaOps::storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots, int nTokens) {
    if (failed()) return;
    if (Result<void> pool = checkPool(kv); !pool) {
        m_error = pool.error();
        return;
    }
    record(m_backend->storeKv(layer, k, v, slots, nTokens));
}

// The pool's KV heads are the backend's; nKvHeads is the model's, the same.
void CudaOps::ropeStoreKv(KvStorage& kv, int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                          int /*nKvHeads*/, const int32_t* positions, const int32_t* slots,
                          const cpu::RopeParams& params) {
    if (failed()) return;
    if (Result<void> pool = checkPool(kv); !pool) {
        m_error = pool.error();
        return;
    }
    record(m_backend->ropeStoreKv(layer, q, k, v, nTokens, nHeads, positions, slots, ropeShape(params)));
}

void CudaOps::attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) {
    if (failed()) return;
    if (Result<void> pool = checkPool(kv); !pool) {
        m_error = pool.error();
        return;
    }
    std::vector<cuda::AttentionSequenceSpec> sequences;
    sequences.reserve(params.sequences.size());
    for (const cpu::AttentionSequence& s : params.sequences) {
        if (s.blockTable == nullptr) {
            m_error = Error{"attention: the CUDA backend reads paged KV only (a sequence has no block table)"};
            return;
        }
        sequences.push_back({s.queryOffset, s.nQueries, s.startPos, s.blockTable,
                             tableLength(s.startPos, s.nQueries, params.kv.blockSize)});
    }
    cuda::AttentionCall call;
    call.q = params.q;
    call.out = params.out;
    call.layer = layer;
    call.nHeads = params.nHeads;
    call.scale = params.scale;
    call.window = params.window;
    call.softcap = params.softcap;
    call.naive = params.algorithm == cpu::AttentionAlgorithm::Naive;
    call.expandKv = params.expandKv;
    call.sequences = sequences.data();
    call.nSequences = int(sequences.size());
    record(m_backend->attention(call));
}

void CudaOps::swiglu(const float* gate, const float* up, float* out, int64_t n) {
    if (failed()) return;
    record(m_backend->swiglu(gate, up, out, n));
}

void CudaOps::geglu(const float* gate, const float* up, float* out, int64_t n) {
    if (failed()) return;
    record(m_backend->geglu(gate, up, out, n));
}

void CudaOps::scale(float* x, float s, int64_t n) {
    if (failed()) return;
    record(m_backend->scale(x, s, n));
}

void CudaOps::softcap(float* x, float cap, int64_t n) {
    if (failed()) return;
    record(m_backend->softcap(x, cap, n));
}

void CudaOps::matmulSwiglu(const cpu::WeightMatrix& gate, const cpu::WeightMatrix& up, const float* x, float* out,
                           float* upScratch, int64_t nTokens) {
    if (failed()) return;
    record(m_backend->matmulSwiglu(gate.data, up.data, x, out, upScratch, nTokens));
}

void CudaOps::add(float* y, const float* x, int64_t n) {
    if (failed()) return;
    record(m_backend->add(y, x, n));
}

void CudaOps::addBias(float* y, const float* bias, int64_t nRows, int64_t n) {
    if (failed()) return;
    record(m_backend->addBias(y, bias, nRows, n));
}

void CudaOps::copy(float* dst, const float* src, int64_t n) {
    if (failed()) return;
    record(m_backend->copyOnDevice(dst, src, size_t(n) * sizeof(float)));
}

void CudaOps::copyFromHost(float* dst, std::span<const float> src) {
    if (failed()) return;
    record(m_backend->copyToDevice(src.data(), dst, src.size_bytes()));
}

namespace {

struct UploadLists {
    std::vector<cuda::HostMatrix> matrices;
    std::vector<cuda::HostVector> vectors;
};

// What the device holds of `model` to run layers [firstLayer, nLayers) and
// the output: the token embedding too when it runs them all.
UploadLists uploadLists(const Model& model, int firstLayer) {
    const ModelWeights& w = model.weights();
    UploadLists lists;
    if (firstLayer == 0) lists.matrices.push_back(hostMatrix(w.tokenEmbedding));
    lists.matrices.push_back(hostMatrix(w.output));
    auto addVector = [&](const std::vector<float>& v) {
        if (!v.empty()) lists.vectors.push_back({v.data(), int64_t(v.size())});
    };
    addVector(w.outputNorm);
    addVector(w.ropeFreqs);
    addVector(w.ropeFreqsLong);
    for (size_t l = size_t(firstLayer); l < w.layers.size(); ++l) {
        const LayerWeights& layer = w.layers[l];
        for (const cpu::WeightMatrix* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.gate, &layer.up,
                                           &layer.down}) {
            lists.matrices.push_back(hostMatrix(*m));
        }
        for (const std::vector<float>* v :
             {&layer.attnNorm, &layer.ffnNorm, &layer.bq, &layer.bk, &layer.bv, &layer.qNorm, &layer.kNorm,
              &layer.postAttnNorm, &layer.postFfnNorm}) {
            addVector(*v);
        }
    }
    return lists;
}

uint64_t aligned(uint64_t bytes) { return (bytes + cuda::kWeightAlignment - 1) / cuda::kWeightAlignment * cuda::kWeightAlignment; }

}  // namespace

uint64_t CudaOps::weightBytes(const Model& model, int firstLayer) {
    const UploadLists lists = uploadLists(model, firstLayer);
    std::set<const void*> seen;  // tied embeddings are uploaded once
    uint64_t total = 0;
    for (const cuda::HostMatrix& m : lists.matrices) {
        if (seen.insert(m.data).second) total += aligned(rowBytes(m.type, size_t(m.cols)) * uint64_t(m.rows));
    }
    for (const cuda::HostVector& v : lists.vectors) total += aligned(uint64_t(v.n) * sizeof(float));
    return total;
}

Result<void> CudaOps::uploadModel(const Model& model, const cuda::UploadProgressFn& progress, int firstLayer) {
    if (firstLayer < 0 || firstLayer >= model.config().nLayers) {
        return fail("uploadModel: layers from {} of a model of {}", firstLayer, model.config().nLayers);
    }
    const UploadLists lists = uploadLists(model, firstLayer);
    PAGODA_RETURN_IF_ERROR(toResult(m_backend->uploadWeights(lists.matrices, lists.vectors, progress)));
    m_shared = std::make_shared<SharedCudaWeights>(
        SharedCudaWeights{m_backend.get_deleter().module, m_backend->weights(), &model, firstLayer});
    return {};
}

Result<void> CudaOps::useWeights(const Model& model, std::shared_ptr<const SharedCudaWeights> weights) {
    if (weights == nullptr || weights->model != &model) return fail("the shared weights are another model's");
    PAGODA_RETURN_IF_ERROR(toResult(m_backend->useWeights(weights->weights)));
    m_shared = std::move(weights);
    m_weightsOfAnother = true;
    return {};
}

Result<void> CudaOps::copyToDevice(const void* host, void* device, size_t bytes) {
    return toResult(m_backend->copyToDevice(host, device, bytes));
}

Result<void> CudaOps::synchronize() { return toResult(m_backend->synchronize()); }

Result<double> CudaOps::measureCopyBandwidthSync(size_t bytes, int repetitions) {
    auto gbs = m_backend->measureCopyBandwidthSync(bytes, repetitions);
    if (!gbs.ok()) return fail("{}", gbs.status().message());
    return gbs.value();
}

Result<double> CudaOps::measureGemmTflopsSync(int n, int repetitions) {
    auto tflops = m_backend->measureGemmTflopsSync(n, repetitions);
    if (!tflops.ok()) return fail("{}", tflops.status().message());
    return tflops.value();
}

Result<void> CudaOps::runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                                    const std::function<void(int nRows)>& layers) {
    PAGODA_RETURN_IF_ERROR(status());
    if (m_kvBlockSize == 0) return fail("runDecodeStep: no device KV pool");
    if (m_graphShape != shape) {
        m_backend->dropDecodeGraphs();
        m_graphShape = shape;
    }
    const int n = int(batch.tokens.size());
    const int bucket = cuda::graphBucketFor(n, cuda::defaultGraphBuckets(shape.maxBatch));
    if (bucket < 0) return fail("runDecodeStep: a decode batch of {} tokens (graphs up to {})", n, shape.maxBatch);
    std::vector<int32_t> positions;
    std::vector<cuda::AttentionSequenceSpec> sequences;
    for (const SequenceChunk& chunk : batch.chunks) {
        if (chunk.nTokens != 1) return fail("runDecodeStep: a chunk of {} tokens in a decode step", chunk.nTokens);
        sequences.push_back({int(positions.size()), 1, chunk.startPos, chunk.blockTable.data(),
                             tableLength(chunk.startPos, 1, m_kvBlockSize)});
        positions.push_back(chunk.startPos);
    }
    if (int(positions.size()) != n || batch.slots.size() != batch.tokens.size()) {
        return fail("runDecodeStep: {} tokens, {} chunks, {} slots", n, positions.size(), batch.slots.size());
    }
    cuda::DecodeStep step;
    step.tokens = batch.tokens.data();
    step.positions = positions.data();
    step.slots = batch.slots.data();
    step.nTokens = n;
    step.bucket = bucket;
    step.nHeads = shape.nHeads;
    step.window = shape.window;
    step.maxContext = shape.maxContext;
    step.sequences = sequences.data();
    auto mode = m_backend->beginDecodeGraph(step);
    if (!mode.ok()) return fail("{}", mode.status().message());
    if (mode.value() == cuda::GraphMode::Capture) layers(bucket);
    const bool abandon = failed();
    PAGODA_RETURN_IF_ERROR(toResult(m_backend->endDecodeGraph(abandon)));
    return status();
}

}  // namespace pagoda

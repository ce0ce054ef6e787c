#include "kernels/cuda/module/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include <cublas_v2.h>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kv_store.h"
#include "kernels/cuda/matvec.h"
#include "kernels/cuda/quant_matmul.h"
#include "kernels/cuda/residual_add.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/scale.h"
#include "kernels/cuda/swiglu.h"
#include "kernels/cuda/weight_upload.h"

namespace pagoda::cuda {
namespace {

std::string addressName(const void* p) {
    char text[32];
    std::snprintf(text, sizeof text, "%p", p);
    return text;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Bytes copied per cudaMemcpyAsync while uploading weights (progress granularity).
constexpr uint64_t kUploadChunkBytes = 64ull << 20;
// Quantized products with at least this many tokens run on tensor cores
// (dequantizedMatmul: f16 panels through cuBLASLt); fewer go through the
// decode matvec, as they do in CUDA graph captures. Measured on an H200
// (pagoda-cuda-microbench, 4096 x 4096): at 8 tokens the panels took 28-31
// us, the tiled kernel that then read the blocks in place 150-154 us.
// The matvec that took that kernel's place is not measured yet. Estimated
// from its PTX (tools/ptx_loop_count.py): 25.6 instructions per Q4_K weight
// element in the 8-token loop, some 13 us for 4096 x 4096 at the H200's
// 3.4e13 lane-instructions/s, so it takes decode batches up to its token
// group of 8; the microbench's "matvec faster ... through N tokens" line
// is what settles it.
constexpr int64_t kDequantizedMinTokens = 9;
// F32/F16/BF16 products of up to this many tokens (decode) go through
// matvec: the weights read once, the activations as they are (no f16 copy,
// no cuBLAS call); cuBLASLt on tensor cores beyond. Where the two cross is
// not measured yet: pagoda-cuda-microbench's decode table compares them at
// 1, 2, 4 and 8 tokens.
constexpr int64_t kDenseMatvecMaxTokens = 8;
// The f16 copy is made in panels of at most this many bytes (a 128256 x 4096
// output matrix would take 1 GiB at once).
constexpr size_t kDequantizedPanelBytes = 256ull << 20;

}  // namespace

StatusOr<int32_t*> StagedInts::stage(MemoryPool& pool, cudaStream_t stream, const int32_t* data, size_t n) {
    if (n == 0) return m_device.as<int32_t>();
    if (n == m_size && std::memcmp(m_host.get(), data, n * sizeof(int32_t)) == 0) return m_device.as<int32_t>();
    if (!m_uploaded) {
        cudaEvent_t event = nullptr;
        PAGODA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
        m_uploaded.reset(event);
    }
    // The previous upload may still be reading the pinned mirror.
    PAGODA_CUDA_CHECK(cudaEventSynchronize(m_uploaded.get()));
    if (n > m_capacity) {
        const size_t capacity = std::max(n, 2 * m_capacity);
        int32_t* host = nullptr;
        PAGODA_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&host), capacity * sizeof(int32_t),
                                        cudaHostAllocDefault));
        m_host.reset(host);
        PAGODA_CUDA_ASSIGN_OR_RETURN(m_device, pool.allocate(capacity * sizeof(int32_t), MemoryUse::Workspace));
        m_capacity = capacity;
    }
    std::memcpy(m_host.get(), data, n * sizeof(int32_t));
    PAGODA_CUDA_CHECK(cudaMemcpyAsync(m_device.data(), m_host.get(), n * sizeof(int32_t), cudaMemcpyHostToDevice,
                                      stream));
    PAGODA_CUDA_CHECK(cudaEventRecord(m_uploaded.get(), stream));
    m_size = n;
    return m_device.as<int32_t>();
}

StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::create(int deviceIndex) {
    PAGODA_CUDA_ASSIGN_OR_RETURN(std::unique_ptr<CudaContext> context, CudaContext::create(deviceIndex));
    return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(context)));
}

CudaBackend::~CudaBackend() {
    m_context->makeCurrent();
    m_graphs.abortCapture(stream());
    cudaStreamSynchronize(stream());
}

UploadedWeights::~UploadedWeights() {
    // Freed on their device; the thread's current device is put back.
    int current = -1;
    const bool known = cudaGetDevice(&current) == cudaSuccess;
    if (!known || current != m_deviceIndex) cudaSetDevice(m_deviceIndex);
    buffer.reset();
    pool.trim();
    if (known && current != m_deviceIndex) cudaSetDevice(current);
}

StatusOr<DeviceWeight> CudaBackend::findMatrix(const void* key, const char* op) const {
    if (!m_weights) return Status::error(std::string(op) + ": no weights were uploaded");
    const auto found = m_weights->matrices.find(key);
    if (found == m_weights->matrices.end()) {
        return Status::error(std::string(op) + ": no uploaded matrix for host address " + addressName(key));
    }
    return found->second;
}

StatusOr<const float*> CudaBackend::findVector(const float* key, const char* op) const {
    if (!m_weights) return Status::error(std::string(op) + ": no weights were uploaded");
    const auto found = m_weights->vectors.find(key);
    if (found == m_weights->vectors.end()) {
        return Status::error(std::string(op) + ": no uploaded vector for host address " + addressName(key));
    }
    return found->second;
}

StatusOr<RopeShape> CudaBackend::deviceRopeShape(const RopeShape& shape, const char* op) const {
    RopeShape onDevice = shape;
    if (shape.freqFactors != nullptr) {
        PAGODA_CUDA_ASSIGN_OR_RETURN(onDevice.freqFactors, findVector(shape.freqFactors, op));
    }
    return onDevice;
}

DeviceKvView CudaBackend::kvView(int layer) const {
    const std::byte* base = m_kv.as<std::byte>() + 2 * m_poolBytes * size_t(layer);
    return DeviceKvView{base, base + m_poolBytes, m_kvShape.nKvHeads, m_kvShape.blockSize, m_kvShape.headDim,
                        m_kvShape.q8};
}

Status CudaBackend::ensure(DeviceBuffer& buffer, size_t bytes, MemoryUse use) {
    if (buffer.bytes() >= bytes) return {};
    if (m_graphs.capturing()) {
        return Status::error("a CUDA graph capture needs " + formatBytes(bytes) + " of " +
                             std::string(memoryUseName(use)) + ", " + formatBytes(buffer.bytes()) + " were reserved");
    }
    // Graphs recorded the old address, which goes back to the pool even
    // when the new allocation fails.
    m_graphs.clear();
    buffer.reset();
    PAGODA_CUDA_ASSIGN_OR_RETURN(buffer, m_context->memory().allocate(bytes, use));
    return {};
}

StatusOr<const int32_t*> CudaBackend::metadata(StagedInts& staged, const int32_t* host, int n,
                                               const int32_t* graphCopy, const char* op) {
    if (m_staged) {
        if (n != m_stagedBucket) {
            return Status::error(std::string(op) + ": " + std::to_string(n) + " tokens in a decode graph of bucket " +
                                 std::to_string(m_stagedBucket));
        }
        return graphCopy;
    }
    PAGODA_CUDA_ASSIGN_OR_RETURN(int32_t* device, staged.stage(m_context->memory(), stream(), host, size_t(n)));
    return static_cast<const int32_t*>(device);
}

Status CudaBackend::uploadWeights(const std::vector<HostMatrix>& matrices, const std::vector<HostVector>& vectors,
                                  const UploadProgressFn& progress) {
    m_context->makeCurrent();
    if (m_weights) return Status::error("the backend has weights already");
    struct Item {
        const void* host;
        uint64_t bytes;
    };
    std::vector<Item> items;
    std::vector<uint64_t> sizes;
    std::unordered_map<const void*, size_t> seen;
    for (const HostMatrix& m : matrices) {
        if (!isCudaWeightType(m.type)) {
            return Status::error("weight type " + std::string(dtypeName(m.type)) +
                                 " has no CUDA kernel (" + computeSupportedNames() + ")");
        }
        if (m.data == nullptr || m.rows < 1 || m.cols < 1) {
            return Status::error("weight matrix " + std::to_string(m.rows) + " x " + std::to_string(m.cols) +
                                 " at " + addressName(m.data));
        }
        if (!seen.emplace(m.data, items.size()).second) continue;
        items.push_back({m.data, rowBytes(m.type, size_t(m.cols)) * uint64_t(m.rows)});
    }
    for (const HostVector& v : vectors) {
        if (v.data == nullptr || v.n < 1) return Status::error("weight vector of " + std::to_string(v.n) + " floats");
        if (!seen.emplace(v.data, items.size()).second) continue;
        items.push_back({v.data, uint64_t(v.n) * sizeof(float)});
    }
    for (const Item& item : items) sizes.push_back(item.bytes);
    const WeightUploadPlan plan = planWeightUpload(sizes);

    uint64_t freeBytes = 0;
    uint64_t totalBytes = 0;
    CudaRawAllocator().memoryInfo(freeBytes, totalBytes);
    if (std::string error = weightsDoNotFit(plan.totalBytes, freeBytes, totalBytes, device().name); !error.empty()) {
        return Status::error(error);
    }
    auto weights = std::make_shared<UploadedWeights>(device().index);
    PAGODA_CUDA_ASSIGN_OR_RETURN(weights->buffer, weights->pool.allocate(plan.totalBytes, MemoryUse::Weights));

    std::byte* base = weights->buffer.as<std::byte>();
    uint64_t done = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const std::byte* host = static_cast<const std::byte*>(items[i].host);
        for (uint64_t offset = 0; offset < items[i].bytes; offset += kUploadChunkBytes) {
            const uint64_t chunk = std::min(kUploadChunkBytes, items[i].bytes - offset);
            // On our stream, not cudaMemcpy's legacy default stream: a copy from
            // pageable memory returns once its source is staged, before the
            // DMA completes, and our non-blocking stream would not wait for it
            // (CUDA runtime API, "API synchronization behavior").
            PAGODA_CUDA_CHECK(cudaMemcpyAsync(base + plan.offsets[i] + offset, host + offset, chunk,
                                              cudaMemcpyHostToDevice, stream()));
            done += chunk;
            if (progress) progress(done, plan.totalBytes);
        }
    }
    PAGODA_CUDA_RETURN_IF_ERROR(m_context->synchronize());
    for (const HostMatrix& m : matrices) {
        const auto at = seen.find(m.data);
        if (at == seen.end()) continue;
        weights->matrices[m.data] = DeviceWeight{m.type, base + plan.offsets[at->second], m.rows, m.cols};
        weights->maxCols = std::max(weights->maxCols, m.cols);
    }
    for (const HostVector& v : vectors) {
        const auto at = seen.find(v.data);
        if (at == seen.end()) continue;
        weights->vectors[v.data] = reinterpret_cast<const float*>(base + plan.offsets[at->second]);
    }
    m_weights = std::move(weights);
    m_context->memory().setHeldOutside(MemoryUse::Weights, m_weights->bytes());
    if (progress) progress(plan.totalBytes, plan.totalBytes);
    return {};
}

Status CudaBackend::useWeights(std::shared_ptr<const DeviceWeights> weights) {
    m_context->makeCurrent();
    if (m_weights) return Status::error("the backend has weights already");
    auto uploaded = std::dynamic_pointer_cast<const UploadedWeights>(weights);
    if (!uploaded) return Status::error("no weights to share, or weights from another CUDA module");
    if (uploaded->deviceIndex() != device().index) {
        return Status::error("the weights are on CUDA device " + std::to_string(uploaded->deviceIndex()) +
                             ", the backend on device " + std::to_string(device().index));
    }
    m_weights = std::move(uploaded);
    m_context->memory().setHeldOutside(MemoryUse::Weights, m_weights->bytes());
    return {};
}

Status CudaBackend::createKvPool(const KvPoolShape& shape) {
    m_context->makeCurrent();
    if (shape.nLayers < 1 || shape.nKvHeads < 1 || shape.headDim < 2 || shape.blockSize < 1 ||
        (shape.blockSize & (shape.blockSize - 1)) != 0 || shape.numBlocks < 1 ||
        (shape.q8 && shape.headDim % kKvQ8Block != 0)) {
        return Status::error("KV pool of " + std::to_string(shape.nLayers) + " layers, " +
                             std::to_string(shape.nKvHeads) + " KV heads, head dim " + std::to_string(shape.headDim) +
                             (shape.q8 ? " (q8_0 rows: a multiple of 32)" : "") + ", " +
                             std::to_string(shape.numBlocks) + " blocks of " + std::to_string(shape.blockSize) +
                             " (a power of two)");
    }
    m_graphs.clear();
    m_kv.reset();
    m_kvShape = shape;
    m_decodeCtasPerSm.clear();  // the kernels' occupancy depends on the head dim
    const DeviceKvView rows{nullptr, nullptr, shape.nKvHeads, shape.blockSize, shape.headDim, shape.q8};
    m_poolBytes = size_t(shape.numBlocks) * shape.nKvHeads * shape.blockSize * size_t(rows.rowBytes());
    PAGODA_CUDA_ASSIGN_OR_RETURN(m_kv, m_context->memory().allocate(2 * m_poolBytes * size_t(shape.nLayers),
                                                                    MemoryUse::KvCache));
    PAGODA_CUDA_CHECK(cudaMemsetAsync(m_kv.data(), 0, m_kv.bytes(), stream()));
    return {};
}

StatusOr<DeviceBuffer> CudaBackend::allocate(size_t bytes, MemoryUse use) {
    m_context->makeCurrent();
    return m_context->memory().allocate(bytes, use);
}

Status CudaBackend::copyToDevice(const void* host, void* device, size_t bytes) {
    m_context->makeCurrent();
    // The runtime has consumed a pageable source when the call returns.
    PAGODA_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream()));
    return {};
}

Status CudaBackend::copyToHostSync(const void* device, void* host, size_t bytes) {
    m_context->makeCurrent();
    PAGODA_CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream()));
    PAGODA_CUDA_CHECK(cudaStreamSynchronize(stream()));
    return {};
}

Status CudaBackend::copyOnDevice(void* dst, const void* src, size_t bytes) {
    m_context->makeCurrent();
    PAGODA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
    return {};
}

Status CudaBackend::copyKvBlocks(const int32_t* pairs, int n) {
    m_context->makeCurrent();
    if (!m_kv) return Status::error("copyKvBlocks: no KV pool");
    const size_t blockBytes = m_poolBytes / size_t(m_kvShape.numBlocks);
    for (int i = 0; i < n; ++i) {
        const int32_t src = pairs[2 * i];
        const int32_t dst = pairs[2 * i + 1];
        if (src < 0 || dst < 0 || src >= m_kvShape.numBlocks || dst >= m_kvShape.numBlocks) {
            return Status::error("copyKvBlocks: block " + std::to_string(src) + " -> " + std::to_string(dst) + " of " +
                                 std::to_string(m_kvShape.numBlocks));
        }
    }
    for (int layer = 0; layer < m_kvShape.nLayers; ++layer) {
        const DeviceKvView view = kvView(layer);
        for (const void* pool : {view.k, view.v}) {
            std::byte* bytes = const_cast<std::byte*>(static_cast<const std::byte*>(pool));
            for (int i = 0; i < n; ++i) {
                PAGODA_CUDA_CHECK(cudaMemcpyAsync(bytes + size_t(pairs[2 * i + 1]) * blockBytes,
                                                  bytes + size_t(pairs[2 * i]) * blockBytes, blockBytes,
                                                  cudaMemcpyDeviceToDevice, stream()));
            }
        }
    }
    return {};
}

Status CudaBackend::synchronize() {
    m_context->makeCurrent();
    return m_context->synchronize();
}

MemoryAccounting CudaBackend::memory() {
    m_context->makeCurrent();  // the pool asks the current device for its free memory
    return m_context->memory().accounting();
}

StatusOr<double> CudaBackend::measureCopyBandwidthSync(size_t bytes, int repetitions) {
    m_context->makeCurrent();
    return m_context->copyBandwidthGBs(bytes, repetitions);
}

StatusOr<double> CudaBackend::measureGemmTflopsSync(int n, int repetitions) {
    m_context->makeCurrent();
    if (n < 1 || repetitions < 1) return Status::error("measureGemmTflopsSync: nothing to multiply");
    const size_t elements = size_t(n) * size_t(n);
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer a, allocate(elements * sizeof(uint16_t), MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer b, allocate(elements * sizeof(uint16_t), MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer c, allocate(elements * sizeof(float), MemoryUse::Workspace));
    // Bytes 0x3c: every f16 is 0x3c3c (1.06), finite and normal.
    PAGODA_CUDA_CHECK(cudaMemsetAsync(a.data(), 0x3c, elements * sizeof(uint16_t), stream()));
    PAGODA_CUDA_CHECK(cudaMemsetAsync(b.data(), 0x3c, elements * sizeof(uint16_t), stream()));
    const BlasHandles handles = m_context->blas();
    const float alpha = 1.0f;
    const float beta = 0.0f;
    // The warm-up call lets cuBLAS pick its kernel.
    PAGODA_CUDA_ASSIGN_OR_RETURN(const double ms, m_context->timeMs(repetitions, [&] {
        return checkCall(cublasGemmEx(handles.blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a.data(), CUDA_R_16F, n,
                                      b.data(), CUDA_R_16F, n, &beta, c.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT),
                         "cublasGemmEx", __FILE__, __LINE__);
    }));
    return 2.0 * double(n) * double(n) * double(n) / (ms * 1e-3) / 1e12;
}

Status CudaBackend::embed(const void* table, const int32_t* ids, int n, float* out) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const DeviceWeight weight, findMatrix(table, "embed"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const int32_t* deviceIds, metadata(m_ids, ids, n, m_graphIdsData, "embed"));
    return embedRows(launchStream(), weight, deviceIds, n, out);
}

Status CudaBackend::rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const float* w, findVector(weight, "rmsNorm"));
    return cuda::rmsNorm(launchStream(), x, w, y, nRows, n, eps);
}

Status CudaBackend::addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                               float eps) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const float* w, findVector(weight, "addRmsNorm"));
    return cuda::addRmsNorm(launchStream(), x, delta, w, y, nRows, n, eps);
}

bool CudaBackend::usesMatvec(const DeviceWeight& w, int64_t nTokens) const {
    if (!matvecTakes(w)) return false;
    // Quantized: graph captures (decode steps) keep to the kernels that need
    // no workspace, the matvec up to kMatvecMaxTokens.
    if (isCudaQuantType(w.type)) {
        return nTokens < kDequantizedMinTokens || (m_graphs.capturing() && nTokens <= kMatvecMaxTokens);
    }
    return nTokens <= kDenseMatvecMaxTokens;
}

bool CudaBackend::usesInt8(const DeviceWeight& w, int64_t nTokens) const {
    return m_int8Matmul && usesMatvec(w, nTokens) && matvecInt8Takes(w);
}

void CudaBackend::setInt8Matmul(bool on) {
    m_context->makeCurrent();
    if (on != m_int8Matmul) m_graphs.clear();
    m_int8Matmul = on;
}

void CudaBackend::setDependentLaunch(bool on) {
    m_context->makeCurrent();
    if (on != m_dependentLaunch) m_graphs.clear();
    m_dependentLaunch = on;
}

LaunchStream CudaBackend::launchStream() const {
    return LaunchStream(stream(), m_dependentLaunch && hasDependentLaunch(m_context->device()));
}

StatusOr<Int8Activations> CudaBackend::int8Activations(const float* x, int64_t cols, int64_t nTokens) {
    PAGODA_CUDA_RETURN_IF_ERROR(ensure(m_int8Activations, int8ActivationBytes(cols, nTokens), MemoryUse::Workspace));
    return quantizeActivations(launchStream(), x, cols, nTokens, m_int8Activations.data());
}

Status CudaBackend::product(const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    if (usesInt8(w, nTokens)) {
        PAGODA_CUDA_ASSIGN_OR_RETURN(const Int8Activations x8, int8Activations(x, w.cols, nTokens));
        return matvecsInt8(launchStream(), &w, &y, 1, x8);
    }
    if (usesMatvec(w, nTokens)) return matvec(launchStream(), w, x, y, nTokens);
    if (isCudaQuantType(w.type)) {
        // The f32 tiles need no workspace either.
        if (m_graphs.capturing()) return quantMatmul(stream(), w, x, y, nTokens);
        return dequantizedMatmul(w, x, y, nTokens);
    }
    PAGODA_CUDA_RETURN_IF_ERROR(ensure(m_gemmScratch, gemmScratchBytes(w, nTokens), MemoryUse::Workspace));
    return gemm(m_context->blas(), stream(), w, x, y, nTokens, m_gemmScratch.data());
}

Status CudaBackend::matmul(const void* weight, const float* x, float* y, int64_t nTokens) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const DeviceWeight w, findMatrix(weight, "matmul"));
    return product(w, x, y, nTokens);
}

Status CudaBackend::matmuls(const void* const* weights, float* const* ys, int count, const float* x,
                            int64_t nTokens) {
    m_context->makeCurrent();
    std::vector<DeviceWeight> ws;
    for (int i = 0; i < count; ++i) {
        PAGODA_CUDA_ASSIGN_OR_RETURN(const DeviceWeight w, findMatrix(weights[i], "matmuls"));
        ws.push_back(w);
    }
    std::vector<bool> viaMatvec;
    for (const DeviceWeight& w : ws) viaMatvec.push_back(usesMatvec(w, nTokens));
    // cuBLASLt products convert the shared input once per 16-bit type (it
    // lives in the GEMM scratch until the next product of another kind).
    for (DType type : {DType::F16, DType::BF16}) {
        bool converted = false;
        for (int i = 0; i < count; ++i) {
            const DeviceWeight& w = ws[size_t(i)];
            if (viaMatvec[size_t(i)] || w.type != type) continue;
            if (!converted) {
                PAGODA_CUDA_RETURN_IF_ERROR(ensure(m_gemmScratch, gemmScratchBytes(w, nTokens), MemoryUse::Workspace));
                PAGODA_CUDA_RETURN_IF_ERROR(convertActivations(stream(), w, x, nTokens, m_gemmScratch.data()));
                converted = true;
            }
            PAGODA_CUDA_RETURN_IF_ERROR(
                gemmConverted(m_context->blas(), stream(), w, m_gemmScratch.data(), ys[i], nTokens));
        }
    }
    // The others as matmul() runs them.
    for (int i = 0; i < count; ++i) {
        const DeviceWeight& w = ws[size_t(i)];
        if (!viaMatvec[size_t(i)] && w.type != DType::F16 && w.type != DType::BF16) {
            PAGODA_CUDA_RETURN_IF_ERROR(product(w, x, ys[i], nTokens));
        }
    }
    // The matvecs; with int8 decode, those with an int8 kernel over the
    // input rounded once (the group's type is the same throughout).
    std::optional<Int8Activations> x8;
    for (const std::vector<int>& group : matvecGroups(ws, viaMatvec)) {
        DeviceWeight matrices[kMatvecMaxMatrices];
        float* outputs[kMatvecMaxMatrices];
        for (size_t k = 0; k < group.size(); ++k) {
            matrices[k] = ws[size_t(group[k])];
            outputs[k] = ys[group[k]];
        }
        if (!usesInt8(matrices[0], nTokens)) {
            PAGODA_CUDA_RETURN_IF_ERROR(matvecs(launchStream(), matrices, outputs, int(group.size()), x, nTokens));
            continue;
        }
        if (!x8) {
            PAGODA_CUDA_ASSIGN_OR_RETURN(x8, int8Activations(x, matrices[0].cols, nTokens));
        }
        PAGODA_CUDA_RETURN_IF_ERROR(matvecsInt8(launchStream(), matrices, outputs, int(group.size()), *x8));
    }
    return {};
}

Status CudaBackend::dequantizedMatmul(const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    const size_t rowBytes = size_t(w.cols) * sizeof(uint16_t);
    const int64_t panelRows =
        std::min(w.rows, std::max<int64_t>(64, int64_t(kDequantizedPanelBytes / rowBytes) / 64 * 64));
    const size_t panelBytes = (size_t(panelRows) * rowBytes + 255) / 256 * 256;
    const size_t productBytes = panelRows < w.rows ? size_t(panelRows) * size_t(nTokens) * sizeof(float) : 0;
    // No room for the f16 copy: the f32 tiles need none. A size refused once
    // is not asked for again (each try releases the pool's cache).
    const size_t bytes = panelBytes + productBytes;
    if (m_dequantizedRefused != 0 && bytes >= m_dequantizedRefused) return quantMatmul(stream(), w, x, y, nTokens);
    if (!ensure(m_dequantized, bytes, MemoryUse::Workspace).ok() ||
        !ensure(m_gemmScratch, gemmScratchBytes({DType::F16, nullptr, panelRows, w.cols}, nTokens),
                MemoryUse::Workspace)
             .ok()) {
        m_dequantizedRefused = bytes;
        return quantMatmul(stream(), w, x, y, nTokens);
    }
    return dequantizedGemm(m_context->blas(), stream(), w, x, y, nTokens, panelRows, m_dequantized.data(),
                           reinterpret_cast<float*>(m_dequantized.as<std::byte>() + panelBytes), m_gemmScratch.data());
}

Status CudaBackend::rope(float* x, int nTokens, int nHeads, const int32_t* positions, const RopeShape& shape) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const int32_t* devicePositions,
                                 metadata(m_positions, positions, nTokens, m_graphPositionsData, "rope"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const RopeShape onDevice, deviceRopeShape(shape, "rope"));
    return cuda::rope(launchStream(), x, nTokens, nHeads, devicePositions, onDevice);
}

Status CudaBackend::checkKvLayer(int layer, const char* op) const {
    if (!m_kv || layer < 0 || layer >= m_kvShape.nLayers) {
        return Status::error(std::string(op) + ": layer " + std::to_string(layer) + " of a KV pool with " +
                             std::to_string(m_kv ? m_kvShape.nLayers : 0) + " layers");
    }
    return {};
}

Status CudaBackend::storeKv(int layer, const float* k, const float* v, const int32_t* slots, int nTokens) {
    m_context->makeCurrent();
    PAGODA_CUDA_RETURN_IF_ERROR(checkKvLayer(layer, "storeKv"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const int32_t* deviceSlots, metadata(m_slots, slots, nTokens, m_graphSlotsData, "storeKv"));
    const DeviceKvView view = kvView(layer);
    return cuda::storeKv(launchStream(), view, const_cast<void*>(view.k), const_cast<void*>(view.v), k, v, deviceSlots,
                         nTokens);
}

Status CudaBackend::ropeStoreKv(int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                                const int32_t* positions, const int32_t* slots, const RopeShape& shape) {
    m_context->makeCurrent();
    PAGODA_CUDA_RETURN_IF_ERROR(checkKvLayer(layer, "ropeStoreKv"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const int32_t* devicePositions,
                                 metadata(m_positions, positions, nTokens, m_graphPositionsData, "ropeStoreKv"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const int32_t* deviceSlots,
                                 metadata(m_slots, slots, nTokens, m_graphSlotsData, "ropeStoreKv"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const RopeShape onDevice, deviceRopeShape(shape, "ropeStoreKv"));
    const DeviceKvView view = kvView(layer);
    return cuda::ropeStoreKv(launchStream(), q, k, v, nTokens, nHeads, devicePositions, deviceSlots, onDevice, view,
                             const_cast<void*>(view.k), const_cast<void*>(view.v));
}

Status CudaBackend::attention(const AttentionCall& call) {
    m_context->makeCurrent();
    PAGODA_CUDA_RETURN_IF_ERROR(checkKvLayer(call.layer, "attention"));
    AttentionArgs args;
    args.q = call.q;
    args.out = call.out;
    args.nHeads = call.nHeads;
    args.scale = call.scale;
    args.window = call.window;
    args.softcap = call.softcap;
    args.kv = kvView(call.layer);
    if (m_staged) {
        if (call.naive || call.expandKv) return Status::error("decode graphs run the flash path only");
        // The staged plan covers a narrower window too (a model's local
        // layers): the kernel cuts each row's own context over its splits.
        const bool covered = m_stagedWindow == 0 || (call.window > 0 && call.window <= m_stagedWindow);
        if (call.nHeads != m_stagedHeads || !covered) {
            return Status::error("attention: " + std::to_string(call.nHeads) + " heads, window " +
                                 std::to_string(call.window) + " in a decode graph staged for " +
                                 std::to_string(m_stagedHeads) + " heads, window " + std::to_string(m_stagedWindow));
        }
        return runAttention(launchStream(), args, m_stagedPlan, m_graphAttentionData, m_attentionWorkspace.data());
    }
    const AttentionGeometry geometry{call.nHeads, m_kvShape.nKvHeads, m_kvShape.headDim, m_kvShape.blockSize,
                                     call.window};
    PAGODA_CUDA_ASSIGN_OR_RETURN(AttentionPlanOptions options, attentionOptions(call.nHeads, call.expandKv));
    options.naive = call.naive;
    options.expandKv = call.expandKv;
    const std::vector<AttentionSequenceSpec> sequences(call.sequences, call.sequences + call.nSequences);
    PAGODA_CUDA_ASSIGN_OR_RETURN(const AttentionPlan plan, planAttention(geometry, sequences, options));
    PAGODA_CUDA_RETURN_IF_ERROR(ensure(m_attentionWorkspace, plan.workspaceBytes(), MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const int32_t* packed,
                                 m_attentionMetadata.stage(m_context->memory(), stream(), plan.packed.data(),
                                                           plan.packed.size()));
    return runAttention(launchStream(), args, plan, packed, m_attentionWorkspace.data());
}

StatusOr<AttentionPlanOptions> CudaBackend::attentionOptions(int nHeads, bool expandKv) {
    AttentionPlanOptions options;
    options.smCount = device().smCount;
    options.sharedBytesPerSm = m_context->sharedBytesPerSm();
    const int group = expandKv || m_kvShape.nKvHeads < 1 ? 1 : nHeads / m_kvShape.nKvHeads;
    auto known = m_decodeCtasPerSm.find(group);
    if (known == m_decodeCtasPerSm.end()) {
        PAGODA_CUDA_ASSIGN_OR_RETURN(const int ctas, decodeCtasPerSm(m_kvShape.headDim, std::max(1, group), m_kvShape.q8));
        known = m_decodeCtasPerSm.emplace(group, ctas).first;
    }
    options.decodeCtasPerSm = known->second;
    return options;
}

Status CudaBackend::swiglu(const float* gate, const float* up, float* out, int64_t n) {
    m_context->makeCurrent();
    return cuda::swiglu(launchStream(), gate, up, out, n);
}

Status CudaBackend::geglu(const float* gate, const float* up, float* out, int64_t n) {
    m_context->makeCurrent();
    return cuda::geglu(launchStream(), gate, up, out, n);
}

Status CudaBackend::scale(float* x, float s, int64_t n) {
    m_context->makeCurrent();
    return cuda::scale(launchStream(), x, s, n);
}

Status CudaBackend::softcap(float* x, float cap, int64_t n) {
    m_context->makeCurrent();
    return cuda::softcap(launchStream(), x, cap, n);
}

Status CudaBackend::matmulSwiglu(const void* gate, const void* up, const float* x, float* out, float* upScratch,
                                 int64_t nTokens) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const DeviceWeight g, findMatrix(gate, "matmulSwiglu"));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const DeviceWeight u, findMatrix(up, "matmulSwiglu"));
    // Decode: one launch for both products and the SwiGLU.
    if (usesMatvec(g, nTokens) && usesMatvec(u, nTokens) && g.type == u.type && g.cols == u.cols && g.rows == u.rows) {
        if (usesInt8(g, nTokens) && usesInt8(u, nTokens)) {
            PAGODA_CUDA_ASSIGN_OR_RETURN(const Int8Activations x8, int8Activations(x, g.cols, nTokens));
            return matvecSwigluInt8(launchStream(), g, u, x8, out);
        }
        return matvecSwiglu(launchStream(), g, u, x, out, nTokens);
    }
    const void* weights[] = {gate, up};
    float* const ys[] = {out, upScratch};
    PAGODA_CUDA_RETURN_IF_ERROR(matmuls(weights, ys, 2, x, nTokens));
    return cuda::swiglu(launchStream(), out, upScratch, out, nTokens * g.rows);
}

Status CudaBackend::add(float* y, const float* x, int64_t n) {
    m_context->makeCurrent();
    return cuda::add(launchStream(), y, x, n);
}

Status CudaBackend::addBias(float* y, const float* bias, int64_t nRows, int64_t n) {
    m_context->makeCurrent();
    PAGODA_CUDA_ASSIGN_OR_RETURN(const float* b, findVector(bias, "addBias"));
    return cuda::addBias(launchStream(), y, b, nRows, n);
}

StatusOr<GraphMode> CudaBackend::beginDecodeGraph(const DecodeStep& step) {
    m_context->makeCurrent();
    if (!m_kv) return Status::error("beginDecodeGraph: no KV pool");
    if (!m_weights) return Status::error("beginDecodeGraph: no weights were uploaded");
    if (m_staged) return Status::error("beginDecodeGraph: a decode step is staged already");
    if (step.nTokens < 1 || step.nTokens > step.bucket || step.maxContext < 1) {
        return Status::error("beginDecodeGraph: " + std::to_string(step.nTokens) + " tokens in bucket " +
                             std::to_string(step.bucket) + ", context up to " + std::to_string(step.maxContext));
    }
    const int bucket = step.bucket;
    const AttentionGeometry geometry{step.nHeads, m_kvShape.nKvHeads, m_kvShape.headDim, m_kvShape.blockSize,
                                     step.window};
    PAGODA_CUDA_ASSIGN_OR_RETURN(AttentionPlanOptions options, attentionOptions(step.nHeads, false));
    options.fixedContext = step.window > 0 ? std::min(step.window, step.maxContext) : step.maxContext;
    options.padRowsTo = bucket;
    options.fixedSeqs = bucket;
    options.fixedTableInts = bucket * int(ceilDiv(step.maxContext, m_kvShape.blockSize));
    const std::vector<AttentionSequenceSpec> sequences(step.sequences, step.sequences + step.nTokens);
    PAGODA_CUDA_ASSIGN_OR_RETURN(AttentionPlan plan, planAttention(geometry, sequences, options));
    if (plan.nTiles != 0) return Status::error("beginDecodeGraph: a sequence has more than one query");

    // Everything the captured kernels touch must exist, at its final
    // address, before the capture starts.
    const int64_t maxCols = m_weights->maxCols;
    PAGODA_CUDA_RETURN_IF_ERROR(ensure(m_attentionWorkspace, plan.workspaceBytes(), MemoryUse::Workspace));
    PAGODA_CUDA_RETURN_IF_ERROR(ensure(m_gemmScratch, size_t(bucket) * size_t(maxCols) * 2, MemoryUse::Workspace));
    if (m_int8Matmul) {
        PAGODA_CUDA_RETURN_IF_ERROR(
            ensure(m_int8Activations, int8ActivationBytes(maxCols, bucket), MemoryUse::Workspace));
    }
    std::vector<int32_t> tokens(step.tokens, step.tokens + step.nTokens);
    std::vector<int32_t> positions(step.positions, step.positions + step.nTokens);
    std::vector<int32_t> slots(step.slots, step.slots + step.nTokens);
    tokens.resize(size_t(bucket), 0);
    positions.resize(size_t(bucket), 0);
    slots.resize(size_t(bucket), -1);
    MemoryPool& pool = m_context->memory();
    const int32_t* before[] = {m_graphIdsData, m_graphPositionsData, m_graphSlotsData, m_graphAttentionData};
    PAGODA_CUDA_ASSIGN_OR_RETURN(m_graphIdsData, m_graphIds.stage(pool, stream(), tokens.data(), tokens.size()));
    PAGODA_CUDA_ASSIGN_OR_RETURN(m_graphPositionsData,
                                 m_graphPositions.stage(pool, stream(), positions.data(), positions.size()));
    PAGODA_CUDA_ASSIGN_OR_RETURN(m_graphSlotsData, m_graphSlots.stage(pool, stream(), slots.data(), slots.size()));
    PAGODA_CUDA_ASSIGN_OR_RETURN(m_graphAttentionData,
                                 m_graphAttention.stage(pool, stream(), plan.packed.data(), plan.packed.size()));
    const int32_t* after[] = {m_graphIdsData, m_graphPositionsData, m_graphSlotsData, m_graphAttentionData};
    if (!std::equal(std::begin(before), std::end(before), std::begin(after))) m_graphs.clear();

    m_stagedPlan = std::move(plan);
    m_stagedBucket = bucket;
    m_stagedHeads = step.nHeads;
    m_stagedWindow = step.window;
    m_staged = true;
    if (m_graphs.has(bucket)) return GraphMode::Replay;
    if (Status started = m_graphs.beginCapture(stream()); !started.ok()) {
        m_staged = false;
        return started;
    }
    return GraphMode::Capture;
}

Status CudaBackend::endDecodeGraph(bool abandon) {
    m_context->makeCurrent();
    if (!m_staged) return Status::error("endDecodeGraph: no decode step staged");
    m_staged = false;
    if (abandon) {
        m_graphs.abortCapture(stream());
        return {};
    }
    if (m_graphs.capturing()) PAGODA_CUDA_RETURN_IF_ERROR(m_graphs.endCapture(stream(), m_stagedBucket));
    return m_graphs.launch(stream(), m_stagedBucket);
}

void CudaBackend::dropDecodeGraphs() {
    m_context->makeCurrent();
    m_graphs.clear();
}

}  // namespace pagoda::cuda

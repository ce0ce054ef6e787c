#pragma once
// The interface the CUDA module (libpagoda_cuda.so) hands to the engine:
// the forward-pass operations on device activations, weights and norm
// vectors named by the host address they were uploaded from (uploaded by
// the backend, or shared with another backend on the device), one paged
// KV pool (f16 or Q8_0), and CUDA graphs of the decode step. Plain C++17 with no CUDA
// types, so that the engine compiles and links without CUDA; the object is
// created and destroyed by the module's C entry points (module_api.h).
// Not thread-safe: one thread drives a backend.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/probe.h"
#include "kernels/cuda/rope_shape.h"
#include "kernels/cuda/status.h"
#include "kernels/dtype.h"

namespace pagoda::cuda {

// A weight matrix in host memory (the memory-mapped GGUF): `rows` rows of
// `cols` elements of `type`. Its address is its name on the device.
struct HostMatrix {
    DType type = DType::F32;
    const void* data = nullptr;  // [rows][rowBytes(type, cols)]
    int64_t rows = 0;
    int64_t cols = 0;
};

// A small f32 vector (norm weights, biases), named by its host address.
struct HostVector {
    const float* data = nullptr;  // [n]
    int64_t n = 0;
};

// Called with (bytes uploaded, total bytes).
using UploadProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// A model's weights on a device, uploaded by one backend and usable by
// every backend of the same module on that device (DeviceBackend::
// useWeights): two engines of one model, such as the app's chats and its
// comparison, hold one copy. Read-only once uploaded, so backends on
// different threads read them together; freed with the last holder, which
// may outlive the backend that uploaded them.
class DeviceWeights {
public:
    virtual ~DeviceWeights() = default;
    virtual int deviceIndex() const = 0;
    virtual uint64_t bytes() const = 0;
};

// The KV pools of every layer: [nLayers][K, V][numBlocks][nKvHeads][blockSize]
// rows of headDim elements, f16 or (q8) Q8_0 (DeviceKvView).
struct KvPoolShape {
    int nLayers = 0;
    int nKvHeads = 0;
    int headDim = 0;
    int blockSize = 16;
    int numBlocks = 0;
    bool q8 = false;  // headDim a multiple of 32
};

// One layer's attention. q, out are device; sequences and their block
// tables are host memory.
struct AttentionCall {
    const float* q = nullptr;  // [nTokens][nHeads][headDim]
    float* out = nullptr;      // [nTokens][nHeads][headDim]
    int layer = 0;
    int nHeads = 0;
    float scale = 1.0f;
    int window = 0;
    float softcap = 0.0f;  // > 0: scores soft-capped (AttentionArgs::softcap)
    bool naive = false;
    bool expandKv = false;
    const AttentionSequenceSpec* sequences = nullptr;
    int nSequences = 0;
};

// A decode step (every sequence contributes one token) staged for a CUDA
// graph: all host memory, nTokens <= bucket.
struct DecodeStep {
    const int32_t* tokens = nullptr;     // [nTokens]
    const int32_t* positions = nullptr;  // [nTokens]
    const int32_t* slots = nullptr;      // [nTokens]
    int nTokens = 0;
    int bucket = 0;
    int nHeads = 0;
    int window = 0;
    int maxContext = 0;  // the longest context any sequence may reach (sizes the fixed launch shape)
    const AttentionSequenceSpec* sequences = nullptr;  // [nTokens], one query each
};

enum class GraphMode {
    Capture,  // run the step's operations now: they are recorded, then replayed at endDecodeGraph
    Replay,   // skip the operations: endDecodeGraph replays the recorded ones
};

class DeviceBackend {
public:
    virtual ~DeviceBackend() = default;

    virtual const DeviceInfo& device() const = 0;

    // --- setup ---

    // Uploads every matrix and vector once, into one device allocation
    // (addresses seen before are skipped: tied embeddings). Fails without
    // allocating when they do not fit, naming the sizes.
    virtual Status uploadWeights(const std::vector<HostMatrix>& matrices, const std::vector<HostVector>& vectors,
                                 const UploadProgressFn& progress) = 0;
    // What uploadWeights uploaded or useWeights took: null before either.
    virtual std::shared_ptr<const DeviceWeights> weights() const = 0;
    // Uses weights another backend of this module uploaded to this device,
    // instead of uploading a copy. An error (nothing changed) for weights of
    // another device or module, or when this backend has weights already.
    virtual Status useWeights(std::shared_ptr<const DeviceWeights> weights) = 0;
    // (Re)creates the KV pools, zeroed; drops the decode graphs.
    virtual Status createKvPool(const KvPoolShape& shape) = 0;
    virtual StatusOr<DeviceBuffer> allocate(size_t bytes, MemoryUse use) = 0;
    // Host -> device on the backend's stream; `host` may be reused on return.
    virtual Status copyToDevice(const void* host, void* device, size_t bytes) = 0;
    // Waits for the stream, then copies device -> host.
    virtual Status copyToHostSync(const void* device, void* host, size_t bytes) = 0;
    // Device -> device on the backend's stream (capturable in a graph).
    virtual Status copyOnDevice(void* dst, const void* src, size_t bytes) = 0;
    // Copies whole KV blocks (every layer, K and V). pairs: host [n][2] (source, destination).
    virtual Status copyKvBlocks(const int32_t* pairs, int n) = 0;
    virtual Status synchronize() = 0;
    virtual MemoryAccounting memory() = 0;
    // Device-to-device copy bandwidth in GB/s (bytes read plus written per
    // second) over `bytes`-sized buffers: the memory roofline.
    virtual StatusOr<double> measureCopyBandwidthSync(size_t bytes, int repetitions) = 0;
    // Dense f16 GEMM throughput in TFLOP/s (n x n x n through cuBLAS, f32
    // accumulation and output): the tensor cores' practical peak, the
    // roofline of prefill.
    virtual StatusOr<double> measureGemmTflopsSync(int n, int repetitions) = 0;

    // Decode products of quantized weights (each type has an int8 kernel)
    // over the activations rounded to 8 bits
    // (OptimizationConfig::int8Matmul); drops the decode graphs when it
    // changes.
    virtual void setInt8Matmul(bool on) = 0;
    // Decode-step kernels launched with programmatic dependent launch
    // (OptimizationConfig::dependentLaunch; compute capability 9.0 and
    // newer, ignored before): each one's CTAs start while the kernel before
    // it finishes (launch.h). The same results; drops the decode graphs
    // when it changes.
    virtual void setDependentLaunch(bool on) = 0;

    // --- forward operations; device activations, host metadata ---

    // out[i] = row ids[i] of the uploaded table. ids: host [n]; out: [n][cols]
    virtual Status embed(const void* table, const int32_t* ids, int n, float* out) = 0;
    // x, y: [nRows][n]; weight: an uploaded vector
    virtual Status rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) = 0;
    // x += delta, then y = RMSNorm(x). x, delta, y: [nRows][n]; weight: an uploaded vector
    virtual Status addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                              float eps) = 0;
    // x: [nTokens][cols], y: [nTokens][rows] of the uploaded matrix `weight`
    virtual Status matmul(const void* weight, const float* x, float* y, int64_t nTokens) = 0;
    // matmul of `count` uploaded matrices with one input: ys[i] = weights[i] x
    virtual Status matmuls(const void* const* weights, float* const* ys, int count, const float* x,
                           int64_t nTokens) = 0;
    // x: [nTokens][nHeads][headDim]; positions: host [nTokens]
    virtual Status rope(float* x, int nTokens, int nHeads, const int32_t* positions, const RopeShape& shape) = 0;
    // k, v: [nTokens][nKvHeads][headDim] into layer's pools at slots (host [nTokens])
    virtual Status storeKv(int layer, const float* k, const float* v, const int32_t* slots, int nTokens) = 0;
    // rope() of q (nHeads heads) and k (the pools' KV heads), then storeKv()
    virtual Status ropeStoreKv(int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                               const int32_t* positions, const int32_t* slots, const RopeShape& shape) = 0;
    virtual Status attention(const AttentionCall& call) = 0;
    virtual Status swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;
    // out[i] = gelu(gate[i]) * up[i], GELU's tanh form
    virtual Status geglu(const float* gate, const float* up, float* out, int64_t n) = 0;
    // x[i] *= s
    virtual Status scale(float* x, float s, int64_t n) = 0;
    // x[i] = cap * tanh(x[i] / cap), cap > 0
    virtual Status softcap(float* x, float cap, int64_t n) = 0;
    // out = silu(gate x) * (up x) of two uploaded matrices with the same
    // rows; upScratch: [nTokens][rows], for a path that needs up's product
    virtual Status matmulSwiglu(const void* gate, const void* up, const float* x, float* out, float* upScratch,
                                int64_t nTokens) = 0;
    virtual Status add(float* y, const float* x, int64_t n) = 0;
    // y: [nRows][n]; bias: an uploaded vector
    virtual Status addBias(float* y, const float* bias, int64_t nRows, int64_t n) = 0;

    // --- CUDA graphs of the decode step ---

    // Uploads the step's metadata to fixed device buffers. Until
    // endDecodeGraph, operations run on that metadata (their host metadata
    // arguments are ignored) with nTokens == step.bucket.
    virtual StatusOr<GraphMode> beginDecodeGraph(const DecodeStep& step) = 0;
    // Ends a capture (instantiating the bucket's graph), then launches it;
    // with `abandon` (an operation failed) drops the capture and runs nothing.
    virtual Status endDecodeGraph(bool abandon) = 0;
    // Forgets every recorded graph (what they were recorded on changed).
    virtual void dropDecodeGraphs() = 0;
};

}  // namespace pagoda::cuda

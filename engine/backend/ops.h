#pragma once
// The operations the transformer's layer loop is written over. The CPU
// backend implements them with kernels/cpu; a device backend implements the
// same calls on its own memory. Pointers are activations in the backend's
// memory (from allocateActivations); shapes are in the comments. Weights and
// norm vectors are named by their host addresses.
//
// The operations return nothing: a backend that can fail in them (a device)
// keeps the first failure, skips the calls after it, and reports it from
// status(), which the forward pass checks once.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/core/result.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"

namespace pagoda {

class KvCache;
struct BlockCopy;
struct ForwardBatch;
struct KvLayout;

// Which backends multiply quantized weights (every block-quantized type)
// by int8 dot products over the activations rounded to 8 bits
// (OptimizationConfig::int8Matmul, Ops::setInt8Matmul).
enum class Int8Matmul {
    Off,
    Cpu,  // the CPU backend only: every product there, each token the same bits alone and in a batch
    On,   // every backend with such a path (CUDA: the decode matvecs only)
};

// Activation memory of a backend (host memory for the CPU, device memory
// for a GPU), freed with the object.
class ActivationMemory {
public:
    virtual ~ActivationMemory() = default;
    virtual float* data() = 0;
};

// The K and V pools of every layer, in a backend's memory.
class KvStorage {
public:
    // Where a layer's pools are: a storage and the layer's index in it.
    struct Part {
        KvStorage* storage = nullptr;
        int layer = 0;
    };

    virtual ~KvStorage() = default;
    // This storage and `layer` itself; for pools split across backends by
    // layer (LayerSplitOps), the part holding the layer and its index there.
    // The operations (Ops::storeKv, Ops::attention) take a part.
    virtual Part part(int layer) { return {this, layer}; }
    // The layer's pools as the CPU kernels read them; a device's pools have
    // no host address (k and v are null) and are found by layer instead.
    virtual cpu::PagedKvView view(int layer) const = 0;
    // Copies whole blocks (every layer, K and V): the copies a fork returned.
    virtual Result<void> copyBlocks(std::span<const BlockCopy> copies) = 0;
};

// A device's memory by use, for the plots and metrics.
struct DeviceMemoryStats {
    uint64_t weightsBytes = 0;
    uint64_t kvCacheBytes = 0;
    uint64_t activationsBytes = 0;
    uint64_t workspaceBytes = 0;
    uint64_t reservedBytes = 0;  // held by the backend's pool (in use or cached)
    uint64_t freeBytes = 0;      // on the device, as its runtime reports
    uint64_t totalBytes = 0;
};

// What a decode step's fixed launch shape depends on (CUDA graphs).
struct DecodeStepShape {
    int maxBatch = 0;    // the most sequences one step may carry
    int nHeads = 0;
    int window = 0;      // the attention window in effect (0: full)
    int maxContext = 0;  // the longest context a sequence may reach
    // Identifies what else the step's operations depend on (the caller's
    // activations and attention options): recordings of another are stale.
    uint64_t variant = 0;

    bool operator==(const DecodeStepShape&) const = default;
};

// One product of Ops::matmuls: w times the shared input into y
// ([nTokens][w->rows]).
struct MatmulOutput {
    const cpu::WeightMatrix* w = nullptr;
    float* y = nullptr;
};

class Ops;

// A model run on two backends by layer (LayerSplitOps): the token embedding
// and layers [0, secondFrom) on `first`, the rest of the layers and the
// output on `second`.
struct LayerSplit {
    Ops* first = nullptr;
    Ops* second = nullptr;
    int secondFrom = 0;
};

class Ops {
public:
    virtual ~Ops() = default;

    // "cpu: 2 threads, avx512"
    virtual std::string description() const = 0;

    // --- memory ---

    virtual Result<std::unique_ptr<ActivationMemory>> allocateActivations(size_t floats) = 0;
    // Pools of `layout` (KvCache::create(layout, manager, ops) asks here).
    virtual Result<std::unique_ptr<KvStorage>> createKvStorage(const KvLayout& layout) = 0;
    // Whether createKvStorage gives local layers pools of their own
    // (KvLayout::local): the CPU's host pools do; a device's do not yet.
    virtual bool localKvPools() const { return false; }
    // Bytes a new KV pool and activations not yet allocated may take now
    // (the automatic KV budget's bound, kvMemoryBesideActivations in
    // transformer.h), asked once the previous cache is released: half of
    // the host's available memory on the CPU; on a device, 90% of its free
    // memory and the current pool (which the new one replaces) less
    // headroom for workspace.
    virtual Result<uint64_t> kvMemoryAvailable() = 0;
    // n floats of activation memory readable on the host once the work
    // issued so far is done: `data` itself, or a copy made in `staging`.
    virtual Result<std::span<const float>> readBack(const float* data, size_t n, std::vector<float>& staging) = 0;
    // Products with quantized weights through int8 dot products over the
    // activations rounded to 8 bits where `mode` names this backend
    // (OptimizationConfig::int8Matmul); a backend without such a path
    // ignores it.
    virtual void setInt8Matmul(Int8Matmul) {}
    // Launch each decode-step kernel so that it starts while the one before
    // it finishes (OptimizationConfig::dependentLaunch; CUDA programmatic
    // dependent launch): the same results; others ignore it.
    virtual void setDependentLaunch(bool) {}
    // Bytes of scratch the operations hold (attention workspace).
    virtual uint64_t scratchBytes() const = 0;
    // Memory of a device backend; none for the CPU (host memory is the
    // process's).
    virtual std::optional<DeviceMemoryStats> deviceMemory() { return std::nullopt; }
    // The first failure of an operation since the last status(); clears it.
    virtual Result<void> status() { return {}; }
    // Waits for the operations issued so far: a device's run asynchronously
    // (its stream); the CPU's are done when they return.
    virtual void finish() {}
    // Set when the model runs on two backends by layer: the Transformer then
    // runs each layer on its own backend's operations, not on these.
    virtual std::optional<LayerSplit> layerSplit() { return std::nullopt; }

    // --- operations ---

    // out[i] = row ids[i] of table as f32. ids: host memory; out: [ids.size()][table.cols]
    virtual void embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) = 0;
    // x, y: [nRows][n]; weight: [n]
    virtual void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) = 0;
    // x += delta, then y = RMSNorm(x) (a residual add and the norm after
    // it): add() then rmsNorm(), the default; a device backend does both in
    // one pass. x, delta, y: [nRows][n] (y aliases neither); weight: [n]
    virtual void addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                            float eps) {
        add(x, delta, nRows * n);
        rmsNorm(x, weight, y, nRows, n, eps);
    }
    // x: [nTokens][w.cols], y: [nTokens][w.rows]
    virtual void matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) = 0;
    // Products of several matrices with one input (q, k and v; gate and
    // up): matmul() for each in turn, the default; a device backend may
    // launch once for all of them. x: [nTokens][cols], every matrix with
    // `cols` columns.
    virtual void matmuls(std::span<const MatmulOutput> outputs, const float* x, int64_t nTokens) {
        for (const MatmulOutput& out : outputs) matmul(*out.w, x, out.y, nTokens);
    }
    // x: [nTokens][nHeads][headDim], rotated in place at positions[t] (host memory)
    virtual void rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) = 0;
    // k, v: [nTokens][nKvHeads][headDim] written to slots[t] (host memory) of layer's
    // pools in kv (a KvCache's storage(), or a part of it: KvStorage::part)
    virtual void storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots,
                         int nTokens) = 0;
    // rope() of q ([nTokens][nHeads][headDim]) and of k ([nTokens][nKvHeads]
    // [headDim]), then storeKv() of k and v: the three calls, the default; a
    // device backend does it in one pass.
    virtual void ropeStoreKv(KvStorage& kv, int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                             int nKvHeads, const int32_t* positions, const int32_t* slots,
                             const cpu::RopeParams& params) {
        rope(q, nTokens, nHeads, positions, params);
        rope(k, nTokens, nKvHeads, positions, params);
        storeKv(kv, layer, k, v, slots, nTokens);
    }
    // params.kv is kv.view(layer); the sequences and block tables are host
    // memory; params.workspace null: the backend's own.
    virtual void attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) = 0;
    // out[i] = silu(gate[i]) * up[i]
    virtual void swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;
    // The feed-forward's first half: out = silu(gate x) * (up x)
    // elementwise, gate and up with the same rows. matmuls() of the two (up
    // into upScratch) and swiglu(), the default; a device backend may do it
    // in one launch. x: [nTokens][cols]; out, upScratch: [nTokens][gate.rows]
    virtual void matmulSwiglu(const cpu::WeightMatrix& gate, const cpu::WeightMatrix& up, const float* x, float* out,
                              float* upScratch, int64_t nTokens) {
        const MatmulOutput outputs[] = {{&gate, out}, {&up, upScratch}};
        matmuls(outputs, x, nTokens);
        swiglu(out, upScratch, out, nTokens * gate.rows);
    }
    // out[i] = gelu(gate[i]) * up[i], GELU's tanh form (Gemma's feed-forward)
    virtual void geglu(const float* gate, const float* up, float* out, int64_t n) = 0;
    // x[i] *= s (Gemma's embedding scale)
    virtual void scale(float* x, float s, int64_t n) = 0;
    // x[i] = cap * tanh(x[i] / cap) (Gemma 2's logit soft-capping)
    virtual void softcap(float* x, float cap, int64_t n) = 0;
    // y[i] += x[i]
    virtual void add(float* y, const float* x, int64_t n) = 0;
    // y[r][i] += bias[i] for every row r. y: [nRows][n], bias: [n]
    virtual void addBias(float* y, const float* bias, int64_t nRows, int64_t n) = 0;
    // dst[i] = src[i] for n floats; the ranges do not overlap.
    virtual void copy(float* dst, const float* src, int64_t n) = 0;
    // The same from host memory, which may be reused once the call returns
    // (the residual stream passed from one backend to the next).
    virtual void copyFromHost(float* dst, std::span<const float> src) = 0;

    // --- decode steps ---

    // Runs a decode step (every chunk of `batch` one token): `layers(nRows)`
    // issues the step's operations on nRows >= batch.tokens.size() rows. A
    // backend with step graphs picks nRows (a batch-size bucket, the extra
    // rows padding) and may replay a recording instead of calling `layers`;
    // the others call layers(batch.tokens.size()).
    virtual Result<void> runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                                       const std::function<void(int nRows)>& layers) = 0;
};

}  // namespace pagoda

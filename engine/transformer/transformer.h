#pragma once
// The llama forward pass, written once over Ops, for a flattened batch of
// tokens from several sequences (prefill chunks and decode tokens alike).

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"
#include "kernels/cpu/attention.h"

namespace pagoda {

class ActivationMemory;
class Model;
struct ModelConfig;
class Ops;

// The next nTokens tokens of the batch continue one sequence at positions
// [startPos, startPos + nTokens); its block table covers them (kNoBlock for
// blocks that left the sliding window). KvCache::addChunk fills this in.
struct SequenceChunk {
    std::span<const int32_t> blockTable;       // logical -> physical block
    std::span<const int32_t> localBlockTable;  // the same in the local layers' pools, when they have their own
    int startPos = 0;
    int nTokens = 0;
    bool allLogits = false;  // logits of every token, not only the last
};

struct ForwardBatch {
    std::vector<int32_t> tokens;        // [nTokens] chunk after chunk
    std::vector<int32_t> slots;         // [nTokens] pool slot receiving each token's K/V
    std::vector<SequenceChunk> chunks;  // in token order
    std::vector<int32_t> localSlots;    // [nTokens] the same in the local layers' pools, when they have their own
};

// Attention toggles, changeable between forward passes. The sliding window
// must equal the KV cache's block manager window (blocks outside it are
// released).
struct TransformerOptions {
    cpu::AttentionAlgorithm attention = cpu::AttentionAlgorithm::Flash;
    bool expandKv = false;   // GQA off: K/V copied to one head per query head before attention
    int slidingWindow = -1;  // < 0: the model's (ModelConfig::slidingWindow); 0: full attention
    // Decode steps through Ops::runDecodeStep, which a device backend runs
    // as CUDA graphs; with flash attention and grouped KV only. The CPU runs
    // them the same either way.
    bool decodeGraphs = false;
    int maxContext = 0;  // the longest context a sequence may reach; 0: the model's (sizes decode graphs' plans)
};

class Transformer {
public:
    // maxTokens: the most tokens one forward() may carry (sizes the
    // activations, allocated through ops at the first forward()).
    Transformer(const Model& model, Ops& ops, int maxTokens, const TransformerOptions& options = {});
    ~Transformer();

    // Bytes of the activations of a Transformer of `model` with maxTokens.
    static uint64_t activationBytes(const ModelConfig& model, int maxTokens);

    int maxTokens() const { return m_maxTokens; }
    // Bytes of activations allocated: 0 until the first forward().
    uint64_t activationBytesHeld() const { return m_activationBytes; }
    void setOptions(const TransformerOptions& options) { m_options = options; }
    // The attention window in effect (the override, else the model's).
    int slidingWindow() const;
    // The window `layer` attends within: a local layer's own (Gemma), or
    // the sliding window where that is narrower (the cache releases the
    // blocks below it), which every other layer has.
    int layerWindow(int layer) const;
    // Bytes of activations and the backend's scratch held now.
    uint64_t workspaceBytes() const;

    // Logits [rows][vocab] in host memory: per chunk in order, the last
    // token's row, or a row per token when allLogits. Valid until the next
    // forward(). Errors come from the backend (device memory, a failed
    // launch); the cache's contents for the batch's slots are then undefined.
    Result<std::span<const float>> forward(const ForwardBatch& batch, KvCache& cache);

private:
    // Views into a stage's memory, [maxTokens][...] each (no logits but on the last stage).
    struct Activations {
        float* x = nullptr;       // [n][dim] residual stream
        float* xb = nullptr;      // [n][dim] normed input of a sublayer
        float* xb2 = nullptr;     // [n][dim] sublayer output
        float* q = nullptr;       // [n][qDim]
        float* k = nullptr;       // [n][kvDim]
        float* v = nullptr;       // [n][kvDim]
        float* att = nullptr;     // [n][qDim]
        float* gate = nullptr;    // [n][ffnDim]
        float* up = nullptr;      // [n][ffnDim]
        float* logits = nullptr;  // [n][vocab]
    };

    // The layers [firstLayer, endLayer) one backend runs, on activations in
    // its memory: one stage, or two for a model split by layer
    // (Ops::layerSplit), the last one computing the logits.
    struct Stage {
        Ops* ops = nullptr;
        int firstLayer = 0;
        int endLayer = 0;
        std::unique_ptr<ActivationMemory> memory;
        Activations act;
    };

    Result<void> allocate();
    // The embedding of the first nRows of m_tokens, on the first stage.
    void embed(int nRows);
    // Embeds rows [0, nRows) and runs stages [0, end) on them, the residual
    // stream passed from each to the next, and to stage `end` if there is one.
    Result<void> runStages(size_t end, int nRows, KvCache& cache);
    // Passes rows [0, nRows) of the residual stream from stage s - 1 to s.
    Result<void> passResidual(size_t s, int nRows);
    // The stage's layers on nRows rows (m_tokens, m_positions, m_slots hold them).
    void layers(Stage& stage, int nRows, KvCache& cache);
    // The final norm and the output projection of rows [0, nRows) of `x`, on the last stage.
    void logits(const float* x, int nRows);

    const Model& m_model;
    Ops& m_ops;
    int m_maxTokens;
    TransformerOptions m_options;
    std::vector<Stage> m_stages;
    uint64_t m_activationBytes = 0;
    std::vector<int32_t> m_tokens;     // [rows]
    std::vector<int32_t> m_positions;  // [rows]
    std::vector<int32_t> m_slots;      // [rows]
    std::vector<cpu::AttentionSequence> m_sequences;
    // The local layers' slots and tables, when they have pools of their own.
    std::vector<int32_t> m_localSlots;  // [rows]
    std::vector<cpu::AttentionSequence> m_localSequences;
    std::vector<float> m_logitsStaging;    // the logits copied to the host, when they live elsewhere
    std::vector<float> m_residualStaging;  // the residual stream between stages, when it is copied
};

// What a KV pool may take now (the automatic budget's bound): the ops'
// kvMemoryAvailable, no more than PAGODA_KV_MEMORY_MIB when it is set,
// less the activations a Transformer of maxTokens has still to allocate
// (none when `current`, which may be null, holds them already). For a model
// split by layer (Ops::layerSplit), that of each backend beside its own
// activations, and the pool whose shares fit both
// (LayerSplitOps::wholePoolBytes).
Result<uint64_t> kvMemoryBesideActivations(Ops& ops, const Transformer* current, const ModelConfig& model,
                                           int maxTokens);

}  // namespace pagoda

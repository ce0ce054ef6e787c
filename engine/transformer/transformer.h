#pragma once
// The llama forward pass, written once over Ops, for a flattened batch of
// tokens from several sequences (prefill chunks and decode tokens alike).

#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv/kv_cache.h"
#include "kernels/cpu/attention.h"

namespace pagoda {

class Model;
class Ops;

// The next nTokens tokens of the batch continue one sequence at positions
// [startPos, startPos + nTokens); its block table covers them (kNoBlock for
// blocks that left the sliding window). KvCache::addChunk fills this in.
struct SequenceChunk {
    std::span<const int32_t> blockTable;  // logical -> physical block
    int startPos = 0;
    int nTokens = 0;
    bool allLogits = false;  // logits of every token, not only the last
};

struct ForwardBatch {
    std::vector<int32_t> tokens;        // [nTokens] chunk after chunk
    std::vector<int32_t> slots;         // [nTokens] pool slot receiving each token's K/V
    std::vector<SequenceChunk> chunks;  // in token order
};

// Attention toggles, changeable between forward passes. The sliding window
// must equal the KV cache's block manager window (blocks outside it are
// released).
struct TransformerOptions {
    cpu::AttentionAlgorithm attention = cpu::AttentionAlgorithm::Flash;
    bool expandKv = false;   // GQA off: K/V copied to one head per query head before attention
    int slidingWindow = -1;  // < 0: the model's (ModelConfig::slidingWindow); 0: full attention
};

class Transformer {
public:
    // maxTokens: the most tokens one forward() may carry (sizes the buffers).
    Transformer(const Model& model, Ops& ops, int maxTokens, const TransformerOptions& options = {});

    int maxTokens() const { return m_maxTokens; }
    void setOptions(const TransformerOptions& options) { m_options = options; }
    // The attention window in effect (the override, else the model's).
    int slidingWindow() const;
    // Bytes of activation buffers and attention scratch held now.
    uint64_t workspaceBytes() const;

    // Logits [rows][vocab]: per chunk in order, the last token's row, or a
    // row per token when allLogits. Valid until the next forward().
    std::span<const float> forward(const ForwardBatch& batch, KvCache& cache);

private:
    const Model& m_model;
    Ops& m_ops;
    int m_maxTokens;
    TransformerOptions m_options;
    cpu::AttentionWorkspace m_attentionWorkspace;

    // Activations, [maxTokens][...] each.
    std::vector<float> m_x;       // [n][dim] residual stream
    std::vector<float> m_xb;      // [n][dim] normed input of a sublayer
    std::vector<float> m_xb2;     // [n][dim] sublayer output
    std::vector<float> m_q;       // [n][qDim]
    std::vector<float> m_k;       // [n][kvDim]
    std::vector<float> m_v;       // [n][kvDim]
    std::vector<float> m_att;     // [n][qDim]
    std::vector<float> m_gate;    // [n][ffnDim]
    std::vector<float> m_up;      // [n][ffnDim]
    std::vector<float> m_logits;  // [n][vocab]
    std::vector<int32_t> m_positions;  // [n]
};

}  // namespace pagoda

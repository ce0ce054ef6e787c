#include "engine/transformer/transformer.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <optional>

#include "engine/backend/ops.h"
#include "engine/cache/kv_budget.h"
#include "engine/model/model.h"

namespace pagoda {

Transformer::Transformer(const Model& model, Ops& ops, int maxTokens, const TransformerOptions& options)
    : m_model(model), m_ops(ops), m_maxTokens(maxTokens), m_options(options) {}

Transformer::~Transformer() = default;

int Transformer::slidingWindow() const {
    return m_options.slidingWindow >= 0 ? m_options.slidingWindow : m_model.config().slidingWindow;
}

uint64_t Transformer::workspaceBytes() const { return m_activationBytes + m_ops.scratchBytes(); }

namespace {

// Every view starts on a 64-byte boundary.
size_t padded(size_t floats) { return (floats + 15) / 16 * 16; }

// Floats of each view of Activations, in its order.
std::array<size_t, 10> activationSizes(const ModelConfig& c, int maxTokens) {
    const size_t n = size_t(maxTokens);
    return {n * c.dim,     n * c.dim,     n * c.dim,     n * c.qDim(),  n * c.kvDim(),
            n * c.kvDim(), n * c.qDim(),  n * c.ffnDim,  n * c.ffnDim,  n * c.vocabSize};
}

}  // namespace

Result<uint64_t> kvMemoryBesideActivations(Ops& ops, const Transformer* current, const ModelConfig& model,
                                           int maxTokens) {
    PAGODA_ASSIGN_OR_RETURN(uint64_t memory, ops.kvMemoryAvailable());
    PAGODA_ASSIGN_OR_RETURN(const std::optional<uint64_t> limit, kvMemoryLimitFromEnvironment());
    if (limit) memory = std::min(memory, *limit);
    const bool held = current != nullptr && current->maxTokens() == maxTokens && current->activationBytesHeld() > 0;
    const uint64_t activations = held ? 0 : Transformer::activationBytes(model, maxTokens);
    return memory > activations ? memory - activations : 0;
}

uint64_t Transformer::activationBytes(const ModelConfig& model, int maxTokens) {
    uint64_t total = 0;
    for (const size_t size : activationSizes(model, maxTokens)) total += padded(size);
    return total * sizeof(float);
}

Result<void> Transformer::allocate() {
    const auto sizes = activationSizes(m_model.config(), m_maxTokens);
    const size_t total = activationBytes(m_model.config(), m_maxTokens) / sizeof(float);
    PAGODA_ASSIGN_OR_RETURN(m_memory, m_ops.allocateActivations(total));
    m_activationBytes = total * sizeof(float);
    float* next = m_memory->data();
    float** views[] = {&m_act.x,   &m_act.xb,  &m_act.xb2,  &m_act.q,  &m_act.k,
                       &m_act.v,   &m_act.att, &m_act.gate, &m_act.up, &m_act.logits};
    static_assert(std::size(views) == std::tuple_size_v<decltype(sizes)>);
    for (size_t i = 0; i < std::size(views); ++i) {
        *views[i] = next;
        next += padded(sizes[i]);
    }
    return {};
}

Result<std::span<const float>> Transformer::forward(const ForwardBatch& batch, KvCache& cache) {
    const ModelConfig& c = m_model.config();
    const int n = int(batch.tokens.size());
    if (n < 1 || n > m_maxTokens || batch.slots.size() != size_t(n)) {
        return fail("forward: a batch of {} tokens and {} slots (at most {} tokens)", n, batch.slots.size(),
                    m_maxTokens);
    }
    if (!m_memory) PAGODA_RETURN_IF_ERROR(allocate());

    m_tokens = batch.tokens;
    m_slots = batch.slots;
    m_positions.clear();
    m_sequences.clear();
    bool everyRow = true;  // every row needs logits (a decode step, or all-logits chunks)
    bool decode = true;    // every chunk one token
    for (const SequenceChunk& chunk : batch.chunks) {
        m_sequences.push_back({int(m_positions.size()), chunk.nTokens, chunk.startPos, chunk.blockTable.data()});
        for (int i = 0; i < chunk.nTokens; ++i) m_positions.push_back(chunk.startPos + i);
        everyRow = everyRow && (chunk.allLogits || chunk.nTokens == 1);
        decode = decode && chunk.nTokens == 1;
    }
    assert(m_positions.size() == size_t(n));

    // Graphs are an optimization of the optimized path: the baselines
    // (naive attention, expanded KV) run their steps eagerly.
    const bool graphs = m_options.decodeGraphs && m_options.attention == cpu::AttentionAlgorithm::Flash &&
                        !m_options.expandKv;
    if (decode && graphs) {
        // A recording also depends on the activations' address.
        const uint64_t variant = uint64_t(reinterpret_cast<uintptr_t>(m_act.x));
        const DecodeStepShape shape{m_maxTokens, c.nHeads, slidingWindow(), c.contextLength, variant};
        PAGODA_RETURN_IF_ERROR(m_ops.runDecodeStep(batch, shape, [&](int nRows) {
            // Padding rows: token 0 at position 0, stored nowhere, in no sequence.
            m_tokens.resize(size_t(nRows), 0);
            m_positions.resize(size_t(nRows), 0);
            m_slots.resize(size_t(nRows), -1);
            layers(nRows, cache);
            logits(m_act.x, nRows);
        }));
        return m_ops.readBack(m_act.logits, size_t(n) * c.vocabSize, m_logitsStaging);
    }

    layers(n, cache);
    int rows = n;
    if (everyRow) {
        logits(m_act.x, n);
    } else {
        // Gather the rows that need logits.
        rows = 0;
        int offset = 0;
        for (const SequenceChunk& chunk : batch.chunks) {
            const int first = chunk.allLogits ? 0 : chunk.nTokens - 1;
            const int count = chunk.nTokens - first;
            m_ops.copy(m_act.xb + size_t(rows) * c.dim, m_act.x + size_t(offset + first) * c.dim,
                       int64_t(count) * c.dim);
            rows += count;
            offset += chunk.nTokens;
        }
        logits(m_act.xb, rows);
    }
    PAGODA_RETURN_IF_ERROR(m_ops.status());
    return m_ops.readBack(m_act.logits, size_t(rows) * c.vocabSize, m_logitsStaging);
}

void Transformer::layers(int n, KvCache& cache) {
    const ModelConfig& c = m_model.config();
    const ModelWeights& w = m_model.weights();
    const cpu::RopeParams rope{c.headDim, c.ropeDim, c.ropeBase, c.ropeStyle};
    m_ops.embed(w.tokenEmbedding, m_tokens, m_act.x);

    // Each residual add is fused with the norm after it (Ops::addRmsNorm):
    // the FFN's norm, and the next layer's attention norm. q, k and v go
    // together (Ops::matmuls), gate and up with their SwiGLU
    // (Ops::matmulSwiglu), RoPE with the K/V store (Ops::ropeStoreKv).
    if (c.nLayers > 0) m_ops.rmsNorm(m_act.x, w.layers[0].attnNorm.data(), m_act.xb, n, c.dim, c.rmsEps);
    for (int l = 0; l < c.nLayers; ++l) {
        const LayerWeights& layer = w.layers[l];
        const MatmulOutput qkv[] = {{&layer.wq, m_act.q}, {&layer.wk, m_act.k}, {&layer.wv, m_act.v}};
        m_ops.matmuls(qkv, m_act.xb, n);
        if (c.attentionBias) {
            m_ops.addBias(m_act.q, layer.bq.data(), n, c.qDim());
            m_ops.addBias(m_act.k, layer.bk.data(), n, c.kvDim());
            m_ops.addBias(m_act.v, layer.bv.data(), n, c.kvDim());
        }
        m_ops.ropeStoreKv(cache, l, m_act.q, m_act.k, m_act.v, n, c.nHeads, c.nKvHeads, m_positions.data(),
                          m_slots.data(), rope);

        cpu::AttentionParams attention;
        attention.q = m_act.q;
        attention.out = m_act.att;
        attention.nHeads = c.nHeads;
        attention.scale = 1.0f / std::sqrt(float(c.headDim));
        attention.window = slidingWindow();
        attention.kv = cache.view(l);
        attention.sequences = m_sequences;
        attention.algorithm = m_options.attention;
        attention.expandKv = m_options.expandKv;
        m_ops.attention(cache, l, attention);

        m_ops.matmul(layer.wo, m_act.att, m_act.xb2, n);
        m_ops.addRmsNorm(m_act.x, m_act.xb2, layer.ffnNorm.data(), m_act.xb, n, c.dim, c.rmsEps);

        m_ops.matmulSwiglu(layer.gate, layer.up, m_act.xb, m_act.gate, m_act.up, n);
        m_ops.matmul(layer.down, m_act.gate, m_act.xb2, n);
        if (l + 1 < c.nLayers) {
            m_ops.addRmsNorm(m_act.x, m_act.xb2, w.layers[l + 1].attnNorm.data(), m_act.xb, n, c.dim, c.rmsEps);
        } else {
            m_ops.add(m_act.x, m_act.xb2, int64_t(n) * c.dim);
        }
    }
}

void Transformer::logits(const float* x, int nRows) {
    const ModelConfig& c = m_model.config();
    const ModelWeights& w = m_model.weights();
    m_ops.rmsNorm(x, w.outputNorm.data(), m_act.xb, nRows, c.dim, c.rmsEps);
    m_ops.matmul(w.output, m_act.xb, m_act.logits, nRows);
}

}  // namespace pagoda

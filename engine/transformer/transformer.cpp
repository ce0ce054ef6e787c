#include "engine/transformer/transformer.h"

#include <cassert>
#include <cmath>
#include <cstring>

#include "engine/backend/ops.h"
#include "engine/model/model.h"

namespace pagoda {

Transformer::Transformer(const Model& model, Ops& ops, int maxTokens, const TransformerOptions& options)
    : m_model(model), m_ops(ops), m_maxTokens(maxTokens), m_options(options) {
    const ModelConfig& c = model.config();
    const size_t n = size_t(maxTokens);
    m_x.resize(n * c.dim);
    m_xb.resize(n * c.dim);
    m_xb2.resize(n * c.dim);
    m_q.resize(n * c.qDim());
    m_k.resize(n * c.kvDim());
    m_v.resize(n * c.kvDim());
    m_att.resize(n * c.qDim());
    m_gate.resize(n * c.ffnDim);
    m_up.resize(n * c.ffnDim);
    m_logits.resize(n * c.vocabSize);
    m_positions.resize(n);
}

int Transformer::slidingWindow() const {
    return m_options.slidingWindow >= 0 ? m_options.slidingWindow : m_model.config().slidingWindow;
}

uint64_t Transformer::workspaceBytes() const {
    const size_t floats = m_x.size() + m_xb.size() + m_xb2.size() + m_q.size() + m_k.size() + m_v.size() +
                          m_att.size() + m_gate.size() + m_up.size() + m_logits.size();
    return sizeof(float) * floats + sizeof(int32_t) * m_positions.size() + m_attentionWorkspace.capacity();
}

std::span<const float> Transformer::forward(const ForwardBatch& batch, KvCache& cache) {
    const ModelConfig& c = m_model.config();
    const ModelWeights& w = m_model.weights();
    const int n = int(batch.tokens.size());
    assert(n > 0 && n <= m_maxTokens && batch.slots.size() == size_t(n));

    std::vector<cpu::AttentionSequence> sequences;
    sequences.reserve(batch.chunks.size());
    int offset = 0;
    for (const SequenceChunk& chunk : batch.chunks) {
        for (int i = 0; i < chunk.nTokens; ++i) m_positions[offset + i] = chunk.startPos + i;
        sequences.push_back({offset, chunk.nTokens, chunk.startPos, chunk.blockTable.data()});
        offset += chunk.nTokens;
    }
    assert(offset == n);

    const cpu::RopeParams rope{c.headDim, c.ropeDim, c.ropeBase, c.ropeStyle};
    m_ops.embed(w.tokenEmbedding, batch.tokens, m_x.data());

    for (int l = 0; l < c.nLayers; ++l) {
        const LayerWeights& layer = w.layers[l];
        m_ops.rmsNorm(m_x.data(), layer.attnNorm.data(), m_xb.data(), n, c.dim, c.rmsEps);
        m_ops.matmul(layer.wq, m_xb.data(), m_q.data(), n);
        m_ops.matmul(layer.wk, m_xb.data(), m_k.data(), n);
        m_ops.matmul(layer.wv, m_xb.data(), m_v.data(), n);
        if (c.attentionBias) {
            m_ops.addBias(m_q.data(), layer.bq.data(), n, c.qDim());
            m_ops.addBias(m_k.data(), layer.bk.data(), n, c.kvDim());
            m_ops.addBias(m_v.data(), layer.bv.data(), n, c.kvDim());
        }
        m_ops.rope(m_q.data(), n, c.nHeads, m_positions.data(), rope);
        m_ops.rope(m_k.data(), n, c.nKvHeads, m_positions.data(), rope);
        m_ops.storeKv(cache, l, m_k.data(), m_v.data(), batch.slots.data(), n);

        cpu::AttentionParams attention;
        attention.q = m_q.data();
        attention.out = m_att.data();
        attention.nHeads = c.nHeads;
        attention.scale = 1.0f / std::sqrt(float(c.headDim));
        attention.window = slidingWindow();
        attention.kv = cache.view(l);
        attention.sequences = sequences;
        attention.algorithm = m_options.attention;
        attention.expandKv = m_options.expandKv;
        attention.workspace = &m_attentionWorkspace;
        m_ops.attention(attention);

        m_ops.matmul(layer.wo, m_att.data(), m_xb2.data(), n);
        m_ops.add(m_x.data(), m_xb2.data(), int64_t(n) * c.dim);

        m_ops.rmsNorm(m_x.data(), layer.ffnNorm.data(), m_xb.data(), n, c.dim, c.rmsEps);
        m_ops.matmul(layer.gate, m_xb.data(), m_gate.data(), n);
        m_ops.matmul(layer.up, m_xb.data(), m_up.data(), n);
        m_ops.swiglu(m_gate.data(), m_up.data(), m_gate.data(), int64_t(n) * c.ffnDim);
        m_ops.matmul(layer.down, m_gate.data(), m_xb2.data(), n);
        m_ops.add(m_x.data(), m_xb2.data(), int64_t(n) * c.dim);
    }

    // Gather the rows that need logits, then the final norm and projection.
    int rows = 0;
    offset = 0;
    for (const SequenceChunk& chunk : batch.chunks) {
        const int first = chunk.allLogits ? 0 : chunk.nTokens - 1;
        for (int i = first; i < chunk.nTokens; ++i, ++rows) {
            std::memmove(m_xb.data() + size_t(rows) * c.dim, m_x.data() + size_t(offset + i) * c.dim,
                         sizeof(float) * c.dim);
        }
        offset += chunk.nTokens;
    }
    m_ops.rmsNorm(m_xb.data(), w.outputNorm.data(), m_xb.data(), rows, c.dim, c.rmsEps);
    m_ops.matmul(w.output, m_xb.data(), m_logits.data(), rows);
    return {m_logits.data(), size_t(rows) * c.vocabSize};
}

}  // namespace pagoda

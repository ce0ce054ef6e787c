#include "engine/transformer/transformer.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <optional>

#include "engine/backend/layer_split_ops.h"
#include "engine/backend/ops.h"
#include "engine/cache/kv_budget.h"
#include "engine/model/model.h"

namespace pagoda {

Transformer::Transformer(const Model& model, Ops& ops, int maxTokens, const TransformerOptions& options)
    : m_model(model), m_ops(ops), m_maxTokens(maxTokens), m_options(options) {
    const int nLayers = model.config().nLayers;
    if (const std::optional<LayerSplit> split = ops.layerSplit()) {
        m_stages.push_back({split->first, 0, split->secondFrom, nullptr, {}});
        m_stages.push_back({split->second, split->secondFrom, nLayers, nullptr, {}});
    } else {
        m_stages.push_back({&ops, 0, nLayers, nullptr, {}});
    }
}

Transformer::~Transformer() = default;

int Transformer::slidingWindow() const {
    return m_options.slidingWindow >= 0 ? m_options.slidingWindow : m_model.config().slidingWindow;
}

int Transformer::layerWindow(int layer) const {
    const int window = slidingWindow();
    const int local = m_model.config().localWindow;
    return m_model.config().isLocalLayer(layer) && (window == 0 || local < window) ? local : window;
}

uint64_t Transformer::workspaceBytes() const { return m_activationBytes + m_ops.scratchBytes(); }

namespace {

// Every view starts on a 64-byte boundary.
size_t padded(size_t floats) { return (floats + 15) / 16 * 16; }

// Floats of each view of Activations, in its order.
std::array<size_t, 10> activationSizes(const ModelConfig& c, int maxTokens, bool withLogits = true) {
    const size_t n = size_t(maxTokens);
    return {n * c.dim,     n * c.dim,     n * c.dim,     n * c.qDim(),  n * c.kvDim(),
            n * c.kvDim(), n * c.qDim(),  n * c.ffnDim,  n * c.ffnDim,  withLogits ? n * c.vocabSize : 0};
}

uint64_t paddedFloats(const std::array<size_t, 10>& sizes) {
    uint64_t total = 0;
    for (const size_t size : sizes) total += padded(size);
    return total;
}

}  // namespace

Result<uint64_t> kvMemoryBesideActivations(Ops& ops, const Transformer* current, const ModelConfig& model,
                                           int maxTokens) {
    const bool held = current != nullptr && current->maxTokens() == maxTokens && current->activationBytesHeld() > 0;
    PAGODA_ASSIGN_OR_RETURN(const std::optional<uint64_t> limit, kvMemoryLimitFromEnvironment());
    // What `backend` has for the pool beside the activations it has still to allocate.
    auto beside = [&](Ops& backend, bool withLogits) -> Result<uint64_t> {
        PAGODA_ASSIGN_OR_RETURN(uint64_t memory, backend.kvMemoryAvailable());
        if (limit) memory = std::min(memory, *limit);
        const uint64_t activations =
            held ? 0 : paddedFloats(activationSizes(model, maxTokens, withLogits)) * sizeof(float);
        return memory > activations ? memory - activations : 0;
    };
    if (const std::optional<LayerSplit> split = ops.layerSplit()) {
        // Each backend holds its layers' share of the pool beside its own
        // activations (the logits are the second's).
        PAGODA_ASSIGN_OR_RETURN(const uint64_t first, beside(*split->first, false));
        PAGODA_ASSIGN_OR_RETURN(const uint64_t second, beside(*split->second, true));
        return LayerSplitOps::wholePoolBytes(first, second, split->secondFrom, model.nLayers);
    }
    return beside(ops, true);
}

uint64_t Transformer::activationBytes(const ModelConfig& model, int maxTokens) {
    return paddedFloats(activationSizes(model, maxTokens)) * sizeof(float);
}

Result<void> Transformer::allocate() {
    uint64_t bytes = 0;
    for (Stage& stage : m_stages) {
        const auto sizes = activationSizes(m_model.config(), m_maxTokens, &stage == &m_stages.back());
        const uint64_t total = paddedFloats(sizes);
        PAGODA_ASSIGN_OR_RETURN(stage.memory, stage.ops->allocateActivations(total));
        bytes += total * sizeof(float);
        Activations& a = stage.act;
        float* next = stage.memory->data();
        float** views[] = {&a.x, &a.xb, &a.xb2, &a.q, &a.k, &a.v, &a.att, &a.gate, &a.up, &a.logits};
        static_assert(std::size(views) == std::tuple_size_v<decltype(sizes)>);
        for (size_t i = 0; i < std::size(views); ++i) {
            *views[i] = next;
            next += padded(sizes[i]);
        }
    }
    m_activationBytes = bytes;
    return {};
}

Result<std::span<const float>> Transformer::forward(const ForwardBatch& batch, KvCache& cache) {
    const ModelConfig& c = m_model.config();
    const int n = int(batch.tokens.size());
    const bool localPools = cache.layout().localLayers() > 0;
    if (n < 1 || n > m_maxTokens || batch.slots.size() != size_t(n) ||
        batch.localSlots.size() != (localPools ? size_t(n) : 0)) {
        return fail("forward: a batch of {} tokens, {} slots and {} local-layer slots (at most {} tokens)", n,
                    batch.slots.size(), batch.localSlots.size(), m_maxTokens);
    }
    if (m_activationBytes == 0) PAGODA_RETURN_IF_ERROR(allocate());
    Stage& last = m_stages.back();
    const Activations& act = last.act;

    m_tokens = batch.tokens;
    m_slots = batch.slots;
    m_localSlots = batch.localSlots;
    m_positions.clear();
    m_sequences.clear();
    m_localSequences.clear();
    bool everyRow = true;  // every row needs logits (a decode step, or all-logits chunks)
    bool decode = true;    // every chunk one token
    for (const SequenceChunk& chunk : batch.chunks) {
        m_sequences.push_back({int(m_positions.size()), chunk.nTokens, chunk.startPos, chunk.blockTable.data()});
        if (localPools) {
            m_localSequences.push_back(
                {int(m_positions.size()), chunk.nTokens, chunk.startPos, chunk.localBlockTable.data()});
        }
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
        // The stages before the last run eagerly; the last one's step is
        // the recording.
        const bool split = m_stages.size() > 1;
        if (split) PAGODA_RETURN_IF_ERROR(runStages(m_stages.size() - 1, n, cache));
        // A recording also depends on the activations' address.
        const uint64_t variant = uint64_t(reinterpret_cast<uintptr_t>(act.x));
        const DecodeStepShape shape{m_maxTokens, c.nHeads, slidingWindow(), c.contextWithin(m_options.maxContext),
                                    variant};
        PAGODA_RETURN_IF_ERROR(last.ops->runDecodeStep(batch, shape, [&](int nRows) {
            // Padding rows: token 0 at position 0, stored nowhere, in no
            // sequence (after a split, whatever the residual stream held).
            m_tokens.resize(size_t(nRows), 0);
            m_positions.resize(size_t(nRows), 0);
            m_slots.resize(size_t(nRows), -1);
            if (localPools) m_localSlots.resize(size_t(nRows), -1);
            if (!split) embed(nRows);
            layers(last, nRows, cache);
            logits(act.x, nRows);
        }));
        PAGODA_RETURN_IF_ERROR(m_ops.status());
        return last.ops->readBack(act.logits, size_t(n) * c.vocabSize, m_logitsStaging);
    }

    PAGODA_RETURN_IF_ERROR(runStages(m_stages.size(), n, cache));
    int rows = n;
    if (everyRow) {
        logits(act.x, n);
    } else {
        // Gather the rows that need logits.
        rows = 0;
        int offset = 0;
        for (const SequenceChunk& chunk : batch.chunks) {
            const int first = chunk.allLogits ? 0 : chunk.nTokens - 1;
            const int count = chunk.nTokens - first;
            last.ops->copy(act.xb + size_t(rows) * c.dim, act.x + size_t(offset + first) * c.dim,
                           int64_t(count) * c.dim);
            rows += count;
            offset += chunk.nTokens;
        }
        logits(act.xb, rows);
    }
    PAGODA_RETURN_IF_ERROR(m_ops.status());
    return last.ops->readBack(act.logits, size_t(rows) * c.vocabSize, m_logitsStaging);
}

void Transformer::embed(int nRows) {
    Stage& first = m_stages.front();
    first.ops->embed(m_model.weights().tokenEmbedding, std::span(m_tokens).first(size_t(nRows)), first.act.x);
    const ModelConfig& c = m_model.config();
    if (c.embeddingScale != 1.0f) first.ops->scale(first.act.x, c.embeddingScale, int64_t(nRows) * c.dim);
}

Result<void> Transformer::runStages(size_t end, int nRows, KvCache& cache) {
    embed(nRows);
    for (size_t s = 0; s < end; ++s) {
        if (s > 0) PAGODA_RETURN_IF_ERROR(passResidual(s, nRows));
        layers(m_stages[s], nRows, cache);
    }
    if (end < m_stages.size()) PAGODA_RETURN_IF_ERROR(passResidual(end, nRows));
    return {};
}

Result<void> Transformer::passResidual(size_t s, int nRows) {
    const size_t floats = size_t(nRows) * size_t(m_model.config().dim);
    PAGODA_ASSIGN_OR_RETURN(const std::span<const float> x,
                            m_stages[s - 1].ops->readBack(m_stages[s - 1].act.x, floats, m_residualStaging));
    m_stages[s].ops->copyFromHost(m_stages[s].act.x, x);
    return {};
}

void Transformer::layers(Stage& stage, int n, KvCache& cache) {
    const ModelConfig& c = m_model.config();
    const ModelWeights& w = m_model.weights();
    Ops& ops = *stage.ops;
    const Activations& a = stage.act;

    // Each residual add is fused with the norm after it (Ops::addRmsNorm):
    // the FFN's norm, and the next layer's attention norm. q, k and v go
    // together (Ops::matmuls), gate and up with their SwiGLU
    // (Ops::matmulSwiglu), RoPE with the K/V store (Ops::ropeStoreKv).
    // Gemma also normalizes the attention's and the feed-forward's outputs
    // before their adds, gates with GELU, has local layers (their own window
    // and RoPE), and Gemma 2 caps its scores and logits.
    if (stage.firstLayer < stage.endLayer) {
        ops.rmsNorm(a.x, w.layers[size_t(stage.firstLayer)].attnNorm.data(), a.xb, n, c.dim, c.rmsEps);
    }
    const std::vector<float>& ropeFactors =
        c.usesLongRopeFactors(m_options.maxContext) ? w.ropeFreqsLong : w.ropeFreqs;
    for (int l = stage.firstLayer; l < stage.endLayer; ++l) {
        const LayerWeights& layer = w.layers[size_t(l)];
        const KvStorage::Part kv = cache.storage().part(l);
        const bool local = cache.layout().isLocal(l);  // in pools of their own
        const MatmulOutput qkv[] = {{&layer.wq, a.q}, {&layer.wk, a.k}, {&layer.wv, a.v}};
        ops.matmuls(qkv, a.xb, n);
        if (c.attentionBias) {
            ops.addBias(a.q, layer.bq.data(), n, c.qDim());
            ops.addBias(a.k, layer.bk.data(), n, c.kvDim());
            ops.addBias(a.v, layer.bv.data(), n, c.kvDim());
        }
        if (c.qkNorm) {  // each head of q and k is a row of headDim
            ops.rmsNorm(a.q, layer.qNorm.data(), a.q, n * c.nHeads, c.headDim, c.rmsEps);
            ops.rmsNorm(a.k, layer.kNorm.data(), a.k, n * c.nKvHeads, c.headDim, c.rmsEps);
        }
        cpu::RopeParams rope = ropeParamsForLayer(c, l);
        rope.freqFactors = ropeFactors.empty() ? nullptr : ropeFactors.data();
        ops.ropeStoreKv(*kv.storage, kv.layer, a.q, a.k, a.v, n, c.nHeads, c.nKvHeads, m_positions.data(),
                        (local ? m_localSlots : m_slots).data(), rope);

        cpu::AttentionParams attention;
        attention.q = a.q;
        attention.out = a.att;
        attention.nHeads = c.nHeads;
        attention.scale = c.attentionScale();
        attention.softcap = c.attnSoftcap;
        attention.window = layerWindow(l);
        attention.kv = kv.storage->view(kv.layer);
        attention.sequences = local ? m_localSequences : m_sequences;
        attention.algorithm = m_options.attention;
        attention.expandKv = m_options.expandKv;
        ops.attention(*kv.storage, kv.layer, attention);

        ops.matmul(layer.wo, a.att, a.xb2, n);
        if (c.postNorms) ops.rmsNorm(a.xb2, layer.postAttnNorm.data(), a.xb2, n, c.dim, c.rmsEps);
        ops.addRmsNorm(a.x, a.xb2, layer.ffnNorm.data(), a.xb, n, c.dim, c.rmsEps);

        if (c.geluFeedForward) {
            const MatmulOutput gateUp[] = {{&layer.gate, a.gate}, {&layer.up, a.up}};
            ops.matmuls(gateUp, a.xb, n);
            ops.geglu(a.gate, a.up, a.gate, int64_t(n) * c.ffnDim);
        } else {
            ops.matmulSwiglu(layer.gate, layer.up, a.xb, a.gate, a.up, n);
        }
        ops.matmul(layer.down, a.gate, a.xb2, n);
        if (c.postNorms) ops.rmsNorm(a.xb2, layer.postFfnNorm.data(), a.xb2, n, c.dim, c.rmsEps);
        if (l + 1 < stage.endLayer) {
            ops.addRmsNorm(a.x, a.xb2, w.layers[size_t(l + 1)].attnNorm.data(), a.xb, n, c.dim, c.rmsEps);
        } else {
            ops.add(a.x, a.xb2, int64_t(n) * c.dim);
        }
    }
}

void Transformer::logits(const float* x, int nRows) {
    const ModelConfig& c = m_model.config();
    const ModelWeights& w = m_model.weights();
    Stage& last = m_stages.back();
    last.ops->rmsNorm(x, w.outputNorm.data(), last.act.xb, nRows, c.dim, c.rmsEps);
    last.ops->matmul(w.output, last.act.xb, last.act.logits, nRows);
    if (c.finalSoftcap > 0) last.ops->softcap(last.act.logits, c.finalSoftcap, int64_t(nRows) * c.vocabSize);
}

}  // namespace pagoda

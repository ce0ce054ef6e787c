#pragma once
// Float64 reference transformer for tests: the llama forward pass (and its
// qwen2 and qwen3 variants) written straight from the math, one position
// and one head at a time, with its own
// scalar dequantizers. It shares no code with the engine's forward pass or
// kernels (only the GGUF reader), so the engine can be checked against it.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/result.h"
#include "engine/gguf/gguf_reader.h"
#include "kernels/dtype.h"

namespace pagoda::reference {

// Context scaling of RoPE's angles (the GGUF's rope.scaling.*).
struct ReferenceRopeScaling {
    double factor = 1.0;  // angles divided by it: all of them (linear), the slow pairs' (YaRN)
    bool yarn = false;    // pairs up to `low` keep their angle, from `high` on it is divided, linearly between
    double low = 0.0;
    double high = 0.0;
    double magnitude = 1.0;  // each rotated pair scaled by it (YaRN: attn factor * (1 + 0.1 ln factor))
};

struct ReferenceConfig {
    int dim = 0;        // embedding length
    int layerCount = 0;
    int ffnDim = 0;     // feed-forward hidden length
    int headCount = 0;
    int kvHeadCount = 0;
    int headDim = 0;
    int ropeDim = 0;    // leading dimensions of each head that RoPE rotates (even)
    int vocabSize = 0;
    double rmsEps = 1e-5;
    double ropeBase = 10000.0;
    bool neoxRope = false;  // qwen2, qwen3: rotate (i, i + ropeDim / 2), not (2i, 2i + 1)
    bool qkvBias = false;   // qwen2
    bool qkNorm = false;    // qwen3, gemma3: each head of q and k RMS-normalized before RoPE
    ReferenceRopeScaling ropeScaling;
    // gemma2 and gemma3 (HF's Gemma2 and Gemma3 text models): the embedding
    // times sqrt(dim); the attention's and the feed-forward's outputs
    // RMS-normalized before their residual adds; gelu_pytorch_tanh gating;
    // layers but every globalEvery-th local: they see the last slidingWindow
    // positions, with RoPE base localRopeBase and no scaling; scores scaled
    // by 1 / sqrt(queryScaleDim); gemma2 soft-caps the scores and the logits
    // (x -> cap tanh(x / cap)).
    bool gemma = false;
    int globalEvery = 0;
    int slidingWindow = 0;
    double localRopeBase = 10000.0;
    int queryScaleDim = 0;
    double attnSoftcap = 0.0;
    double finalSoftcap = 0.0;
};

// Matrices are row-major [out][in]: y[o] = sum_i w[o * in + i] * x[i].
struct ReferenceLayer {
    std::vector<double> attnNorm;  // [dim]
    std::vector<double> wq;        // [headCount * headDim][dim]
    std::vector<double> wk;        // [kvHeadCount * headDim][dim]
    std::vector<double> wv;        // [kvHeadCount * headDim][dim]
    std::vector<double> bq, bk, bv;  // qwen2: [headCount * headDim], [kvHeadCount * headDim] x 2
    std::vector<double> qNorm, kNorm;  // qwen3: [headDim] each
    std::vector<double> wo;        // [dim][headCount * headDim]
    std::vector<double> ffnNorm;   // [dim]
    std::vector<double> postAttnNorm, postFfnNorm;  // gemma2, gemma3: [dim] each
    std::vector<double> ffnGate;   // [ffnDim][dim]
    std::vector<double> ffnUp;     // [ffnDim][dim]
    std::vector<double> ffnDown;   // [dim][ffnDim]
};

struct ReferenceModel {
    ReferenceConfig config;
    std::vector<double> tokenEmbedding;  // [vocabSize][dim]
    std::vector<ReferenceLayer> layers;  // [layerCount]
    std::vector<double> outputNorm;      // [dim]
    std::vector<double> output;          // [vocabSize][dim]; a copy of tokenEmbedding when tied
    // [ropeDim / 2] (rope_freqs.weight, or LongRoPE's short or long factors) or empty: pair i's angle / ropeFreqs[i]
    std::vector<double> ropeFreqs;
};

class ReferenceTransformer {
public:
    // Reads an architecture "llama", "qwen2", "qwen3", "phi3", "gemma2" or "gemma3" GGUF model. Errors
    // name the missing key or tensor, the unexpected shape, or the unsupported architecture/dtype.
    // `context`: the context the model runs with (0: its context_length),
    // beyond whose original context Phi-3's LongRoPE takes its long factors.
    static Result<ReferenceTransformer> load(const gguf::GgufFile& file, int64_t context = 0);

    // The model must be consistent with its config (sizes as commented above).
    explicit ReferenceTransformer(ReferenceModel model);

    // Logits of every position of one sequence that starts at position 0:
    // [tokens.size()][vocabSize()]. Every token must be in [0, vocabSize());
    // std::out_of_range otherwise.
    std::vector<std::vector<double>> forward(const std::vector<int32_t>& tokens) const;

    int vocabSize() const { return m_model.config.vocabSize; }
    const ReferenceConfig& config() const { return m_model.config; }
    const ReferenceModel& model() const { return m_model; }

private:
    ReferenceModel m_model;
};

// Rotates the pairs (head[2i], head[2i+1]), i < ropeDim / 2, by the angle
// position * base^(-2i / ropeDim) (GGUF "normal" RoPE, as llama2.c does
// it), divided by factors[i] when factors are given (rope_freqs.weight).
void applyRope(std::span<double> head, int64_t position, int ropeDim, double base,
               std::span<const double> factors = {}, const ReferenceRopeScaling& scaling = {});
// The same angles on the pairs (head[i], head[i + ropeDim/2]) (NeoX style,
// qwen2 and qwen3).
void applyNeoxRope(std::span<double> head, int64_t position, int ropeDim, double base,
                   std::span<const double> factors = {}, const ReferenceRopeScaling& scaling = {});

// Decodes `elementCount` values of type F32, F16, BF16, Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1 (blocks of 32), Q2_K, Q3_K, Q4_K, Q5_K or Q6_K (blocks of 256) from
// `bytes`, which must hold exactly that many (a whole number of blocks).
Result<std::vector<double>> dequantize(DType type, std::span<const uint8_t> bytes, uint64_t elementCount);

}  // namespace pagoda::reference

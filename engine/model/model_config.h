#pragma once
// Hyperparameters of a LLaMA-family model, read from GGUF metadata
// ("<arch>.embedding_length", ...). Architectures: "llama" (Llama 1-3,
// TinyLlama, Mistral), "qwen2" (Q/K/V biases, NeoX-style RoPE), "qwen3"
// (NeoX-style RoPE, each head of q and k RMS-normalized before it) and
// "phi3" (Phi-3 and Phi-3.5: NeoX-style RoPE, Q/K/V in one tensor and the
// gate and up projections in another), "gemma3" (Gemma 3's text model:
// QK-norm, norms after attention and feed-forward, a GELU feed-forward, the
// embedding scaled, five local sliding-window layers to one global) and
// "gemma2" (as gemma3 without QK-norm, local and global layers alternating,
// the attention scores and the logits soft-capped).

#include <algorithm>
#include <cstdint>
#include <string>

#include "engine/core/result.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"

namespace pagoda {
namespace gguf {
class GgufFile;
}

// Context scaling of RoPE (rope.scaling.type): none, linear interpolation
// of positions, YaRN, or Phi-3's LongRoPE (tensors rope_factors_long and
// rope_factors_short, no type key): its short factors for a context up to
// the original one, its long ones beyond (usesLongRopeFactors).
enum class RopeScalingType { None, Linear, Yarn, LongRope };

struct ModelConfig {
    std::string architecture;  // general.architecture
    std::string name;          // general.name (may be empty)
    int dim = 0;               // embedding_length
    int nLayers = 0;           // block_count
    int nHeads = 0;            // attention.head_count
    int nKvHeads = 0;          // attention.head_count_kv (defaults to nHeads)
    int headDim = 0;           // attention.key_length, or dim / nHeads
    int ffnDim = 0;            // feed_forward_length
    int vocabSize = 0;         // rows of token_embd.weight
    int contextLength = 0;     // context_length
    float rmsEps = 1e-5f;      // attention.layer_norm_rms_epsilon
    float ropeBase = 10000.0f; // rope.freq_base
    int ropeDim = 0;           // rope.dimension_count (defaults to headDim)
    int slidingWindow = 0;     // attention.sliding_window; 0 = full attention
    cpu::RopeStyle ropeStyle = cpu::RopeStyle::Normal;  // qwen2: NeoX (rotate halves, HF order)
    RopeScalingType ropeScaling = RopeScalingType::None;  // rope.scaling.type (or a legacy rope.scale_linear)
    float ropeScalingFactor = 1.0f;  // rope.scaling.factor: angles interpolated by 1 / factor
    int ropeOriginalContext = 0;     // rope.scaling.original_context_length (YaRN's ramp); 0: contextLength
    float ropeAttnFactor = 1.0f;     // rope.scaling.attn_factor (YaRN's and LongRoPE's magnitude scale)
    float yarnBetaFast = 32.0f;      // rope.scaling.yarn_beta_fast, llama.cpp's default
    float yarnBetaSlow = 1.0f;       // rope.scaling.yarn_beta_slow, llama.cpp's default
    bool attentionBias = false;  // qwen2: attn_q/k/v carry bias vectors
    bool qkNorm = false;         // qwen3: attn_q_norm/attn_k_norm, RMSNorm of each head of q and k before RoPE
    // phi3: attn_qkv.weight holds the rows of Q, then K, then V;
    // ffn_up.weight those of the gate, then up.
    bool fusedProjections = false;
    // gemma2, gemma3: RMSNorm of the attention's and the feed-forward's outputs
    // (post_attention_norm, post_ffw_norm) before each residual add.
    bool postNorms = false;
    bool geluFeedForward = false;  // gemma2, gemma3: gelu(gate x) * (up x), GELU's tanh form; else SwiGLU
    float embeddingScale = 1.0f;   // gemma2, gemma3: sqrt(embedding_length)
    // gemma2, gemma3: the layers but every globalEvery-th are local: they attend to
    // the last localWindow positions (attention.sliding_window) with RoPE
    // base localRopeBase and no RoPE scaling; the global ones see the whole
    // context with the file's RoPE. 0: every layer is global.
    int globalEvery = 0;
    int localWindow = 0;
    float localRopeBase = 10000.0f;
    // The query scale's dimension, 1 / sqrt(it); 0: the head dim. Gemma 2
    // and 3 27B scale by embedding_length / head_count (llama.cpp, after
    // gemma_pytorch's config).
    int queryScaleDim = 0;
    // gemma2: scores x become cap tanh(x / cap) (attn_logit_softcapping),
    // and so do the logits (final_logit_softcapping). 0: not capped.
    float attnSoftcap = 0.0f;
    float finalSoftcap = 0.0f;
    bool tiedOutput = false;   // no output.weight: logits use token_embd.weight
    int32_t bos = -1;          // tokenizer.ggml.bos_token_id
    int32_t eos = -1;          // tokenizer.ggml.eos_token_id

    int qDim() const { return nHeads * headDim; }    // width of the Q projection
    // A context asked for (> 0) up to the model's; the model's for 0.
    int contextWithin(int asked) const { return asked > 0 ? std::min(asked, contextLength) : contextLength; }
    int kvDim() const { return nKvHeads * headDim; } // width of the K and V projections
    float attentionScale() const;                     // 1 / sqrt(queryScaleDim or headDim)
    // A local layer of the pattern above (cpu::layerWindow's rule; with
    // globalEvery 0 no layer is local).
    bool isLocalLayer(int layer) const {
        return globalEvery > 0 && cpu::layerWindow({localWindow, globalEvery}, layer) > 0;
    }
    // Whether LongRoPE runs with its long factors for a context of `context`
    // positions (contextWithin): beyond the original context, as llama.cpp
    // chooses by its context size (llama_model::get_rope_factors).
    bool usesLongRopeFactors(int context) const {
        return ropeScaling == RopeScalingType::LongRope && contextWithin(context) > ropeOriginalContext;
    }
};

// RoPE's parameters for the model (without rope_freqs.weight, which the
// weights hold): base, style and the context scaling, with YaRN's ramp
// (corrLow/corrHigh, from the original context and the betas, as llama.cpp's
// ggml_rope_yarn_corr_dims) and magnitude (attn factor * (1 + 0.1 ln factor)).
cpu::RopeParams ropeParamsFor(const ModelConfig& config);
// The RoPE of one layer: ropeParamsFor, or for a local layer
// (isLocalLayer) the local base without scaling.
cpu::RopeParams ropeParamsForLayer(const ModelConfig& config, int layer);

// Reads and validates the config (every count positive, heads dividing,
// head dim even, within sane limits). Unknown architectures and missing
// required keys are errors naming the key.
Result<ModelConfig> readModelConfig(const gguf::GgufFile& file);

}  // namespace pagoda

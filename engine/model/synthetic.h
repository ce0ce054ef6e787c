#pragma once
// Synthetic models: seeded random weights in the shapes of real models,
// written as ordinary GGUF files with a real SentencePiece tokenizer
// section, so they load here and in other GGUF tools. Weights are scaled so
// activations stay finite and logits are not flat.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"
#include "kernels/dtype.h"

namespace pagoda {
namespace gguf {
class GgufWriter;
}

struct SyntheticSpec {
    std::string name = "custom";
    // or "qwen2" (Q/K/V biases, NeoX RoPE) or "qwen3" (NeoX RoPE, QK-norm
    // weights drawn around 1) or "phi3" (NeoX RoPE, attn_qkv and a fused
    // gate/up ffn_up) or "gemma3" (QK-norm and post-norm weights drawn
    // around 1, attention.sliding_window for its local layers) or "gemma2"
    // (post-norms, the window, soft-capping)
    std::string architecture = "llama";
    int dim = 64;
    int nLayers = 2;
    int nHeads = 4;
    int nKvHeads = 4;
    int headDim = 0;  // 0: dim / nHeads; else written as attention.key_length (Qwen3's 128 at any dim)
    int ffnDim = 192;
    int vocabSize = 512;
    int contextLength = 512;
    float ropeBase = 10000.0f;
    int slidingWindow = 0;  // gemma2, gemma3: their local layers' window (0: 512)
    float attnSoftcap = 50.0f;   // gemma2: attn_logit_softcapping
    float finalSoftcap = 30.0f;  // gemma2: final_logit_softcapping
    bool tiedOutput = true;
    // Writes rope_freqs.weight (RoPE's per-pair frequency divisors, as Llama
    // 3.1 and later files carry): seeded random divisors in [1, 4], for tests.
    bool ropeFreqFactors = false;
    // "", "linear" or "yarn": rope.scaling.* keys, factor 4 (YaRN's original
    // context a quarter of contextLength), for tests. "longrope": Phi-3's
    // (rope_factors_long/short.weight, seeded random in [1, 8] and [1, 2];
    // the original context a quarter of contextLength; attn_factor as its
    // converter computes it).
    std::string ropeScaling;
    DType dtype = DType::F32;  // of the weight matrices; norms stay f32
    std::string chatTemplate;  // written as tokenizer.chat_template when not empty
    uint64_t seed = 42;

    uint64_t parameterCount() const;
    int headSize() const { return headDim > 0 ? headDim : dim / nHeads; }
};

// tiny, small, 1b, 7b, 8b-gqa, 7b-mqa, qwen3-0.6b, phi3-mini, gemma3-1b, gemma2-2b
std::optional<SyntheticSpec> syntheticPreset(std::string_view name);
std::vector<std::string> syntheticPresetNames();

// Checks the dims (heads dividing, block sizes of the dtype, vocab large
// enough for the tokenizer's special and byte tokens).
Result<void> validateSpec(const SyntheticSpec& spec);

// Called with (bytes written, total bytes) while tensor data is generated.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// True stops writing a model (GgufWriter::writeFile).
using CancelFn = std::function<bool()>;

// A writer holding the model's metadata and tensor generators.
Result<gguf::GgufWriter> syntheticModelWriter(const SyntheticSpec& spec, ProgressFn progress = {});
Result<void> writeSyntheticModel(const SyntheticSpec& spec, const std::filesystem::path& path,
                                 ProgressFn progress = {}, const CancelFn& cancelled = {});

// The embedded default model: the `small` preset in F16, created on first use
// under $XDG_CACHE_HOME/pagoda/models (or ~/.cache/pagoda/models).
std::filesystem::path defaultModelPath();
Result<std::filesystem::path> ensureDefaultModel(ProgressFn progress = {}, const CancelFn& cancelled = {});

}  // namespace pagoda

#pragma once
// A loaded model: the memory-mapped GGUF, its config, views of its weight
// matrices (read in place from the mapping), small norm vectors as f32, and
// the tokenizer when the file carries one.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/core/result.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/model/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/cpu/matmul.h"

namespace pagoda {

using cpu::WeightMatrix;

struct LayerWeights {
    std::vector<float> attnNorm;  // [dim]
    WeightMatrix wq;              // [qDim rows][dim]
    WeightMatrix wk;              // [kvDim rows][dim]
    WeightMatrix wv;              // [kvDim rows][dim]
    std::vector<float> bq;        // [qDim]; empty without attention biases
    std::vector<float> bk;        // [kvDim]; empty without attention biases
    std::vector<float> bv;        // [kvDim]; empty without attention biases
    std::vector<float> qNorm;     // [headDim]; empty without QK-norm
    std::vector<float> kNorm;     // [headDim]; empty without QK-norm
    WeightMatrix wo;              // [dim rows][qDim]
    std::vector<float> postAttnNorm;  // [dim]; empty without post-norms (Gemma's post_attention_norm)
    std::vector<float> ffnNorm;   // [dim]
    std::vector<float> postFfnNorm;   // [dim]; empty without post-norms (Gemma's post_ffw_norm)
    WeightMatrix gate;            // [ffnDim rows][dim]
    WeightMatrix up;              // [ffnDim rows][dim]
    WeightMatrix down;            // [dim rows][ffnDim]
};

struct ModelWeights {
    WeightMatrix tokenEmbedding;   // [vocab rows][dim]
    std::vector<float> outputNorm; // [dim]
    std::vector<float> ropeFreqs;  // [ropeDim / 2]: rope_freqs.weight, RoPE's frequency divisors; empty without
    // LongRoPE: ropeFreqs holds rope_factors_short.weight, this
    // rope_factors_long.weight (ModelConfig::usesLongRopeFactors); else empty.
    std::vector<float> ropeFreqsLong;
    WeightMatrix output;           // [vocab rows][dim]; the embedding when tied
    std::vector<LayerWeights> layers;
};

class Model {
public:
    static Result<std::unique_ptr<Model>> load(const std::filesystem::path& path);
    // Takes an already opened file (tests build models in memory).
    static Result<std::unique_ptr<Model>> fromFile(gguf::GgufFile file);

    const ModelConfig& config() const { return m_config; }
    const ModelWeights& weights() const { return m_weights; }
    const gguf::GgufFile& file() const { return m_file; }
    // The file's bytes into anonymous memory at the same addresses
    // (gguf::GgufFile::copyToMemory): all of them, or with cpuLayers >= 0
    // those of the tensors of layers [0, cpuLayers) (the CPU's side of a
    // split), widened to 2 MiB boundaries. Call before anything runs the
    // model. bytesToCopy: what it will copy.
    Result<void> copyWeightsToMemory(int cpuLayers = -1);
    uint64_t bytesToCopy(int cpuLayers = -1) const;
    uint64_t weightBytesInMemory() const { return m_file.bytesInMemory(); }
    // Null when the file has no tokenizer.ggml.* section.
    const Tokenizer* tokenizer() const { return m_tokenizer.get(); }

    // Bytes of all tensor data in the file.
    uint64_t weightBytes() const;
    // Bytes of weights one decode step streams from memory: every layer
    // matrix and the output matrix (norms and one embedding row are noise).
    uint64_t bytesPerDecodeStep() const;
    // "q8_0" when all layer matrices share one type, else "mixed".
    std::string weightTypeName() const;

private:
    // Byte ranges of the file copyWeightsToMemory(cpuLayers) copies, merged, in order.
    std::vector<std::pair<uint64_t, uint64_t>> copyRanges(int cpuLayers) const;

    explicit Model(gguf::GgufFile file) : m_file(std::move(file)) {}

    gguf::GgufFile m_file;
    ModelConfig m_config;
    ModelWeights m_weights;
    std::unique_ptr<Tokenizer> m_tokenizer;
};

}  // namespace pagoda

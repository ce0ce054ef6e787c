#include "engine/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "engine/gguf/gguf_reader.h"

namespace pagoda {
namespace {

constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxContext = 1 << 24;

Result<int> readCount(const gguf::GgufFile& file, const std::string& key, int64_t limit) {
    PAGODA_ASSIGN_OR_RETURN(int64_t value, file.getInt(key));
    if (value < 1 || value > limit) return fail("key '{}': value {} outside [1, {}]", key, value, limit);
    return int(value);
}

Result<int> readOptionalCount(const gguf::GgufFile& file, const std::string& key, int fallback, int64_t limit) {
    if (file.find(key) == nullptr) return fallback;
    return readCount(file, key, limit);
}

Result<float> readPositive(const gguf::GgufFile& file, const std::string& key, float fallback, double limit) {
    if (file.find(key) == nullptr) return fallback;
    PAGODA_ASSIGN_OR_RETURN(const double value, file.getFloat(key));
    if (!(value > 0 && value <= limit)) return fail("key '{}': value {} outside (0, {}]", key, value, limit);
    return float(value);
}

// rope.scaling.type none|linear|yarn with its factor, or the legacy
// rope.scale_linear; another type (longrope, ...) is an error naming it.
// Phi-3's LongRoPE has no type key: llama.cpp's converter writes its factor
// tensors, the original context and the attn factor.
Result<void> readRopeScaling(const gguf::GgufFile& file, const std::string& p, ModelConfig& config) {
    if (file.findTensor("rope_factors_long.weight") != nullptr ||
        file.findTensor("rope_factors_short.weight") != nullptr) {
        config.ropeScaling = RopeScalingType::LongRope;
        if (file.find(p + "rope.scaling.original_context_length") == nullptr) {
            return fail("LongRoPE (tensors 'rope_factors_long/short.weight') without the key "
                        "'{}rope.scaling.original_context_length'",
                        p);
        }
        PAGODA_ASSIGN_OR_RETURN(config.ropeOriginalContext,
                                readCount(file, p + "rope.scaling.original_context_length", kMaxContext));
        PAGODA_ASSIGN_OR_RETURN(config.ropeAttnFactor, readPositive(file, p + "rope.scaling.attn_factor", 1.0f, 100));
        return {};
    }
    std::string type = "none";
    if (file.find(p + "rope.scaling.type") != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(type, file.getString(p + "rope.scaling.type"));
    } else if (file.find(p + "rope.scale_linear") != nullptr) {
        type = "linear";
    }
    if (type == "none") return {};
    if (type != "linear" && type != "yarn") {
        return fail("key '{}rope.scaling.type': '{}' is not supported (none, linear or yarn)", p, type);
    }
    config.ropeScaling = type == "linear" ? RopeScalingType::Linear : RopeScalingType::Yarn;
    const std::string factorKey =
        file.find(p + "rope.scaling.factor") != nullptr ? p + "rope.scaling.factor" : p + "rope.scale_linear";
    PAGODA_ASSIGN_OR_RETURN(config.ropeScalingFactor, readPositive(file, factorKey, 1.0f, 1024));
    if (file.find(p + "rope.scaling.original_context_length") != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(config.ropeOriginalContext,
                                readCount(file, p + "rope.scaling.original_context_length", kMaxContext));
    }
    PAGODA_ASSIGN_OR_RETURN(config.ropeAttnFactor, readPositive(file, p + "rope.scaling.attn_factor", 1.0f, 100));
    PAGODA_ASSIGN_OR_RETURN(config.yarnBetaFast, readPositive(file, p + "rope.scaling.yarn_beta_fast", 32.0f, 1e6));
    PAGODA_ASSIGN_OR_RETURN(config.yarnBetaSlow, readPositive(file, p + "rope.scaling.yarn_beta_slow", 1.0f, 1e6));
    return {};
}

}  // namespace

float ModelConfig::attentionScale() const {
    return 1.0f / std::sqrt(float(queryScaleDim > 0 ? queryScaleDim : headDim));
}

cpu::RopeParams ropeParamsForLayer(const ModelConfig& c, int layer) {
    if (!c.isLocalLayer(layer)) return ropeParamsFor(c);
    return cpu::RopeParams{c.headDim, c.ropeDim, c.localRopeBase, c.ropeStyle};
}

cpu::RopeParams ropeParamsFor(const ModelConfig& c) {
    cpu::RopeParams rope{c.headDim, c.ropeDim, c.ropeBase, c.ropeStyle};
    if (c.ropeScaling == RopeScalingType::None) return rope;
    RopeScaling& s = rope.scaling;
    s.freqScale = 1.0f / c.ropeScalingFactor;
    s.mscale = c.ropeAttnFactor;
    if (c.ropeScaling == RopeScalingType::Yarn) {
        // The pair whose wavelength fits `rotations` times in the original
        // context (llama.cpp's ggml_rope_yarn_corr_dim).
        const double original = double(c.ropeOriginalContext > 0 ? c.ropeOriginalContext : c.contextLength);
        auto pairFor = [&](double rotations) {
            return c.ropeDim * std::log(original / (rotations * 2 * std::numbers::pi)) /
                   (2 * std::log(double(c.ropeBase)));
        };
        s.extFactor = 1.0f;
        s.corrLow = float(std::max(0.0, std::floor(pairFor(c.yarnBetaFast))));
        s.corrHigh = float(std::min(double(c.ropeDim - 1), std::ceil(pairFor(c.yarnBetaSlow))));
        s.mscale *= 1.0f + 0.1f * std::log(c.ropeScalingFactor);
    }
    return rope;
}

Result<ModelConfig> readModelConfig(const gguf::GgufFile& file) {
    ModelConfig config;
    auto arch = file.getString("general.architecture");
    if (!arch) return std::unexpected(arch.error());
    if (*arch != "llama" && *arch != "qwen2" && *arch != "qwen3" && *arch != "phi3" && *arch != "gemma2" &&
        *arch != "gemma3") {
        return fail("unsupported architecture '{}' (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3)", *arch);
    }
    config.architecture = *arch;
    const bool gemma3 = config.architecture == "gemma3";
    const bool gemma = gemma3 || config.architecture == "gemma2";
    if (config.architecture != "llama") config.ropeStyle = cpu::RopeStyle::NeoX;
    config.attentionBias = config.architecture == "qwen2";
    config.qkNorm = config.architecture == "qwen3" || gemma3;
    config.fusedProjections = config.architecture == "phi3";
    config.postNorms = gemma;
    config.geluFeedForward = gemma;
    if (auto name = file.getString("general.name")) config.name = *name;

    const std::string p = config.architecture + ".";
    if (file.find(p + "expert_count") != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(const int64_t experts, file.getInt(p + "expert_count"));
        if (experts > 0) {
            return fail("a mixture-of-experts model ({} experts per layer, '{}expert_count') is not supported", experts,
                        p);
        }
    }
    PAGODA_ASSIGN_OR_RETURN(config.dim, readCount(file, p + "embedding_length", kMaxDim));
    PAGODA_ASSIGN_OR_RETURN(config.nLayers, readCount(file, p + "block_count", kMaxLayers));
    PAGODA_ASSIGN_OR_RETURN(config.ffnDim, readCount(file, p + "feed_forward_length", 4 * kMaxDim));
    PAGODA_ASSIGN_OR_RETURN(config.nHeads, readCount(file, p + "attention.head_count", kMaxDim));
    PAGODA_ASSIGN_OR_RETURN(config.nKvHeads,
                            readOptionalCount(file, p + "attention.head_count_kv", config.nHeads, kMaxDim));
    PAGODA_ASSIGN_OR_RETURN(config.contextLength, readCount(file, p + "context_length", kMaxContext));

    if (config.dim % config.nHeads != 0 && file.find(p + "attention.key_length") == nullptr) {
        return fail("embedding_length {} is not a multiple of head_count {}", config.dim, config.nHeads);
    }
    PAGODA_ASSIGN_OR_RETURN(config.headDim,
                            readOptionalCount(file, p + "attention.key_length", config.dim / config.nHeads, 1024));
    if (config.headDim % 2 != 0) return fail("head dimension {} is odd (RoPE needs pairs)", config.headDim);
    if (config.nHeads % config.nKvHeads != 0) {
        return fail("head_count {} is not a multiple of head_count_kv {}", config.nHeads, config.nKvHeads);
    }
    PAGODA_ASSIGN_OR_RETURN(config.ropeDim,
                            readOptionalCount(file, p + "rope.dimension_count", config.headDim, config.headDim));
    if (config.ropeDim % 2 != 0) return fail("rope.dimension_count {} is odd", config.ropeDim);

    if (file.find(p + "attention.layer_norm_rms_epsilon")) {
        PAGODA_ASSIGN_OR_RETURN(double eps, file.getFloat(p + "attention.layer_norm_rms_epsilon"));
        if (!(eps > 0 && eps < 1)) return fail("key '{}attention.layer_norm_rms_epsilon': value {} outside (0, 1)", p, eps);
        config.rmsEps = float(eps);
    }
    if (file.find(p + "rope.freq_base")) {
        PAGODA_ASSIGN_OR_RETURN(double base, file.getFloat(p + "rope.freq_base"));
        if (!(base > 1 && base < 1e12)) return fail("key '{}rope.freq_base': value {} outside (1, 1e12)", p, base);
        config.ropeBase = float(base);
    }
    PAGODA_RETURN_IF_ERROR(readRopeScaling(file, p, config));
    // Phi-3's files carry a sliding window that llama.cpp ignores, since its
    // converters do not write which layers have one (ggml-org/llama.cpp#13676);
    // so does Pagoda, to match. Gemma's is its local layers' (llama.cpp's
    // hparams): Gemma 3 has every 6th layer global and the local ones at RoPE
    // base 10000 without scaling, its 27B (62 layers) scales queries by dim /
    // heads; Gemma 2 alternates local and global layers at one RoPE base, its
    // 27B (46 layers) scales queries so too, and it soft-caps the scores
    // (50) and the logits (30) unless the file says otherwise.
    if (gemma) {
        PAGODA_ASSIGN_OR_RETURN(config.localWindow, readCount(file, p + "attention.sliding_window", kMaxContext));
        config.globalEvery = gemma3 ? 6 : 2;
        config.localRopeBase = gemma3 ? 10000.0f : config.ropeBase;
        config.embeddingScale = std::sqrt(float(config.dim));
        if (config.nLayers == (gemma3 ? 62 : 46)) config.queryScaleDim = config.dim / config.nHeads;
        if (!gemma3) {
            PAGODA_ASSIGN_OR_RETURN(config.attnSoftcap, readPositive(file, p + "attn_logit_softcapping", 50.0f, 1e6));
            PAGODA_ASSIGN_OR_RETURN(config.finalSoftcap,
                                    readPositive(file, p + "final_logit_softcapping", 30.0f, 1e6));
        }
    } else if (file.find(p + "attention.sliding_window") && config.architecture != "phi3") {
        PAGODA_ASSIGN_OR_RETURN(config.slidingWindow, readCount(file, p + "attention.sliding_window", kMaxContext));
    }

    const gguf::TensorInfo* embedding = file.findTensor("token_embd.weight");
    if (embedding == nullptr) return fail("missing tensor 'token_embd.weight'");
    if (embedding->dims.size() != 2 || embedding->dims[0] != uint64_t(config.dim)) {
        return fail("tensor 'token_embd.weight': expected dims [{}, vocab]", config.dim);
    }
    if (embedding->dims[1] > uint64_t(1 << 22)) return fail("vocabulary size {} exceeds {}", embedding->dims[1], 1 << 22);
    config.vocabSize = int(embedding->dims[1]);
    config.tiedOutput = file.findTensor("output.weight") == nullptr;

    auto readTokenId = [&](const char* key, int32_t& out) -> Result<void> {
        if (file.find(key) == nullptr) return {};
        PAGODA_ASSIGN_OR_RETURN(int64_t id, file.getInt(key));
        if (id == -1 || id == int64_t(UINT32_MAX)) return {};  // the "no token" sentinel
        if (id < 0 || id >= config.vocabSize) return fail("key '{}': token id {} outside [0, {})", key, id, config.vocabSize);
        out = int32_t(id);
        return {};
    };
    PAGODA_RETURN_IF_ERROR(readTokenId("tokenizer.ggml.bos_token_id", config.bos));
    PAGODA_RETURN_IF_ERROR(readTokenId("tokenizer.ggml.eos_token_id", config.eos));
    return config;
}

}  // namespace pagoda

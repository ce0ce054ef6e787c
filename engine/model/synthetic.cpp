#include "engine/model/synthetic.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "engine/gguf/gguf_writer.h"
#include "kernels/cpu/matmul.h"

namespace pagoda {
namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t hashName(std::string_view name) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
    for (char c : name) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
    return h;
}

// Uniform in [-amplitude, amplitude]: variance amplitude^2 / 3.
void fillUniform(float* out, int64_t n, uint64_t seed, float amplitude) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t bits = splitmix64(state);
        const float u = float(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
        out[i] = (2.0f * u - 1.0f) * amplitude;
    }
}

// Matrix [rows][cols] with entries of standard deviation `sigma`, each row
// generated from its own seed so that threads give the same bytes.
gguf::TensorFill matrixFill(DType type, int64_t rows, int64_t cols, uint64_t seed, float sigma,
                            std::function<void(uint64_t)> advance) {
    return [=](std::span<uint8_t> out) {
        const size_t rowSize = rowBytes(type, cols);
        const int nThreads = int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 16));
        std::atomic<int64_t> next{0};
        auto worker = [&] {
            std::vector<float> row(cols);
            for (int64_t r; (r = next.fetch_add(64)) < rows;) {
                const int64_t end = std::min(rows, r + 64);
                for (; r < end; ++r) {
                    fillUniform(row.data(), cols, seed ^ (uint64_t(r) * 0x9e3779b97f4a7c15ull), sigma * std::sqrt(3.0f));
                    cpu::quantizeRow(type, row.data(), out.data() + size_t(r) * rowSize, cols);
                }
            }
        };
        std::vector<std::thread> threads;
        for (int t = 1; t < nThreads; ++t) threads.emplace_back(worker);
        worker();
        for (std::thread& t : threads) t.join();
        if (advance) advance(out.size());
    };
}

// A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then
// pieces of increasing length over printable ASCII and lowercase letters,
// with and without the "▁" word-start marker. Every piece's prefixes are in
// the vocabulary, so BPE merges can reach it.
struct SyntheticVocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
};

// general.file_type: llama.cpp's llama_ftype for a model whose matrices are
// all `type` (LLAMA_FTYPE_MOSTLY_*; K-quants as their "_S" variant, Q2_K
// as plain Q2_K: its "_S" came later, as 21).
uint32_t fileTypeOf(DType type) {
    switch (type) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 11;
    case DType::Q4_K: return 14;
    case DType::Q5_K: return 16;
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default: return 0;
    }
}

SyntheticVocab makeVocab(int size) {
    SyntheticVocab v;
    auto add = [&](std::string token, int32_t type) {
        if (int(v.tokens.size()) >= size) return;
        v.scores.push_back(type == 1 ? -float(v.tokens.size()) : 0.0f);
        v.tokens.push_back(std::move(token));
        v.types.push_back(type);
    };
    add("<unk>", 2);
    add("<s>", 3);
    add("</s>", 3);
    for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 6);
    const std::string marker = "\xE2\x96\x81";  // U+2581
    add(marker, 1);
    for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), 1);
    for (char c = '!'; c <= '~'; ++c) add(marker + c, 1);
    std::vector<std::string> level = {""};
    for (int length = 1; int(v.tokens.size()) < size; ++length) {
        std::vector<std::string> longer;
        for (const std::string& stem : level) {
            for (char c = 'a'; c <= 'z'; ++c) longer.push_back(stem + c);
        }
        if (length >= 2) {
            for (const std::string& s : longer) {
                add(marker + s, 1);
                add(s, 1);
            }
        }
        level = std::move(longer);
    }
    return v;
}

}  // namespace

uint64_t SyntheticSpec::parameterCount() const {
    const uint64_t headDim = uint64_t(headSize());
    const uint64_t perLayer = uint64_t(dim) * headDim * (2 * nHeads + 2 * nKvHeads) + 3ull * dim * ffnDim + 2ull * dim;
    return uint64_t(vocabSize) * dim * (tiedOutput ? 1 : 2) + uint64_t(nLayers) * perLayer + dim;
}

std::optional<SyntheticSpec> syntheticPreset(std::string_view name) {
    SyntheticSpec s;
    s.name = std::string(name);
    if (name == "tiny") {
        s.dim = 64, s.nLayers = 2, s.nHeads = 4, s.nKvHeads = 2, s.ffnDim = 192, s.vocabSize = 512;
        s.contextLength = 512;
    } else if (name == "small") {  // llama2.c stories110M
        s.dim = 768, s.nLayers = 12, s.nHeads = 12, s.nKvHeads = 12, s.ffnDim = 2048, s.vocabSize = 32000;
        s.contextLength = 1024;
    } else if (name == "1b") {  // Llama-3.2-1B
        s.dim = 2048, s.nLayers = 16, s.nHeads = 32, s.nKvHeads = 8, s.ffnDim = 8192, s.vocabSize = 128256;
        s.contextLength = 8192, s.ropeBase = 500000.0f;
    } else if (name == "7b") {  // Llama-2-7B (MHA)
        s.dim = 4096, s.nLayers = 32, s.nHeads = 32, s.nKvHeads = 32, s.ffnDim = 11008, s.vocabSize = 32000;
        s.contextLength = 4096, s.tiedOutput = false;
    } else if (name == "8b-gqa") {  // Llama-3-8B (GQA 4:1)
        s.dim = 4096, s.nLayers = 32, s.nHeads = 32, s.nKvHeads = 8, s.ffnDim = 14336, s.vocabSize = 128256;
        s.contextLength = 8192, s.ropeBase = 500000.0f, s.tiedOutput = false;
    } else if (name == "7b-mqa") {  // Llama-2-7B shape with one KV head
        s.dim = 4096, s.nLayers = 32, s.nHeads = 32, s.nKvHeads = 1, s.ffnDim = 11008, s.vocabSize = 32000;
        s.contextLength = 4096, s.tiedOutput = false;
    } else if (name == "qwen3-0.6b") {  // Qwen3-0.6B: heads of 128 at dim 1024, QK-norm
        s.architecture = "qwen3";
        s.dim = 1024, s.nLayers = 28, s.nHeads = 16, s.nKvHeads = 8, s.headDim = 128, s.ffnDim = 3072;
        s.vocabSize = 151936, s.contextLength = 40960, s.ropeBase = 1e6f;
    } else if (name == "gemma3-1b") {  // Gemma 3 1B: heads of 256, MQA, 5 local layers to 1 global
        s.architecture = "gemma3";
        s.dim = 1152, s.nLayers = 26, s.nHeads = 4, s.nKvHeads = 1, s.headDim = 256, s.ffnDim = 6912;
        s.vocabSize = 262144, s.contextLength = 32768, s.ropeBase = 1e6f, s.slidingWindow = 512;
    } else if (name == "gemma2-2b") {  // Gemma 2 2B: heads of 256, GQA 2:1, local and global layers alternating
        s.architecture = "gemma2";
        s.dim = 2304, s.nLayers = 26, s.nHeads = 8, s.nKvHeads = 4, s.headDim = 256, s.ffnDim = 9216;
        s.vocabSize = 256000, s.contextLength = 8192, s.slidingWindow = 4096;
    } else if (name == "phi3-mini") {  // Phi-3-mini-4k-instruct: fused Q/K/V and gate/up
        s.architecture = "phi3";
        s.dim = 3072, s.nLayers = 32, s.nHeads = 32, s.nKvHeads = 32, s.ffnDim = 8192, s.vocabSize = 32064;
        s.contextLength = 4096, s.tiedOutput = false;
    } else {
        return std::nullopt;
    }
    return s;
}

std::vector<std::string> syntheticPresetNames() {
    return {"tiny", "small", "1b", "7b", "8b-gqa", "7b-mqa", "qwen3-0.6b", "phi3-mini", "gemma3-1b", "gemma2-2b"};
}

Result<void> validateSpec(const SyntheticSpec& s) {
    if (s.dim < 2 || s.nLayers < 1 || s.nHeads < 1 || s.nKvHeads < 1 || s.ffnDim < 1 || s.contextLength < 1) {
        return fail("model dims must be positive (dim {}, layers {}, heads {}, kv heads {}, ffn {}, context {})", s.dim,
                    s.nLayers, s.nHeads, s.nKvHeads, s.ffnDim, s.contextLength);
    }
    if (s.headDim < 0 || (s.headDim > 0 && s.headDim % 2 != 0)) {
        return fail("head dimension {}: 0 (dim / heads) or even", s.headDim);
    }
    if (s.headDim == 0 && (s.dim % s.nHeads != 0 || (s.dim / s.nHeads) % 2 != 0)) {
        return fail("dim {} must be heads {} times an even head dimension", s.dim, s.nHeads);
    }
    if (s.nHeads % s.nKvHeads != 0) return fail("heads {} must be a multiple of kv heads {}", s.nHeads, s.nKvHeads);
    if (s.vocabSize < 400 || s.vocabSize > (1 << 22)) {
        return fail("vocab {} outside [400, {}] (the tokenizer needs its special and byte tokens)", s.vocabSize, 1 << 22);
    }
    if (!isComputeSupported(s.dtype)) return fail("weight type {} is not supported", dtypeName(s.dtype));
    if (!s.ropeScaling.empty() && s.ropeScaling != "linear" && s.ropeScaling != "yarn" && s.ropeScaling != "longrope") {
        return fail("RoPE scaling '{}' (linear, yarn or longrope)", s.ropeScaling);
    }
    if (s.architecture != "llama" && s.architecture != "qwen2" && s.architecture != "qwen3" &&
        s.architecture != "phi3" && s.architecture != "gemma2" && s.architecture != "gemma3") {
        return fail("architecture '{}' (llama, qwen2, qwen3, phi3, gemma2 or gemma3)", s.architecture);
    }
    const uint32_t block = dtypeInfo(s.dtype).blockElements;
    const int64_t qDim = int64_t(s.headSize()) * s.nHeads;
    for (int64_t cols : {int64_t(s.dim), int64_t(s.ffnDim), qDim}) {
        if (cols % block != 0) {
            return fail("row length {} is not a multiple of the {} block size {}", cols, dtypeName(s.dtype), block);
        }
    }
    return {};
}

Result<gguf::GgufWriter> syntheticModelWriter(const SyntheticSpec& s, ProgressFn progress) {
    PAGODA_RETURN_IF_ERROR(validateSpec(s));
    gguf::GgufWriter writer;
    const int headDim = s.headSize();
    const std::string p = s.architecture + ".";
    writer.set("general.architecture", s.architecture);
    writer.set("general.name", fmt::format("pagoda-synthetic-{}", s.name));
    writer.set("general.description",
               "Pagoda synthetic model: seeded random weights in a real model's shape; it writes random text");
    writer.set("general.file_type", fileTypeOf(s.dtype));
    writer.set("pagoda.synthetic.seed", uint64_t(s.seed));
    writer.set(p + "context_length", uint32_t(s.contextLength));
    writer.set(p + "embedding_length", uint32_t(s.dim));
    writer.set(p + "block_count", uint32_t(s.nLayers));
    writer.set(p + "feed_forward_length", uint32_t(s.ffnDim));
    writer.set(p + "rope.dimension_count", uint32_t(headDim));
    if (s.headDim > 0) {
        writer.set(p + "attention.key_length", uint32_t(headDim));
        writer.set(p + "attention.value_length", uint32_t(headDim));
    }
    writer.set(p + "attention.head_count", uint32_t(s.nHeads));
    writer.set(p + "attention.head_count_kv", uint32_t(s.nKvHeads));
    writer.set(p + "attention.layer_norm_rms_epsilon", 1e-5f);
    writer.set(p + "rope.freq_base", s.ropeBase);
    const bool gemma = s.architecture == "gemma2" || s.architecture == "gemma3";
    if (gemma) writer.set(p + "attention.sliding_window", uint32_t(s.slidingWindow > 0 ? s.slidingWindow : 512));
    if (s.architecture == "gemma2") {
        writer.set(p + "attn_logit_softcapping", s.attnSoftcap);
        writer.set(p + "final_logit_softcapping", s.finalSoftcap);
    }
    if (s.ropeScaling == "longrope") {
        // llama.cpp's converter: sqrt(1 + ln(scale) / ln(original)), scale = context / original.
        const int original = std::max(2, s.contextLength / 4);
        writer.set(p + "rope.scaling.original_context_length", uint32_t(original));
        writer.set(p + "rope.scaling.attn_factor",
                   float(std::sqrt(1.0 + std::log(double(s.contextLength) / original) / std::log(double(original)))));
    } else if (!s.ropeScaling.empty()) {
        writer.set(p + "rope.scaling.type", s.ropeScaling);
        writer.set(p + "rope.scaling.factor", 4.0f);
        if (s.ropeScaling == "yarn") {
            writer.set(p + "rope.scaling.original_context_length", uint32_t(std::max(1, s.contextLength / 4)));
        }
    }
    writer.set(p + "vocab_size", uint32_t(s.vocabSize));

    SyntheticVocab vocab = makeVocab(s.vocabSize);
    writer.set("tokenizer.ggml.model", "llama");
    writer.set("tokenizer.ggml.tokens", gguf::makeArray(vocab.tokens));
    writer.set("tokenizer.ggml.scores", gguf::makeArray(vocab.scores));
    writer.set("tokenizer.ggml.token_type", gguf::makeArray(vocab.types));
    writer.set("tokenizer.ggml.unknown_token_id", uint32_t(0));
    writer.set("tokenizer.ggml.bos_token_id", uint32_t(1));
    writer.set("tokenizer.ggml.eos_token_id", uint32_t(2));
    writer.set("tokenizer.ggml.add_bos_token", true);
    writer.set("tokenizer.ggml.add_eos_token", false);
    writer.set("tokenizer.ggml.add_space_prefix", true);
    if (!s.chatTemplate.empty()) writer.set("tokenizer.chat_template", s.chatTemplate);

    // Total bytes, for progress reports.
    auto matrixSize = [&](int64_t rows, int64_t cols) { return uint64_t(rows) * rowBytes(s.dtype, cols); };
    const uint64_t perLayer = matrixSize(s.nHeads * headDim, s.dim) * 2 + matrixSize(s.nKvHeads * headDim, s.dim) * 2 +
                              matrixSize(s.ffnDim, s.dim) * 3;
    const uint64_t total = matrixSize(s.vocabSize, s.dim) * (s.tiedOutput ? 1 : 2) + perLayer * s.nLayers;
    auto done = std::make_shared<std::atomic<uint64_t>>(0);
    auto advance = [done, total, progress](uint64_t bytes) {
        const uint64_t now = done->fetch_add(bytes) + bytes;
        if (progress) progress(now, total);
    };

    auto addMatrix = [&](const std::string& name, int64_t rows, int64_t cols, float sigma) {
        writer.addTensor(name, {uint64_t(cols), uint64_t(rows)}, s.dtype,
                         matrixFill(s.dtype, rows, cols, s.seed ^ hashName(name), sigma, advance));
    };
    auto addVector = [&](const std::string& name, int n, float center, float spread = 0.3f) {
        std::vector<float> values(n);
        fillUniform(values.data(), n, s.seed ^ hashName(name), spread);
        for (float& v : values) v += center;
        std::vector<uint8_t> bytes(sizeof(float) * n);
        std::memcpy(bytes.data(), values.data(), bytes.size());
        writer.addTensor(name, {uint64_t(n)}, DType::F32, std::move(bytes));
    };
    auto addNorm = [&](const std::string& name) {
        std::vector<uint8_t> ones(sizeof(float) * s.dim);
        const float one = 1.0f;
        for (int i = 0; i < s.dim; ++i) std::memcpy(ones.data() + sizeof(float) * i, &one, sizeof(float));
        writer.addTensor(name, {uint64_t(s.dim)}, DType::F32, std::move(ones));
    };

    // Logit spread: unit-RMS hidden state times rows of std 2.5/sqrt(dim)
    // gives logits of std ~2.5, far from flat.
    const float outputSigma = 2.5f / std::sqrt(float(s.dim));
    addMatrix("token_embd.weight", s.vocabSize, s.dim, s.tiedOutput ? outputSigma : 1.0f);
    addNorm("output_norm.weight");
    if (s.ropeFreqFactors) addVector("rope_freqs.weight", headDim / 2, 2.5f, 1.5f);
    if (s.ropeScaling == "longrope") {
        addVector("rope_factors_long.weight", headDim / 2, 4.5f, 3.5f);
        addVector("rope_factors_short.weight", headDim / 2, 1.5f, 0.5f);
    }
    if (!s.tiedOutput) addMatrix("output.weight", s.vocabSize, s.dim, outputSigma);
    const float inSigma = 1.0f / std::sqrt(float(s.dim));
    const float ffnSigma = 1.0f / std::sqrt(float(s.ffnDim));
    for (int l = 0; l < s.nLayers; ++l) {
        const std::string b = fmt::format("blk.{}.", l);
        addNorm(b + "attn_norm.weight");
        const bool fused = s.architecture == "phi3";
        if (fused) {
            addMatrix(b + "attn_qkv.weight", (s.nHeads + 2 * s.nKvHeads) * headDim, s.dim, inSigma);
        } else {
            addMatrix(b + "attn_q.weight", s.nHeads * headDim, s.dim, inSigma);
            addMatrix(b + "attn_k.weight", s.nKvHeads * headDim, s.dim, inSigma);
            addMatrix(b + "attn_v.weight", s.nKvHeads * headDim, s.dim, inSigma);
        }
        if (s.architecture == "qwen2") {
            addVector(b + "attn_q.bias", s.nHeads * headDim, 0.0f);
            addVector(b + "attn_k.bias", s.nKvHeads * headDim, 0.0f);
            addVector(b + "attn_v.bias", s.nKvHeads * headDim, 0.0f);
        }
        if (s.architecture == "qwen3" || s.architecture == "gemma3") {
            addVector(b + "attn_q_norm.weight", headDim, 1.0f);
            addVector(b + "attn_k_norm.weight", headDim, 1.0f);
        }
        if (gemma) {
            addVector(b + "post_attention_norm.weight", s.dim, 1.0f);
            addVector(b + "post_ffw_norm.weight", s.dim, 1.0f);
        }
        addMatrix(b + "attn_output.weight", s.dim, s.nHeads * headDim, 1.0f / std::sqrt(float(s.nHeads * headDim)));
        addNorm(b + "ffn_norm.weight");
        if (fused) {
            addMatrix(b + "ffn_up.weight", 2 * s.ffnDim, s.dim, inSigma);  // the gate's rows, then up's
        } else {
            addMatrix(b + "ffn_gate.weight", s.ffnDim, s.dim, inSigma);
            addMatrix(b + "ffn_up.weight", s.ffnDim, s.dim, inSigma);
        }
        addMatrix(b + "ffn_down.weight", s.dim, s.ffnDim, ffnSigma);
    }
    return writer;
}

Result<void> writeSyntheticModel(const SyntheticSpec& spec, const std::filesystem::path& path, ProgressFn progress,
                                 const CancelFn& cancelled) {
    PAGODA_ASSIGN_OR_RETURN(gguf::GgufWriter writer, syntheticModelWriter(spec, std::move(progress)));
    return writer.writeFile(path, cancelled);
}

std::filesystem::path defaultModelPath() {
    std::filesystem::path cache;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
        cache = xdg;
    } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
        cache = std::filesystem::path(home) / ".cache";
    } else {
        cache = std::filesystem::temp_directory_path();
    }
    return cache / "pagoda" / "models" / "default-small-f16.gguf";
}

Result<std::filesystem::path> ensureDefaultModel(ProgressFn progress, const CancelFn& cancelled) {
    const std::filesystem::path path = defaultModelPath();
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path;
    SyntheticSpec spec = *syntheticPreset("small");
    spec.dtype = DType::F16;
    PAGODA_RETURN_IF_ERROR(writeSyntheticModel(spec, path, std::move(progress), cancelled));
    return path;
}

}  // namespace pagoda

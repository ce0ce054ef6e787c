#include "engine/model/model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include <fmt/ranges.h>

#include "kernels/half.h"

namespace pagoda {
namespace {

Result<const gguf::TensorInfo*> findTensor(const gguf::GgufFile& file, const std::string& name) {
    const gguf::TensorInfo* tensor = file.findTensor(name);
    if (tensor == nullptr) return fail("missing tensor '{}'", name);
    return tensor;
}

std::string dimsText(const std::vector<uint64_t>& dims) {
    return fmt::format("[{}]", fmt::join(dims, ", "));
}

// A [rows][cols] matrix stored with GGUF dims [cols, rows].
Result<WeightMatrix> bindMatrix(const gguf::GgufFile& file, const std::string& name, int64_t rows, int64_t cols) {
    PAGODA_ASSIGN_OR_RETURN(const gguf::TensorInfo* tensor, findTensor(file, name));
    if (tensor->dims.size() != 2 || tensor->dims[0] != uint64_t(cols) || tensor->dims[1] != uint64_t(rows)) {
        return fail("tensor '{}': dims {} but the config needs [{}, {}]", name, dimsText(tensor->dims), cols, rows);
    }
    if (!isComputeSupported(tensor->type)) {
        return fail("tensor '{}': weight type {} is not supported (supported: {})", name, dtypeName(tensor->type),
                    computeSupportedNames());
    }
    return WeightMatrix{tensor->type, file.tensorData(*tensor).data(), rows, cols};
}

Result<std::vector<float>> readVector(const gguf::GgufFile& file, const std::string& name, int64_t n) {
    PAGODA_ASSIGN_OR_RETURN(const gguf::TensorInfo* tensor, findTensor(file, name));
    if (tensor->dims.size() != 1 || tensor->dims[0] != uint64_t(n)) {
        return fail("tensor '{}': dims {} but the config needs [{}]", name, dimsText(tensor->dims), n);
    }
    std::vector<float> values(n);
    const uint8_t* data = file.tensorData(*tensor).data();
    switch (tensor->type) {
    case DType::F32:
        std::memcpy(values.data(), data, n * sizeof(float));
        break;
    case DType::F16:
    case DType::BF16:
        for (int64_t i = 0; i < n; ++i) {
            uint16_t bits;
            std::memcpy(&bits, data + 2 * i, 2);
            values[i] = tensor->type == DType::F16 ? halfToFloat(bits) : bf16ToFloat(bits);
        }
        break;
    default:
        return fail("tensor '{}': type {} for a norm vector (expected f32, f16 or bf16)", name,
                    dtypeName(tensor->type));
    }
    return values;
}

// Rows [first, first + count) of `m`: a view into the same bytes.
WeightMatrix rowsOf(const WeightMatrix& m, int64_t first, int64_t count) {
    WeightMatrix rows = m;
    rows.data = static_cast<const uint8_t*>(m.data) + uint64_t(first) * rowBytes(m.type, size_t(m.cols));
    rows.rows = count;
    return rows;
}

Result<ModelWeights> bindWeights(const gguf::GgufFile& file, const ModelConfig& c) {
    ModelWeights w;
    PAGODA_ASSIGN_OR_RETURN(w.tokenEmbedding, bindMatrix(file, "token_embd.weight", c.vocabSize, c.dim));
    PAGODA_ASSIGN_OR_RETURN(w.outputNorm, readVector(file, "output_norm.weight", c.dim));
    // LongRoPE divides the angles by its short or its long factors, as
    // rope_freqs does by its own.
    const auto readFactors = [&](const char* name, std::vector<float>& factors) -> Result<void> {
        PAGODA_ASSIGN_OR_RETURN(factors, readVector(file, name, c.ropeDim / 2));
        for (const float f : factors) {
            if (!(f > 0 && f < 1e6f)) return fail("tensor '{}': factor {} outside (0, 1e6)", name, f);
        }
        return {};
    };
    if (c.ropeScaling == RopeScalingType::LongRope) {
        PAGODA_RETURN_IF_ERROR(readFactors("rope_factors_short.weight", w.ropeFreqs));
        PAGODA_RETURN_IF_ERROR(readFactors("rope_factors_long.weight", w.ropeFreqsLong));
    } else if (file.findTensor("rope_freqs.weight") != nullptr) {
        PAGODA_RETURN_IF_ERROR(readFactors("rope_freqs.weight", w.ropeFreqs));
    }
    if (c.tiedOutput) {
        w.output = w.tokenEmbedding;
    } else {
        PAGODA_ASSIGN_OR_RETURN(w.output, bindMatrix(file, "output.weight", c.vocabSize, c.dim));
    }
    w.layers.resize(c.nLayers);
    for (int l = 0; l < c.nLayers; ++l) {
        const std::string p = fmt::format("blk.{}.", l);
        LayerWeights& layer = w.layers[l];
        PAGODA_ASSIGN_OR_RETURN(layer.attnNorm, readVector(file, p + "attn_norm.weight", c.dim));
        if (c.fusedProjections) {
            PAGODA_ASSIGN_OR_RETURN(const WeightMatrix qkv,
                                    bindMatrix(file, p + "attn_qkv.weight", c.qDim() + 2 * c.kvDim(), c.dim));
            layer.wq = rowsOf(qkv, 0, c.qDim());
            layer.wk = rowsOf(qkv, c.qDim(), c.kvDim());
            layer.wv = rowsOf(qkv, c.qDim() + c.kvDim(), c.kvDim());
        } else {
            PAGODA_ASSIGN_OR_RETURN(layer.wq, bindMatrix(file, p + "attn_q.weight", c.qDim(), c.dim));
            PAGODA_ASSIGN_OR_RETURN(layer.wk, bindMatrix(file, p + "attn_k.weight", c.kvDim(), c.dim));
            PAGODA_ASSIGN_OR_RETURN(layer.wv, bindMatrix(file, p + "attn_v.weight", c.kvDim(), c.dim));
        }
        if (c.attentionBias) {
            PAGODA_ASSIGN_OR_RETURN(layer.bq, readVector(file, p + "attn_q.bias", c.qDim()));
            PAGODA_ASSIGN_OR_RETURN(layer.bk, readVector(file, p + "attn_k.bias", c.kvDim()));
            PAGODA_ASSIGN_OR_RETURN(layer.bv, readVector(file, p + "attn_v.bias", c.kvDim()));
        }
        if (c.qkNorm) {
            PAGODA_ASSIGN_OR_RETURN(layer.qNorm, readVector(file, p + "attn_q_norm.weight", c.headDim));
            PAGODA_ASSIGN_OR_RETURN(layer.kNorm, readVector(file, p + "attn_k_norm.weight", c.headDim));
        }
        PAGODA_ASSIGN_OR_RETURN(layer.wo, bindMatrix(file, p + "attn_output.weight", c.dim, c.qDim()));
        PAGODA_ASSIGN_OR_RETURN(layer.ffnNorm, readVector(file, p + "ffn_norm.weight", c.dim));
        if (c.postNorms) {
            PAGODA_ASSIGN_OR_RETURN(layer.postAttnNorm, readVector(file, p + "post_attention_norm.weight", c.dim));
            PAGODA_ASSIGN_OR_RETURN(layer.postFfnNorm, readVector(file, p + "post_ffw_norm.weight", c.dim));
        }
        if (c.fusedProjections) {
            PAGODA_ASSIGN_OR_RETURN(const WeightMatrix gateUp,
                                    bindMatrix(file, p + "ffn_up.weight", 2 * c.ffnDim, c.dim));
            layer.gate = rowsOf(gateUp, 0, c.ffnDim);
            layer.up = rowsOf(gateUp, c.ffnDim, c.ffnDim);
        } else {
            PAGODA_ASSIGN_OR_RETURN(layer.gate, bindMatrix(file, p + "ffn_gate.weight", c.ffnDim, c.dim));
            PAGODA_ASSIGN_OR_RETURN(layer.up, bindMatrix(file, p + "ffn_up.weight", c.ffnDim, c.dim));
        }
        PAGODA_ASSIGN_OR_RETURN(layer.down, bindMatrix(file, p + "ffn_down.weight", c.dim, c.ffnDim));
    }
    return w;
}

uint64_t matrixBytes(const WeightMatrix& m) { return uint64_t(m.rows) * rowBytes(m.type, m.cols); }

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& path) {
    auto file = gguf::GgufFile::open(path);
    if (!file) return std::unexpected(file.error());
    auto model = fromFile(std::move(*file));
    if (!model) return std::unexpected(withContext(path.string(), model.error()));
    return model;
}

Result<std::unique_ptr<Model>> Model::fromFile(gguf::GgufFile file) {
    std::unique_ptr<Model> model(new Model(std::move(file)));
    PAGODA_ASSIGN_OR_RETURN(model->m_config, readModelConfig(model->m_file));
    PAGODA_ASSIGN_OR_RETURN(model->m_weights, bindWeights(model->m_file, model->m_config));
    if (model->m_file.find("tokenizer.ggml.model") != nullptr) {
        PAGODA_ASSIGN_OR_RETURN(Vocab vocab, loadVocab(model->m_file));
        if (vocab.size() != model->m_config.vocabSize) {
            return fail("tokenizer has {} tokens but token_embd.weight has {} rows", vocab.size(),
                        model->m_config.vocabSize);
        }
        PAGODA_ASSIGN_OR_RETURN(model->m_tokenizer, createTokenizer(std::move(vocab)));
    }
    return model;
}

uint64_t Model::weightBytes() const {
    uint64_t total = 0;
    for (const gguf::TensorInfo& t : m_file.tensors()) total += t.byteSize;
    return total;
}

uint64_t Model::bytesPerDecodeStep() const {
    uint64_t total = matrixBytes(m_weights.output);
    for (const LayerWeights& l : m_weights.layers) {
        for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) total += matrixBytes(*m);
    }
    return total;
}

std::vector<std::pair<uint64_t, uint64_t>> Model::copyRanges(int cpuLayers) const {
    const uint64_t size = m_file.fileSize();
    if (cpuLayers < 0) return {{0, size}};
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const gguf::TensorInfo& t : m_file.tensors()) {
        int layer = -1;
        if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) != 1 || layer < 0 || layer >= cpuLayers) continue;
        constexpr uint64_t kGranule = gguf::kCopyGranule;  // copyToMemory copies whole granules
        const uint64_t begin = m_file.dataOffset() + t.offset;
        ranges.emplace_back(begin / kGranule * kGranule,
                            std::min(size, (begin + t.byteSize + kGranule - 1) / kGranule * kGranule));
    }
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint64_t, uint64_t>> merged;
    for (const auto& range : ranges) {
        if (!merged.empty() && range.first <= merged.back().second) {
            merged.back().second = std::max(merged.back().second, range.second);
        } else {
            merged.push_back(range);
        }
    }
    return merged;
}

uint64_t Model::bytesToCopy(int cpuLayers) const {
    uint64_t bytes = 0;
    for (const auto& [begin, end] : copyRanges(cpuLayers)) bytes += end - begin;
    return bytes;
}

Result<void> Model::copyWeightsToMemory(int cpuLayers) {
    for (const auto& [begin, end] : copyRanges(cpuLayers)) PAGODA_RETURN_IF_ERROR(m_file.copyToMemory(begin, end));
    return {};
}

std::string Model::weightTypeName() const {
    std::set<DType> types;
    for (const LayerWeights& l : m_weights.layers) {
        for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) types.insert(m->type);
    }
    return types.size() == 1 ? std::string(dtypeName(*types.begin())) : "mixed";
}

}  // namespace pagoda

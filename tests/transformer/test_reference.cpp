// Self-test of the float64 reference transformer: tiny hand-built models
// whose logits follow from the math by hand, structural properties
// (causality, RoPE, GQA mapping), its dequantizers, and a golden greedy
// decode of the real stories260K model.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "kernels/half.h"
#include "tests/transformer/reference_transformer.h"

namespace pagoda::reference {
namespace {

struct TensorSpec {
    std::string name;
    std::vector<uint64_t> dims;  // ne0 first
    std::vector<float> values;
    DType type = DType::F32;
};

struct TinyConfig {
    int dim = 16;
    int layerCount = 1;
    int ffnDim = 24;
    int headCount = 4;
    int kvHeadCount = 4;
    int vocabSize = 11;
    bool tied = false;
};

struct TinyModel {
    std::string architecture = "llama";
    TinyConfig config;
    float ropeBase = 10000.0f;
    std::vector<TensorSpec> tensors;

    TensorSpec& tensor(const std::string& name) {
        return const_cast<TensorSpec&>(std::as_const(*this).tensor(name));
    }
    const TensorSpec& tensor(const std::string& name) const {
        auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorSpec& t) { return t.name == name; });
        if (it == tensors.end()) throw std::invalid_argument("test model has no tensor " + name);
        return *it;
    }
    void erase(const std::string& name) {
        std::erase_if(tensors, [&](const TensorSpec& t) { return t.name == name; });
    }
};

// Weights are q / 64 with integer q in [-8, 7]: exact in F16, BF16, Q8_0 and
// Q4_0 (scale 1/64), so a model converted to those types must give the same
// logits as its F32 original.
constexpr float kWeightScale = 1.0f / 64.0f;
constexpr float kRmsEps = 1e-5f;

TinyModel randomModel(const TinyConfig& config, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> quantum(-8, 7);
    auto randomTensor = [&](std::string name, std::vector<uint64_t> dims) {
        uint64_t count = 1;
        for (uint64_t d : dims) count *= d;
        std::vector<float> values(count);
        for (float& v : values) v = float(quantum(rng)) * kWeightScale;
        return TensorSpec{std::move(name), std::move(dims), std::move(values)};
    };
    auto normTensor = [&](std::string name, uint64_t dim) {
        TensorSpec t = randomTensor(std::move(name), {dim});
        for (float& v : t.values) v = 1.0f + v;
        return t;
    };
    const uint64_t d = uint64_t(config.dim);
    const uint64_t headDim = d / uint64_t(config.headCount);
    const uint64_t qDim = uint64_t(config.headCount) * headDim;
    const uint64_t kvDim = uint64_t(config.kvHeadCount) * headDim;
    const uint64_t ffn = uint64_t(config.ffnDim);
    const uint64_t vocab = uint64_t(config.vocabSize);

    TinyModel model;
    model.config = config;
    model.tensors.push_back(randomTensor("token_embd.weight", {d, vocab}));
    // Embeddings scaled up so that the residual stream dominates the blocks' contributions.
    for (float& v : model.tensors.back().values) v *= 16.0f;
    model.tensors.push_back(normTensor("output_norm.weight", d));
    if (!config.tied) model.tensors.push_back(randomTensor("output.weight", {d, vocab}));
    for (int i = 0; i < config.layerCount; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        model.tensors.push_back(normTensor(p + "attn_norm.weight", d));
        model.tensors.push_back(randomTensor(p + "attn_q.weight", {d, qDim}));
        model.tensors.push_back(randomTensor(p + "attn_k.weight", {d, kvDim}));
        model.tensors.push_back(randomTensor(p + "attn_v.weight", {d, kvDim}));
        model.tensors.push_back(randomTensor(p + "attn_output.weight", {qDim, d}));
        model.tensors.push_back(normTensor(p + "ffn_norm.weight", d));
        model.tensors.push_back(randomTensor(p + "ffn_gate.weight", {d, ffn}));
        model.tensors.push_back(randomTensor(p + "ffn_up.weight", {d, ffn}));
        model.tensors.push_back(randomTensor(p + "ffn_down.weight", {ffn, d}));
    }
    return model;
}

// Encodes values of the form q / 64 (see kWeightScale) in `type`.
std::vector<uint8_t> encode(const std::vector<float>& values, DType type) {
    std::vector<uint8_t> bytes;
    auto push16 = [&](uint16_t v) {
        bytes.push_back(uint8_t(v & 0xff));
        bytes.push_back(uint8_t(v >> 8));
    };
    switch (type) {
        case DType::F32:
            bytes.resize(values.size() * 4);
            std::memcpy(bytes.data(), values.data(), bytes.size());
            break;
        case DType::F16:
            for (float v : values) push16(floatToHalf(v));
            break;
        case DType::BF16:
            for (float v : values) push16(uint16_t(std::bit_cast<uint32_t>(v) >> 16));
            break;
        case DType::Q8_0:
            for (size_t b = 0; b < values.size(); b += 32) {
                push16(floatToHalf(kWeightScale));
                for (size_t j = 0; j < 32; ++j) bytes.push_back(uint8_t(int8_t(std::lround(values[b + j] / kWeightScale))));
            }
            break;
        case DType::Q4_0:
            for (size_t b = 0; b < values.size(); b += 32) {
                push16(floatToHalf(kWeightScale));
                for (size_t j = 0; j < 16; ++j) {
                    const long low = std::lround(values[b + j] / kWeightScale) + 8;
                    const long high = std::lround(values[b + j + 16] / kWeightScale) + 8;
                    bytes.push_back(uint8_t(low | high << 4));
                }
            }
            break;
        default: ADD_FAILURE() << "no test encoder for " << dtypeName(type);
    }
    return bytes;
}

std::vector<uint8_t> toGguf(const TinyModel& model) {
    gguf::GgufWriter writer;
    const TinyConfig& c = model.config;
    writer.set("general.architecture", model.architecture);
    writer.set("llama.embedding_length", uint32_t(c.dim));
    writer.set("llama.block_count", uint32_t(c.layerCount));
    writer.set("llama.feed_forward_length", uint32_t(c.ffnDim));
    writer.set("llama.attention.head_count", uint32_t(c.headCount));
    writer.set("llama.attention.head_count_kv", uint32_t(c.kvHeadCount));
    writer.set("llama.attention.layer_norm_rms_epsilon", kRmsEps);
    writer.set("llama.rope.freq_base", model.ropeBase);
    for (const TensorSpec& t : model.tensors) writer.addTensor(t.name, t.dims, t.type, encode(t.values, t.type));
    Result<std::vector<uint8_t>> bytes = writer.writeToMemory();
    EXPECT_TRUE(bytes.has_value()) << bytes.error().message;
    return bytes ? std::move(*bytes) : std::vector<uint8_t>{};
}

Result<ReferenceTransformer> loadModel(const TinyModel& model) {
    const std::vector<uint8_t> bytes = toGguf(model);
    Result<gguf::GgufFile> file = gguf::GgufFile::parse(bytes);
    if (!file) return std::unexpected(file.error());
    return ReferenceTransformer::load(*file);
}

// Throws so that the test fails with the loader's message.
ReferenceTransformer loadOrFail(const TinyModel& model) {
    Result<ReferenceTransformer> reference = loadModel(model);
    if (!reference) throw std::runtime_error(reference.error().message);
    return std::move(*reference);
}

double maxAbsDifference(const std::vector<double>& a, const std::vector<double>& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0.0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    return worst;
}

const std::vector<int32_t> kTokens = {3, 1, 4, 1, 5, 9, 2, 6};

// With every attention and FFN weight zero the blocks add nothing, so
// logits = Woutput · (rmsnorm(embedding) * output_norm).
void expectLogitsOfNormedEmbedding(bool tied) {
    TinyConfig config;
    config.layerCount = 2;
    config.tied = tied;
    TinyModel model = randomModel(config, 7);
    for (TensorSpec& t : model.tensors) {
        if (t.name.starts_with("blk.") && t.dims.size() == 2) std::fill(t.values.begin(), t.values.end(), 0.0f);
    }
    const ReferenceTransformer reference = loadOrFail(model);
    ASSERT_EQ(reference.vocabSize(), config.vocabSize);

    const std::vector<float>& embedding = model.tensor("token_embd.weight").values;
    const std::vector<float>& output = model.tensor(tied ? "token_embd.weight" : "output.weight").values;
    const std::vector<float>& outputNorm = model.tensor("output_norm.weight").values;
    const size_t dim = size_t(config.dim);
    const std::vector<std::vector<double>> logits = reference.forward(kTokens);
    ASSERT_EQ(logits.size(), kTokens.size());
    for (size_t t = 0; t < kTokens.size(); ++t) {
        const float* e = &embedding[size_t(kTokens[t]) * dim];
        double meanSquare = 0.0;
        for (size_t i = 0; i < dim; ++i) meanSquare += double(e[i]) * double(e[i]) / double(dim);
        std::vector<double> expected(size_t(config.vocabSize), 0.0);
        for (size_t o = 0; o < expected.size(); ++o) {
            for (size_t i = 0; i < dim; ++i) {
                expected[o] += double(output[o * dim + i]) * double(e[i]) / std::sqrt(meanSquare + double(kRmsEps)) *
                               double(outputNorm[i]);
            }
        }
        EXPECT_LT(maxAbsDifference(logits[t], expected), 1e-12) << "position " << t;
    }
}

TEST(ReferenceTransformer, ZeroBlocksGiveOutputOfNormedEmbedding) { expectLogitsOfNormedEmbedding(false); }

TEST(ReferenceTransformer, MissingOutputIsTiedToEmbedding) { expectLogitsOfNormedEmbedding(true); }

TEST(ReferenceTransformer, IsCausal) {
    TinyConfig config;
    config.layerCount = 2;
    const ReferenceTransformer reference = loadOrFail(randomModel(config, 11));
    const std::vector<int32_t> other = {3, 1, 7, 0, 8, 2, 10, 4};
    const std::vector<std::vector<double>> a = reference.forward(kTokens);
    const std::vector<std::vector<double>> b = reference.forward(other);
    EXPECT_EQ(a[0], b[0]);
    EXPECT_EQ(a[1], b[1]);
    EXPECT_GT(maxAbsDifference(a[2], b[2]), 1e-3);
    // A prefix gives the same logits as the full sequence at its positions.
    const std::vector<std::vector<double>> prefix = reference.forward({3, 1, 4});
    for (size_t t = 0; t < prefix.size(); ++t) EXPECT_EQ(prefix[t], a[t]);
}

TEST(ReferenceTransformer, RopeOnlyActsAfterPositionZero) {
    TinyConfig config;
    config.layerCount = 2;
    TinyModel model = randomModel(config, 13);
    const ReferenceTransformer standard = loadOrFail(model);
    model.ropeBase = 50.0f;
    const ReferenceTransformer otherBase = loadOrFail(model);
    const std::vector<std::vector<double>> a = standard.forward(kTokens);
    const std::vector<std::vector<double>> b = otherBase.forward(kTokens);
    EXPECT_EQ(a[0], b[0]);
    EXPECT_GT(maxAbsDifference(a[3], b[3]), 1e-6);
}

TEST(Rope, RotatesConsecutivePairs) {
    std::vector<double> head = {1.0, 2.0, 3.0, -4.0, 5.0, 6.0};
    const std::vector<double> original = head;
    applyRope(head, 0, 4, 10000.0);
    EXPECT_EQ(head, original);

    applyRope(head, 3, 4, 10000.0);
    const double angle0 = 3.0;
    const double angle1 = 3.0 / 100.0;  // 3 * 10000^(-2/4)
    EXPECT_NEAR(head[0], 1.0 * std::cos(angle0) - 2.0 * std::sin(angle0), 1e-14);
    EXPECT_NEAR(head[1], 1.0 * std::sin(angle0) + 2.0 * std::cos(angle0), 1e-14);
    EXPECT_NEAR(head[2], 3.0 * std::cos(angle1) + 4.0 * std::sin(angle1), 1e-14);
    EXPECT_NEAR(head[3], 3.0 * std::sin(angle1) - 4.0 * std::cos(angle1), 1e-14);
    EXPECT_EQ(head[4], 5.0);  // past rope_dim: untouched
    EXPECT_EQ(head[5], 6.0);
}

TEST(Rope, NeoxRotatesTheTwoHalves) {
    std::vector<double> head = {1.0, 3.0, 2.0, -4.0, 5.0, 6.0};  // pairs (1, 2) and (3, -4)
    applyNeoxRope(head, 0, 4, 10000.0);
    EXPECT_EQ(head, (std::vector<double>{1.0, 3.0, 2.0, -4.0, 5.0, 6.0}));
    applyNeoxRope(head, 3, 4, 10000.0);
    const double angle0 = 3.0;
    const double angle1 = 3.0 / 100.0;
    EXPECT_NEAR(head[0], 1.0 * std::cos(angle0) - 2.0 * std::sin(angle0), 1e-14);
    EXPECT_NEAR(head[2], 1.0 * std::sin(angle0) + 2.0 * std::cos(angle0), 1e-14);
    EXPECT_NEAR(head[1], 3.0 * std::cos(angle1) + 4.0 * std::sin(angle1), 1e-14);
    EXPECT_NEAR(head[3], 3.0 * std::sin(angle1) - 4.0 * std::cos(angle1), 1e-14);
    EXPECT_EQ(head[4], 5.0);  // past rope_dim: untouched
    EXPECT_EQ(head[5], 6.0);
}

TEST(Rope, FrequencyFactorsDivideEachPairsAngle) {
    const std::vector<double> factors = {2.0, 8.0};
    for (const bool neox : {false, true}) {
        std::vector<double> head = {1.0, 2.0, 3.0, -4.0};
        if (neox) {
            applyNeoxRope(head, 5, 4, 10000.0, factors);
        } else {
            applyRope(head, 5, 4, 10000.0, factors);
        }
        const double angle0 = 5.0 / 2.0;
        const double angle1 = 5.0 / 100.0 / 8.0;
        const size_t a0 = 0, b0 = neox ? 2 : 1, a1 = neox ? 1 : 2, b1 = 3;
        const double x0 = neox ? 1.0 : 1.0, y0 = neox ? 3.0 : 2.0, x1 = neox ? 2.0 : 3.0, y1 = -4.0;
        EXPECT_NEAR(head[a0], x0 * std::cos(angle0) - y0 * std::sin(angle0), 1e-14) << neox;
        EXPECT_NEAR(head[b0], x0 * std::sin(angle0) + y0 * std::cos(angle0), 1e-14) << neox;
        EXPECT_NEAR(head[a1], x1 * std::cos(angle1) - y1 * std::sin(angle1), 1e-14) << neox;
        EXPECT_NEAR(head[b1], x1 * std::sin(angle1) + y1 * std::cos(angle1), 1e-14) << neox;
    }
}

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
    auto score = [](int64_t queryPosition, int64_t keyPosition) {
        std::vector<double> q = {0.3, -1.2, 0.7, 2.0, -0.4, 0.9, 1.1, -0.6};
        std::vector<double> k = {1.5, 0.2, -0.8, 0.4, 0.6, -1.0, 0.3, 0.5};
        applyRope(q, queryPosition, 8, 10000.0);
        applyRope(k, keyPosition, 8, 10000.0);
        double dot = 0.0;
        for (size_t i = 0; i < q.size(); ++i) dot += q[i] * k[i];
        return dot;
    };
    EXPECT_NEAR(score(5, 2), score(105, 102), 1e-12);
    EXPECT_NEAR(score(7, 7), score(0, 0), 1e-12);
    EXPECT_GT(std::abs(score(5, 2) - score(5, 3)), 1e-6);
}

// A model whose KV heads are copies must equal its grouped-query original;
// copies laid out as [k0, k0, k1, k1] test that query head h reads KV head
// h / (heads / kv_heads), not h % kv_heads.
TinyModel replicateKvHeads(const TinyModel& grouped, const std::vector<int>& sourceHead) {
    TinyModel replicated = grouped;
    replicated.config.kvHeadCount = int(sourceHead.size());
    const size_t dim = size_t(grouped.config.dim);
    const size_t headDim = dim / size_t(grouped.config.headCount);
    for (int i = 0; i < grouped.config.layerCount; ++i) {
        for (const char* kind : {"attn_k", "attn_v"}) {
            const std::string name = "blk." + std::to_string(i) + "." + kind + ".weight";
            const std::vector<float>& source = grouped.tensor(name).values;
            TensorSpec& target = replicated.tensor(name);
            target.dims = {dim, sourceHead.size() * headDim};
            target.values.clear();
            for (int head : sourceHead) {
                const auto first = source.begin() + ptrdiff_t(size_t(head) * headDim * dim);
                target.values.insert(target.values.end(), first, first + ptrdiff_t(headDim * dim));
            }
        }
    }
    return replicated;
}

TEST(ReferenceTransformer, GroupedQueryAttentionMatchesReplicatedHeads) {
    for (int kvHeadCount : {1, 2}) {
        TinyConfig config;
        config.layerCount = 2;
        config.kvHeadCount = kvHeadCount;
        const TinyModel grouped = randomModel(config, 17);
        std::vector<int> copies;
        std::vector<int> interleaved;
        for (int h = 0; h < config.headCount; ++h) {
            copies.push_back(h / (config.headCount / kvHeadCount));
            interleaved.push_back(h % kvHeadCount);
        }
        const std::vector<std::vector<double>> expected = loadOrFail(grouped).forward(kTokens);
        const std::vector<std::vector<double>> actual = loadOrFail(replicateKvHeads(grouped, copies)).forward(kTokens);
        for (size_t t = 0; t < kTokens.size(); ++t) {
            EXPECT_LT(maxAbsDifference(actual[t], expected[t]), 1e-12) << "kv heads " << kvHeadCount << ", position " << t;
        }
        if (kvHeadCount == 2) {
            const std::vector<std::vector<double>> wrong =
                loadOrFail(replicateKvHeads(grouped, interleaved)).forward(kTokens);
            EXPECT_GT(maxAbsDifference(wrong.back(), expected.back()), 1e-6);
        }
    }
}

TEST(Dequantize, DecodesEachFormat) {
    const std::vector<uint8_t> f16 = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0xff, 0x7b, 0x00, 0x04, 0x00, 0x7c};
    Result<std::vector<double>> values = dequantize(DType::F16, f16, 6);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ(*values, (std::vector<double>{1.0, -2.0, std::ldexp(1.0, -24), 65504.0, std::ldexp(1.0, -14),
                                             std::numeric_limits<double>::infinity()}));

    const std::vector<uint8_t> bf16 = {0x80, 0x3f, 0xa0, 0xc0};
    values = dequantize(DType::BF16, bf16, 2);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ(*values, (std::vector<double>{1.0, -5.0}));

    std::vector<uint8_t> q8 = {0x00, 0x38};  // d = 0.5
    for (int j = 0; j < 32; ++j) q8.push_back(uint8_t(int8_t(j - 16)));
    values = dequantize(DType::Q8_0, q8, 32);
    ASSERT_TRUE(values) << values.error().message;
    for (int j = 0; j < 32; ++j) EXPECT_EQ((*values)[size_t(j)], 0.5 * (j - 16)) << j;

    std::vector<uint8_t> q4 = {0x00, 0x40};  // d = 2
    for (int j = 0; j < 16; ++j) q4.push_back(uint8_t(j | (15 - j) << 4));
    values = dequantize(DType::Q4_0, q4, 32);
    ASSERT_TRUE(values) << values.error().message;
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ((*values)[size_t(j)], 2.0 * (j - 8)) << j;
        EXPECT_EQ((*values)[size_t(j + 16)], 2.0 * (7 - j)) << j;
    }

    // Q5_1: d = 2, m = -1, qh = 0x80000001 (bit 4 of elements 0 and 31).
    std::vector<uint8_t> q51 = {0x00, 0x40, 0x00, 0xbc, 0x01, 0x00, 0x00, 0x80};
    for (int j = 0; j < 16; ++j) q51.push_back(uint8_t(j | (15 - j) << 4));
    values = dequantize(DType::Q5_1, q51, 32);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ((*values)[0], 2.0 * 16 - 1);
    EXPECT_EQ((*values)[1], 2.0 * 1 - 1);
    EXPECT_EQ((*values)[16], 2.0 * 15 - 1);
    EXPECT_EQ((*values)[31], 2.0 * (0 + 16) - 1);

    // Q4_K: d = 1, dmin = 0.5; sub-block 5's scale 0x2b = 43 takes its low
    // nibble from byte 9 and its top bits from byte 1, its min 0x36 = 54 its
    // low nibble from byte 9's high nibble and its top bits from byte 5.
    std::vector<uint8_t> q4k(144, 0);
    q4k[1] = 0x3c, q4k[3] = 0x38;  // d = 1, dmin = 0.5
    q4k[4 + 1] = 0x80 | 7;         // sub-block 1 scale 7, top bits of sub-block 5's scale = 2
    q4k[4 + 5] = 0xc0 | 9;         // sub-block 1 min 9, top bits of sub-block 5's min = 3
    q4k[4 + 9] = 0x6b;             // sub-block 5: scale low nibble 0xb, min low nibble 6
    q4k[16 + 32 * 2 + 3] = 0x5a;   // elements 128 + 3 (low nibble 10, sub-block 4) and 160 + 3 (5, sub-block 5)
    q4k[16 + 1] = 0x0c;            // element 1 (sub-block 0: scale 0) and 33 (sub-block 1)
    q4k[16 + 2] = 0xd0;            // element 34 = 13 in sub-block 1
    values = dequantize(DType::Q4_K, q4k, 256);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ((*values)[34], 1.0 * 7 * 13 - 0.5 * 9);
    EXPECT_EQ((*values)[33], 1.0 * 7 * 0 - 0.5 * 9);
    EXPECT_EQ((*values)[131], 0.0);  // sub-block 4: scale 0, min 0
    EXPECT_EQ((*values)[163], 1.0 * 43 * 5 - 0.5 * 54);

    // Q6_K: d = 0.25; element 128 + 32 + 7 (second half, second quarter)
    // takes the low nibble of ql[64 + 32 + 7], bits 2-3 of qh[32 + 7] and
    // scale 10 (index 10 = 167 / 16).
    std::vector<uint8_t> q6k(210, 0);
    q6k[64 + 32 + 7] = 0x9c;  // low nibble 12 (element 167), high 9 (element 231)
    q6k[128 + 32 + 7] = 0x8 | 0x80;  // bits 2-3 = 2 (element 167), 6-7 = 2 (element 231)
    q6k[192 + 10] = 10;
    q6k[192 + 14] = uint8_t(-3);
    q6k[209] = 0x34;  // d = 0.25
    values = dequantize(DType::Q6_K, q6k, 256);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ((*values)[167], 0.25 * 10 * ((12 | 2 << 4) - 32));
    EXPECT_EQ((*values)[231], 0.25 * -3 * ((9 | 2 << 4) - 32));
    EXPECT_EQ((*values)[0], 0.0);  // scale 0

    // Q2_K: d = 1, dmin = 0.5. Element 83 (sub-block 5, first half, third
    // quarter) takes bits 4-5 of qs[19]; element 147 (sub-block 9, second
    // half, first quarter) bits 0-1 of qs[32 + 19].
    std::vector<uint8_t> q2k(84, 0);
    q2k[5] = 0x93;             // sub-block 5: scale 3, min 9
    q2k[9] = 0x21;             // sub-block 9: scale 1, min 2
    q2k[16 + 19] = 0x20;       // element 83 = 2, element 19 = 0
    q2k[16 + 32 + 19] = 0x03;  // element 147 = 3
    q2k[81] = 0x3c, q2k[83] = 0x38;
    values = dequantize(DType::Q2_K, q2k, 256);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ((*values)[83], 1.0 * 3 * 2 - 0.5 * 9);
    EXPECT_EQ((*values)[147], 1.0 * 1 * 3 - 0.5 * 2);
    EXPECT_EQ((*values)[19], 0.0);  // sub-block 1: scale 0, min 0

    // Q3_K: d = 0.25. Sub-block 13's 6-bit scale 45 (45 - 32 = 13) takes its
    // low nibble from byte 5's high nibble and its top bits from bits 6-7 of
    // byte 9. Element 213 (second half, third quarter, i = 21) takes bits
    // 4-5 of qs[32 + 21] and bit 2 from bit 6 of hmask[21].
    std::vector<uint8_t> q3k(110, 0);
    q3k[96 + 5] = 0xd0;
    q3k[96 + 9] = 0x80;
    q3k[32 + 32 + 21] = 0x10;  // element 213: bits 0-1 = 1
    q3k[21] = 0x40;            // element 213: bit 2 set
    q3k[109] = 0x34;           // d = 0.25
    values = dequantize(DType::Q3_K, q3k, 256);
    ASSERT_TRUE(values) << values.error().message;
    EXPECT_EQ((*values)[213], 0.25 * 13 * (5 - 4));
    EXPECT_EQ((*values)[214], 0.25 * 13 * (0 - 4));  // bit 2 clear
    EXPECT_EQ((*values)[0], 0.25 * -32 * (0 - 4));   // stored scale 0: -32
}

TEST(Dequantize, RejectsWrongSizesAndTypes) {
    const std::vector<uint8_t> bytes(34, 0);
    EXPECT_FALSE(dequantize(DType::F32, bytes, 9));
    EXPECT_FALSE(dequantize(DType::Q8_0, bytes, 64));
    EXPECT_FALSE(dequantize(DType::Q8_0, bytes, 16));
    EXPECT_FALSE(dequantize(DType::Q4_1, bytes, 32));
    EXPECT_FALSE(dequantize(DType::Q4_K, bytes, 256));
    EXPECT_FALSE(dequantize(DType::Q2_K, std::vector<uint8_t>(83, 0), 256));
    EXPECT_FALSE(dequantize(DType::Q8_K, std::vector<uint8_t>(292, 0), 256));  // no decoder
    EXPECT_FALSE(dequantize(DType::F16, bytes, ~uint64_t(0)));
}

class ReferenceDtype : public testing::TestWithParam<DType> {};

TEST_P(ReferenceDtype, ExactlyRepresentableWeightsMatchF32) {
    TinyConfig config;
    config.dim = 32;
    config.ffnDim = 64;
    config.kvHeadCount = 2;
    TinyModel model = randomModel(config, 19);
    const std::vector<std::vector<double>> expected = loadOrFail(model).forward(kTokens);
    // Norms and embeddings stay F32: their values exceed Q4_0's range at scale 1/64.
    for (TensorSpec& t : model.tensors) {
        if ((t.name.starts_with("blk.") && t.dims.size() == 2) || t.name == "output.weight") t.type = GetParam();
    }
    const std::vector<std::vector<double>> actual = loadOrFail(model).forward(kTokens);
    for (size_t t = 0; t < kTokens.size(); ++t) EXPECT_EQ(actual[t], expected[t]) << "position " << t;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, ReferenceDtype,
                         testing::Values(DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0),
                         [](const testing::TestParamInfo<DType>& info) { return std::string(dtypeName(info.param)); });

void expectLoadError(const TinyModel& model, const std::string& needle) {
    Result<ReferenceTransformer> reference = loadModel(model);
    ASSERT_FALSE(reference) << "expected an error mentioning " << needle;
    EXPECT_NE(reference.error().message.find(needle), std::string::npos) << reference.error().message;
}

TEST(ReferenceTransformer, ReportsClearErrors) {
    const TinyModel valid = randomModel(TinyConfig{}, 23);

    TinyModel model = valid;
    model.architecture = "gpt2";
    expectLoadError(model, "gpt2");

    model = valid;
    model.erase("blk.0.ffn_up.weight");
    expectLoadError(model, "blk.0.ffn_up.weight");

    model = valid;
    model.erase("token_embd.weight");
    expectLoadError(model, "token_embd.weight");

    model = valid;
    model.tensor("blk.0.attn_q.weight").dims = {16, 8};
    model.tensor("blk.0.attn_q.weight").values.resize(16 * 8);
    expectLoadError(model, "blk.0.attn_q.weight");

    model = valid;
    model.config.kvHeadCount = 3;
    expectLoadError(model, "head_count_kv");
}

TEST(ReferenceTransformer, ReportsMissingKey) {
    gguf::GgufWriter writer;
    writer.set("general.architecture", "llama");
    Result<std::vector<uint8_t>> bytes = writer.writeToMemory();
    ASSERT_TRUE(bytes) << bytes.error().message;
    Result<gguf::GgufFile> file = gguf::GgufFile::parse(*bytes);
    ASSERT_TRUE(file) << file.error().message;
    Result<ReferenceTransformer> reference = ReferenceTransformer::load(*file);
    ASSERT_FALSE(reference);
    EXPECT_NE(reference.error().message.find("llama.embedding_length"), std::string::npos)
        << reference.error().message;
}

TEST(ReferenceTransformer, RejectsTokenOutsideVocabulary) {
    const ReferenceTransformer reference = loadOrFail(randomModel(TinyConfig{}, 29));
    EXPECT_THROW(reference.forward({1, 11}), std::out_of_range);
    EXPECT_THROW(reference.forward({-1}), std::out_of_range);
}

// Piece text as llama2.c prints it: "▁" is a space, "<0xXX>" one byte.
std::string pieceText(const std::string& piece) {
    if (piece.size() == 6 && piece.starts_with("<0x") && piece.ends_with(">")) {
        return std::string(1, char(std::stoi(piece.substr(3, 2), nullptr, 16)));
    }
    std::string text;
    const std::string space = "\u2581";
    for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, space.size(), space) == 0) {
            text += ' ';
            i += space.size();
        } else {
            text += piece[i++];
        }
    }
    return text;
}

TEST(ReferenceTransformer, Stories260KGreedyDecodeTellsTheStory) {
    const std::filesystem::path path = std::string(PAGODA_SHARED_DIR) + "/models/stories260K.gguf";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found: golden model unavailable";
    Result<gguf::GgufFile> file = gguf::GgufFile::open(path);
    ASSERT_TRUE(file) << file.error().message;
    Result<ReferenceTransformer> reference = ReferenceTransformer::load(*file);
    ASSERT_TRUE(reference) << reference.error().message;
    Result<const gguf::Array*> pieces = file->getArray("tokenizer.ggml.tokens");
    ASSERT_TRUE(pieces) << pieces.error().message;
    ASSERT_EQ((*pieces)->items.size(), size_t(reference->vocabSize()));

    constexpr int32_t kBos = 1;
    constexpr int32_t kEos = 2;
    constexpr int kSteps = 64;
    std::vector<int32_t> tokens = {kBos};
    std::string text;
    for (int step = 0; step < kSteps; ++step) {
        const std::vector<double> last = reference->forward(tokens).back();
        const int32_t next = int32_t(std::max_element(last.begin(), last.end()) - last.begin());
        if (next == kBos || next == kEos) break;
        tokens.push_back(next);
        const std::string* piece = (*pieces)->items[size_t(next)].asString();
        ASSERT_NE(piece, nullptr);
        text += pieceText(*piece);
    }
    if (text.starts_with(' ')) text.erase(0, 1);  // the first piece's "▁" follows BOS
    std::cout << "stories260K reference greedy decode: " << text << "\n";

    const std::string expected =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    EXPECT_EQ(text.substr(0, expected.size()), expected) << text;
}

}  // namespace
}  // namespace pagoda::reference

// Architecture variants of the forward pass. qwen2 differs from llama by
// Q/K/V biases and NeoX-style RoPE (rotating halves of each head, with the
// Hugging Face row order that llama's GGUF conversion permutes away): a
// llama model rewritten as qwen2 (rows un-permuted, zero biases) must give
// the same logits, and the biases must matter. qwen3 drops the biases and
// RMS-normalizes each head of q and k. phi3 keeps Q, K and V in one tensor
// and the gate and up projections in another (test_forward.cpp checks them
// all against the float64 reference).

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "engine/backend/cpu_ops.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"

namespace pagoda {
namespace {

struct Loaded {
    std::vector<uint8_t> bytes;
    std::unique_ptr<Model> model;
};

Loaded load(std::vector<uint8_t> bytes) {
    Loaded l{std::move(bytes), nullptr};
    auto file = gguf::GgufFile::parse(l.bytes);
    EXPECT_TRUE(file) << file.error().message;
    auto model = Model::fromFile(std::move(*file));
    EXPECT_TRUE(model) << model.error().message;
    if (model) l.model = std::move(*model);
    return l;
}

// The synthetic model of `spec`, written and loaded.
Loaded written(const SyntheticSpec& spec) {
    auto bytes = syntheticModelWriter(spec)->writeToMemory();
    EXPECT_TRUE(bytes) << bytes.error().message;
    return bytes ? load(std::move(*bytes)) : Loaded{};
}

Loaded synthetic(const std::string& architecture) {
    SyntheticSpec spec;
    spec.architecture = architecture;
    spec.dim = 64;
    spec.nHeads = 4;
    spec.nKvHeads = 2;
    spec.ffnDim = 96;
    spec.vocabSize = 448;
    spec.contextLength = 64;
    spec.seed = 99;
    return written(spec);
}

// Rewrites a GGUF: metadata through `meta`, tensor bytes through
// `transform(name, bytes)`, extra tensors from `extra`.
using MetaFn = std::function<gguf::KeyValue(const gguf::KeyValue&)>;
using Transform = std::function<void(const std::string& name, std::vector<uint8_t>& bytes)>;
std::vector<uint8_t> rewrite(const gguf::GgufFile& file, const MetaFn& meta, const Transform& transform,
                             const std::function<void(gguf::GgufWriter&)>& extra = {}) {
    gguf::GgufWriter writer;
    for (const gguf::KeyValue& kv : file.metadata()) {
        gguf::KeyValue mapped = meta(kv);
        writer.set(std::move(mapped.key), std::move(mapped.value));
    }
    for (const gguf::TensorInfo& t : file.tensors()) {
        auto data = file.tensorData(t);
        std::vector<uint8_t> bytes(data.begin(), data.end());
        transform(t.name, bytes);
        writer.addTensor(t.name, t.dims, t.type, std::move(bytes));
    }
    if (extra) extra(writer);
    auto out = writer.writeToMemory();
    EXPECT_TRUE(out) << out.error().message;
    return std::move(*out);
}

// Logits of every position of `tokens`, prefilled in one pass or token by
// token; with a sliding window > 0, the cache releasing the blocks below it;
// with a context > 0, the model run for that context.
std::vector<float> logits(const Model& model, const std::vector<int32_t>& tokens, bool tokenByToken,
                          int slidingWindow = -1, int context = 0) {
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    BlockManagerConfig manager;
    manager.maxContext = model.config().contextLength;
    manager.prefixCaching = false;
    manager.slidingWindow = std::max(0, slidingWindow);
    auto cache = KvCache::create(kvLayoutForTokens(model.config(), 64, 16, DType::F32), manager);
    EXPECT_TRUE(cache);
    const SeqId seq = (*cache)->blocks().admit(tokens)->seq;
    TransformerOptions options;
    options.slidingWindow = slidingWindow;
    options.maxContext = context;
    Transformer transformer(model, ops, int(tokens.size()), options);
    std::vector<float> out;
    const size_t step = tokenByToken ? 1 : tokens.size();
    for (size_t done = 0; done < tokens.size(); done += step) {
        ForwardBatch batch;
        EXPECT_TRUE((*cache)->addChunk(batch, seq, std::span(tokens).subspan(done, step), true));
        auto rows = transformer.forward(batch, **cache);
        EXPECT_TRUE(rows) << rows.error().message;
        if (!rows) return {};
        out.insert(out.end(), rows->begin(), rows->end());
    }
    return out;
}

double maxRelativeDiff(const std::vector<float>& a, const std::vector<float>& b) {
    double maxDiff = 0, sumSquares = 0;
    for (size_t i = 0; i < b.size(); ++i) {
        const double diff = std::abs(double(a[i]) - double(b[i]));
        if (!(diff == diff)) return INFINITY;
        maxDiff = std::max(maxDiff, diff);
        sumSquares += double(b[i]) * b[i];
    }
    return maxDiff / std::sqrt(sumSquares / double(b.size()));
}

const std::vector<int32_t> kTokens = {1, 17, 300, 42, 99, 5, 260, 261, 7, 400, 12, 13, 14, 15, 16, 17, 18, 19, 20};

TEST(Qwen2, EqualsLlamaWithRowsInHuggingFaceOrderAndZeroBiases) {
    Loaded llama = synthetic("llama");
    ASSERT_TRUE(llama.model);
    const ModelConfig& c = llama.model->config();
    const int hd = c.headDim;
    // llama GGUF row 2i + half of a head holds Hugging Face row half * hd/2 + i.
    auto unpermute = [&](const std::string& name, std::vector<uint8_t>& bytes) {
        if (name.find("attn_q.weight") == std::string::npos && name.find("attn_k.weight") == std::string::npos) return;
        const size_t rowBytes = size_t(c.dim) * sizeof(float);
        const std::vector<uint8_t> original = bytes;
        for (size_t head = 0; head < bytes.size() / rowBytes / size_t(hd); ++head) {
            for (int i = 0; i < hd / 2; ++i) {
                for (int half = 0; half < 2; ++half) {
                    const size_t from = head * hd + 2 * i + half;
                    const size_t to = head * hd + half * (hd / 2) + i;
                    std::memcpy(bytes.data() + to * rowBytes, original.data() + from * rowBytes, rowBytes);
                }
            }
        }
    };
    auto toQwen2 = [](const gguf::KeyValue& kv) {
        if (kv.key == "general.architecture") return gguf::KeyValue{kv.key, gguf::Value(std::string("qwen2"))};
        if (kv.key.rfind("llama.", 0) == 0) return gguf::KeyValue{"qwen2." + kv.key.substr(6), kv.value};
        return kv;
    };
    auto zeroBiases = [&](gguf::GgufWriter& writer) {
        for (int l = 0; l < c.nLayers; ++l) {
            for (auto [name, n] : {std::pair{"attn_q", c.qDim()}, {"attn_k", c.kvDim()}, {"attn_v", c.kvDim()}}) {
                writer.addTensor(fmt::format("blk.{}.{}.bias", l, name), {uint64_t(n)}, DType::F32,
                                 std::vector<uint8_t>(sizeof(float) * n, 0));
            }
        }
    };
    Loaded qwen = load(rewrite(llama.model->file(), toQwen2, unpermute, zeroBiases));
    ASSERT_TRUE(qwen.model);
    EXPECT_EQ(qwen.model->config().ropeStyle, cpu::RopeStyle::NeoX);
    EXPECT_TRUE(qwen.model->config().attentionBias);
    EXPECT_LE(maxRelativeDiff(logits(*qwen.model, kTokens, false), logits(*llama.model, kTokens, false)), 1e-5);
}

TEST(Qwen2, PrefillAndTokenByTokenDecodeAgreeAndBiasesMatter) {
    Loaded qwen = synthetic("qwen2");
    ASSERT_TRUE(qwen.model);
    ASSERT_FALSE(qwen.model->weights().layers[0].bk.empty());
    const std::vector<float> prefill = logits(*qwen.model, kTokens, false);
    EXPECT_LE(maxRelativeDiff(logits(*qwen.model, kTokens, true), prefill), 1e-5);

    auto zeroBias = [](const std::string& name, std::vector<uint8_t>& bytes) {
        if (name.find(".bias") != std::string::npos) std::fill(bytes.begin(), bytes.end(), 0);
    };
    Loaded noBias = load(rewrite(qwen.model->file(), [](const gguf::KeyValue& kv) { return kv; }, zeroBias));
    ASSERT_TRUE(noBias.model);
    EXPECT_GT(maxRelativeDiff(logits(*noBias.model, kTokens, false), prefill), 1e-2);
}

// qwen3 RMS-normalizes each head of q and k before RoPE: scaling the q and
// k projections changes nothing (up to the norm's epsilon), the norms'
// weights matter, and a file without them is refused naming the tensor.
TEST(Qwen3, EachHeadOfQAndKIsNormalizedBeforeRope) {
    Loaded qwen = synthetic("qwen3");
    ASSERT_TRUE(qwen.model);
    EXPECT_EQ(qwen.model->config().ropeStyle, cpu::RopeStyle::NeoX);
    EXPECT_TRUE(qwen.model->config().qkNorm);
    EXPECT_FALSE(qwen.model->config().attentionBias);
    ASSERT_EQ(qwen.model->weights().layers[0].kNorm.size(), size_t(qwen.model->config().headDim));
    const auto same = [](const gguf::KeyValue& kv) { return kv; };
    const std::vector<float> prefill = logits(*qwen.model, kTokens, false);
    EXPECT_LE(maxRelativeDiff(logits(*qwen.model, kTokens, true), prefill), 1e-5);

    auto scaleQk = [](const std::string& name, std::vector<uint8_t>& bytes) {
        if (name.find("attn_q.weight") == std::string::npos && name.find("attn_k.weight") == std::string::npos) return;
        for (size_t at = 0; at < bytes.size(); at += sizeof(float)) {
            float v;
            std::memcpy(&v, bytes.data() + at, sizeof v);
            v *= 7.0f;
            std::memcpy(bytes.data() + at, &v, sizeof v);
        }
    };
    Loaded scaled = load(rewrite(qwen.model->file(), same, scaleQk));
    ASSERT_TRUE(scaled.model);
    EXPECT_LE(maxRelativeDiff(logits(*scaled.model, kTokens, false), prefill), 1e-4);

    auto unitNorms = [](const std::string& name, std::vector<uint8_t>& bytes) {
        if (name.find("_norm.weight") == std::string::npos || name.find("attn_") == std::string::npos) return;
        const float one = 1.0f;
        for (size_t at = 0; at < bytes.size(); at += sizeof(float)) std::memcpy(bytes.data() + at, &one, sizeof one);
    };
    Loaded unit = load(rewrite(qwen.model->file(), same, unitNorms));
    ASSERT_TRUE(unit.model);
    EXPECT_GT(maxRelativeDiff(logits(*unit.model, kTokens, false), prefill), 1e-2);

    gguf::GgufWriter writer;
    for (const gguf::KeyValue& kv : qwen.model->file().metadata()) writer.set(kv.key, kv.value);
    for (const gguf::TensorInfo& t : qwen.model->file().tensors()) {
        if (t.name == "blk.1.attn_k_norm.weight") continue;
        auto data = qwen.model->file().tensorData(t);
        writer.addTensor(t.name, t.dims, t.type, std::vector<uint8_t>(data.begin(), data.end()));
    }
    auto bytes = writer.writeToMemory();
    ASSERT_TRUE(bytes);
    auto file = gguf::GgufFile::parse(*bytes);
    ASSERT_TRUE(file);
    auto missing = Model::fromFile(std::move(*file));
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("blk.1.attn_k_norm.weight"), std::string::npos) << missing.error().message;
}

// rope_freqs.weight (Llama 3.1 and later): its divisors change the logits
// (test_forward.cpp checks them against the float64 reference); one of the
// wrong length or a factor that is not positive is refused, naming it.
TEST(RopeFreqs, DivisorsMatterAndBadOnesAreRefused) {
    Loaded plain = synthetic("llama");
    ASSERT_TRUE(plain.model);
    EXPECT_TRUE(plain.model->weights().ropeFreqs.empty());
    const auto same = [](const gguf::KeyValue& kv) { return kv; };
    const auto keep = [](const std::string&, std::vector<uint8_t>&) {};
    const int pairs = plain.model->config().ropeDim / 2;
    auto withFactors = [&](std::vector<float> factors) {
        return rewrite(plain.model->file(), same, keep, [factors](gguf::GgufWriter& writer) {
            std::vector<uint8_t> bytes(factors.size() * sizeof(float));
            std::memcpy(bytes.data(), factors.data(), bytes.size());
            writer.addTensor("rope_freqs.weight", {uint64_t(factors.size())}, DType::F32, std::move(bytes));
        });
    };
    std::vector<float> factors(size_t(pairs), 1.0f);
    Loaded ones = load(withFactors(factors));
    ASSERT_TRUE(ones.model);
    EXPECT_EQ(ones.model->weights().ropeFreqs.size(), size_t(pairs));
    const std::vector<float> reference = logits(*plain.model, kTokens, false);
    EXPECT_EQ(logits(*ones.model, kTokens, false), reference);  // dividing by 1 changes no bit
    factors[0] = 3.0f;
    Loaded scaled = load(withFactors(factors));
    ASSERT_TRUE(scaled.model);
    EXPECT_GT(maxRelativeDiff(logits(*scaled.model, kTokens, false), reference), 1e-3);

    std::vector<float> zero = factors;
    zero[1] = 0.0f;
    for (const std::vector<float>& bad : {std::vector<float>(size_t(pairs) + 1, 1.0f), zero}) {
        const std::vector<uint8_t> bytes = withFactors(bad);
        auto file = gguf::GgufFile::parse(bytes);
        ASSERT_TRUE(file);
        auto model = Model::fromFile(std::move(*file));
        ASSERT_FALSE(model);
        EXPECT_NE(model.error().message.find("rope_freqs.weight"), std::string::npos) << model.error().message;
    }
}

// Refuses a file, checking that the error names `what`.
void expectRefused(const std::vector<uint8_t>& bytes, const std::string& what) {
    auto file = gguf::GgufFile::parse(bytes);
    ASSERT_TRUE(file);
    auto model = Model::fromFile(std::move(*file));
    ASSERT_FALSE(model);
    EXPECT_NE(model.error().message.find(what), std::string::npos) << model.error().message;
}

// phi3's attn_qkv.weight holds Q's rows, then K's, then V's, and its
// ffn_up.weight the gate's, then up's: the same file with those tensors cut
// into attn_q/k/v and ffn_gate/up (and zero biases) is a qwen2 model, and
// gives the same logits. Swapping the gate and up halves changes them; the
// fused tensors are required.
TEST(Phi3, EqualsQwen2WithItsFusedTensorsCutApart) {
    Loaded phi = synthetic("phi3");
    ASSERT_TRUE(phi.model);
    const ModelConfig& c = phi.model->config();
    EXPECT_EQ(c.ropeStyle, cpu::RopeStyle::NeoX);
    EXPECT_TRUE(c.fusedProjections);
    const gguf::GgufFile& file = phi.model->file();
    const size_t rowBytes = size_t(c.dim) * sizeof(float);

    gguf::GgufWriter writer;
    for (const gguf::KeyValue& kv : file.metadata()) {
        if (kv.key == "general.architecture") {
            writer.set(kv.key, gguf::Value(std::string("qwen2")));
        } else {
            writer.set(kv.key.starts_with("phi3.") ? "qwen2." + kv.key.substr(5) : kv.key, kv.value);
        }
    }
    for (const gguf::TensorInfo& t : file.tensors()) {
        const std::span<const uint8_t> data = file.tensorData(t);
        const auto addRows = [&](const std::string& name, size_t first, size_t count) {
            writer.addTensor(name, {uint64_t(c.dim), uint64_t(count)}, t.type,
                             std::vector<uint8_t>(data.begin() + ptrdiff_t(first * rowBytes),
                                                  data.begin() + ptrdiff_t((first + count) * rowBytes)));
        };
        const std::string layer = t.name.substr(0, t.name.find('.', 4) + 1);  // "blk.N."
        if (t.name.ends_with("attn_qkv.weight")) {
            const size_t q = size_t(c.qDim()), kv = size_t(c.kvDim());
            addRows(layer + "attn_q.weight", 0, q);
            addRows(layer + "attn_k.weight", q, kv);
            addRows(layer + "attn_v.weight", q + kv, kv);
            for (auto [name, n] : {std::pair{"attn_q", q}, {"attn_k", kv}, {"attn_v", kv}}) {
                writer.addTensor(layer + name + ".bias", {uint64_t(n)}, DType::F32,
                                 std::vector<uint8_t>(sizeof(float) * n, 0));
            }
        } else if (t.name.ends_with("ffn_up.weight")) {
            addRows(layer + "ffn_gate.weight", 0, size_t(c.ffnDim));
            addRows(layer + "ffn_up.weight", size_t(c.ffnDim), size_t(c.ffnDim));
        } else {
            writer.addTensor(t.name, t.dims, t.type, std::vector<uint8_t>(data.begin(), data.end()));
        }
    }
    auto qwenBytes = writer.writeToMemory();
    ASSERT_TRUE(qwenBytes);
    Loaded qwen = load(std::move(*qwenBytes));
    ASSERT_TRUE(qwen.model);
    const std::vector<float> phiLogits = logits(*phi.model, kTokens, false);
    EXPECT_LE(maxRelativeDiff(phiLogits, logits(*qwen.model, kTokens, false)), 1e-5);
    EXPECT_LE(maxRelativeDiff(logits(*phi.model, kTokens, true), phiLogits), 1e-5);

    const auto same = [](const gguf::KeyValue& kv) { return kv; };
    const auto swapHalves = [](const std::string& name, std::vector<uint8_t>& bytes) {
        if (name.ends_with("ffn_up.weight")) {
            std::rotate(bytes.begin(), bytes.begin() + ptrdiff_t(bytes.size() / 2), bytes.end());
        }
    };
    Loaded swapped = load(rewrite(file, same, swapHalves));
    ASSERT_TRUE(swapped.model);
    EXPECT_GT(maxRelativeDiff(logits(*swapped.model, kTokens, false), phiLogits), 1e-2);

    const auto dropQkv = [&] {
        gguf::GgufWriter w;
        for (const gguf::KeyValue& kv : file.metadata()) w.set(kv.key, kv.value);
        for (const gguf::TensorInfo& t : file.tensors()) {
            if (t.name == "blk.1.attn_qkv.weight") continue;
            const std::span<const uint8_t> data = file.tensorData(t);
            w.addTensor(t.name, t.dims, t.type, std::vector<uint8_t>(data.begin(), data.end()));
        }
        return *w.writeToMemory();
    };
    expectRefused(dropQkv(), "blk.1.attn_qkv.weight");
}

// As llama.cpp (ggml-org/llama.cpp#13676), phi3 ignores the sliding window
// its files carry.
TEST(Phi3, IgnoresTheSlidingWindow) {
    Loaded phi = synthetic("phi3");
    ASSERT_TRUE(phi.model);
    const auto keep = [](const std::string&, std::vector<uint8_t>&) {};
    const auto same = [](const gguf::KeyValue& kv) { return kv; };
    Loaded windowed = load(rewrite(phi.model->file(), same, keep, [](gguf::GgufWriter& w) {
        w.set("phi3.attention.sliding_window", uint32_t(4));
    }));
    ASSERT_TRUE(windowed.model);
    EXPECT_EQ(windowed.model->config().slidingWindow, 0);
    EXPECT_EQ(logits(*windowed.model, kTokens, false), logits(*phi.model, kTokens, false));

}

// Phi-3's LongRoPE (the 128k files): within its original context its short
// factors divide the angles, beyond it (a larger context asked for, as
// llama.cpp decides by its context size) its long ones; the attn factor
// scales cos and sin either way (test_forward.cpp checks the logits of both
// against the float64 reference). A file without the original context, or
// without either set of factors, is refused naming what it lacks.
TEST(Phi3, LongRopeTakesItsLongFactorsBeyondTheOriginalContext) {
    SyntheticSpec spec;
    spec.architecture = "phi3";
    spec.ropeScaling = "longrope";
    spec.contextLength = 256;
    spec.vocabSize = 448;
    Loaded phi = written(spec);
    ASSERT_TRUE(phi.model);
    const ModelConfig& c = phi.model->config();
    EXPECT_EQ(c.ropeScaling, RopeScalingType::LongRope);
    EXPECT_EQ(c.contextLength, 256);
    EXPECT_EQ(c.ropeOriginalContext, 64);
    EXPECT_TRUE(c.usesLongRopeFactors(0));
    EXPECT_TRUE(c.usesLongRopeFactors(65));
    EXPECT_FALSE(c.usesLongRopeFactors(64));
    // sqrt(1 + ln 4 / ln 64) = sqrt(4 / 3)
    EXPECT_NEAR(c.ropeAttnFactor, std::sqrt(4.0 / 3.0), 1e-6);
    const gguf::GgufFile& file = phi.model->file();
    const auto expectFactors = [&](const std::vector<float>& factors, const char* tensor) {
        const std::span<const uint8_t> bytes = file.tensorData(*file.findTensor(tensor));
        ASSERT_EQ(factors.size() * sizeof(float), bytes.size()) << tensor;
        EXPECT_EQ(std::memcmp(factors.data(), bytes.data(), bytes.size()), 0) << tensor;
    };
    expectFactors(phi.model->weights().ropeFreqs, "rope_factors_short.weight");
    expectFactors(phi.model->weights().ropeFreqsLong, "rope_factors_long.weight");

    const int original = 64;
    const std::vector<float> within = logits(*phi.model, kTokens, false, -1, original);
    const std::vector<float> beyond = logits(*phi.model, kTokens, false);
    EXPECT_GT(maxRelativeDiff(beyond, within), 1e-3);
    const auto same = [](const gguf::KeyValue& kv) { return kv; };
    const auto doubled = [](const char* tensor) {
        return [tensor](const std::string& name, std::vector<uint8_t>& bytes) {
            if (name != tensor) return;
            for (size_t at = 0; at < bytes.size(); at += sizeof(float)) {
                float f;
                std::memcpy(&f, bytes.data() + at, sizeof f);
                f *= 2;
                std::memcpy(bytes.data() + at, &f, sizeof f);
            }
        };
    };
    Loaded longChanged = load(rewrite(file, same, doubled("rope_factors_long.weight")));
    ASSERT_TRUE(longChanged.model);
    EXPECT_EQ(logits(*longChanged.model, kTokens, false, -1, original), within);
    EXPECT_GT(maxRelativeDiff(logits(*longChanged.model, kTokens, false), beyond), 1e-3);
    Loaded shortChanged = load(rewrite(file, same, doubled("rope_factors_short.weight")));
    ASSERT_TRUE(shortChanged.model);
    EXPECT_GT(maxRelativeDiff(logits(*shortChanged.model, kTokens, false, -1, original), within), 1e-3);
    EXPECT_EQ(logits(*shortChanged.model, kTokens, false), beyond);
    const auto noMagnitude = [](const gguf::KeyValue& kv) {
        return kv.key == "phi3.rope.scaling.attn_factor" ? gguf::KeyValue{kv.key, gguf::Value(1.0f)} : kv;
    };
    const auto keep = [](const std::string&, std::vector<uint8_t>&) {};
    Loaded unscaled = load(rewrite(file, noMagnitude, keep));
    ASSERT_TRUE(unscaled.model);
    EXPECT_GT(maxRelativeDiff(logits(*unscaled.model, kTokens, false, -1, original), within), 1e-3);
    EXPECT_GT(maxRelativeDiff(logits(*unscaled.model, kTokens, false), beyond), 1e-3);

    const auto without = [&](const std::string& key, const std::string& tensor) {
        gguf::GgufWriter writer;
        for (const gguf::KeyValue& kv : file.metadata()) {
            if (kv.key != key) writer.set(kv.key, kv.value);
        }
        for (const gguf::TensorInfo& t : file.tensors()) {
            if (t.name == tensor) continue;
            const std::span<const uint8_t> data = file.tensorData(t);
            writer.addTensor(t.name, t.dims, t.type, std::vector<uint8_t>(data.begin(), data.end()));
        }
        return *writer.writeToMemory();
    };
    expectRefused(without("phi3.rope.scaling.original_context_length", ""), "rope.scaling.original_context_length");
    expectRefused(without("", "rope_factors_long.weight"), "rope_factors_long.weight");
    expectRefused(without("", "rope_factors_short.weight"), "rope_factors_short.weight");
}

// gemma3's config as llama.cpp reads Gemma 3's: the file's sliding window
// for its local layers, every 6th layer global, the embedding scaled by
// sqrt(dim), the 27B's (62 layers) queries by 1 / sqrt(dim / heads); a file
// without its window is refused naming the key (test_forward.cpp checks the
// logits against the float64 reference).
TEST(Gemma3, ConfigComesFromTheFileAndTheLayerCount) {
    SyntheticSpec spec;
    spec.architecture = "gemma3";
    spec.nLayers = 7;
    spec.headDim = 32;
    spec.slidingWindow = 24;
    spec.vocabSize = 448;
    Loaded gemma = written(spec);
    ASSERT_TRUE(gemma.model);
    const ModelConfig& c = gemma.model->config();
    EXPECT_EQ(c.localWindow, 24);
    EXPECT_EQ(c.slidingWindow, 0);  // the KV cache keeps every position: the global layers read them
    EXPECT_EQ(c.globalEvery, 6);
    for (int layer = 0; layer < 7; ++layer) EXPECT_EQ(c.isLocalLayer(layer), layer != 5) << layer;
    EXPECT_FLOAT_EQ(c.embeddingScale, 8.0f);  // sqrt(64)
    EXPECT_FLOAT_EQ(c.attentionScale(), 1.0f / std::sqrt(32.0f));
    EXPECT_EQ(ropeParamsForLayer(c, 0).base, 10000.0f);
    EXPECT_EQ(ropeParamsForLayer(c, 5).base, c.ropeBase);
    EXPECT_FALSE(gemma.model->weights().layers[6].postFfnNorm.empty());

    spec.nLayers = 62;
    Loaded gemma27b = written(spec);
    ASSERT_TRUE(gemma27b.model);
    EXPECT_FLOAT_EQ(gemma27b.model->config().attentionScale(), 1.0f / std::sqrt(16.0f));  // 64 / 4 heads

    const auto noWindow = [](const gguf::KeyValue& kv) {
        return kv.key == "gemma3.attention.sliding_window" ? gguf::KeyValue{"gemma3.unused", kv.value} : kv;
    };
    const auto keep = [](const std::string&, std::vector<uint8_t>&) {};
    expectRefused(rewrite(gemma.model->file(), noWindow, keep), "gemma3.attention.sliding_window");
}

// A sliding window narrower than Gemma's local one bounds the local layers
// too: the cache has released the blocks below it. Gemma 3 with local
// windows of 40 then runs as with local windows of 4, and not as without
// the sliding window.
TEST(Gemma3, ASlidingWindowNarrowerThanTheLocalOneBoundsEveryLayer) {
    SyntheticSpec spec;
    spec.architecture = "gemma3";
    spec.vocabSize = 448;
    spec.slidingWindow = 40;
    Loaded wide = written(spec);
    spec.slidingWindow = 4;
    Loaded narrow = written(spec);
    ASSERT_TRUE(wide.model && narrow.model);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 48; ++i) tokens.push_back(int32_t(i * 37 % 448));
    const std::vector<float> bounded = logits(*wide.model, tokens, true, 4);
    ASSERT_FALSE(bounded.empty());
    for (float x : bounded) ASSERT_TRUE(std::isfinite(x));
    EXPECT_EQ(bounded, logits(*narrow.model, tokens, true, 4));
    EXPECT_NE(bounded, logits(*wide.model, tokens, true, 0));
}

// Logits of sequences a and b (of one length), fed together in chunks of
// 5 tokens through a cache of 8-token blocks whose local layers have pools
// of their own of `localBlocks` blocks (KvLayout::local; 0: none).
std::vector<float> pairedLogits(const Model& model, const std::vector<int32_t>& a, const std::vector<int32_t>& b,
                                int localBlocks) {
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    BlockManagerConfig manager;
    manager.maxContext = model.config().contextLength;
    manager.prefixCaching = false;
    KvLayout layout = kvLayoutForTokens(model.config(), 256, 8, DType::F32);
    if (localBlocks > 0) {
        layout.local = {model.config().localWindow, model.config().globalEvery};
        layout.numLocalBlocks = localBlocks;
    }
    auto cache = KvCache::create(layout, manager);
    EXPECT_TRUE(cache) << cache.error().message;
    if (!cache) return {};
    KvCache& kv = **cache;
    const SeqId sa = kv.admit(a)->seq, sb = kv.admit(b)->seq;
    Transformer transformer(model, ops, 10);
    std::vector<float> out;
    for (size_t done = 0; done < a.size(); done += 5) {
        ForwardBatch batch;
        EXPECT_EQ(*kv.addChunk(batch, sa, std::span(a).subspan(done, 5), true), Alloc::Ok);
        EXPECT_EQ(*kv.addChunk(batch, sb, std::span(b).subspan(done, 5), true), Alloc::Ok);
        auto rows = transformer.forward(batch, kv);
        EXPECT_TRUE(rows) << rows.error().message;
        if (!rows) return {};
        out.insert(out.end(), rows->begin(), rows->end());
        EXPECT_TRUE(kv.validate());
    }
    if (localBlocks > 0) {
        EXPECT_GT(kv.localBlocks()->stats().evictionsBy(EvictionCause::Window), 0);
    }
    return out;
}

// Local layers in pools of their own, 6 blocks of 8 for two sequences
// with windows of 8 (each holds at most 3 blocks after a 5-token chunk),
// give the same logits, bit for bit, as every layer holding every position.
TEST(Gemma3, LocalLayerPoolsGiveTheSameLogits) {
    SyntheticSpec spec;
    spec.architecture = "gemma3";
    spec.vocabSize = 448;
    spec.nLayers = 6;
    spec.slidingWindow = 8;
    Loaded gemma = written(spec);
    ASSERT_TRUE(gemma.model);
    std::vector<int32_t> a, b;
    for (int i = 0; i < 60; ++i) {
        a.push_back(int32_t(i * 37 % 448));
        b.push_back(int32_t(i * 91 % 448));
    }
    const std::vector<float> full = pairedLogits(*gemma.model, a, b, 0);
    ASSERT_EQ(full.size(), size_t(120) * 448);
    for (float x : full) ASSERT_TRUE(std::isfinite(x));
    EXPECT_EQ(pairedLogits(*gemma.model, a, b, 6), full);
}

// gemma2's config: local and global layers alternating at one RoPE base,
// the caps from the file or llama.cpp's defaults (50 and 30) without them,
// the 27B's (46 layers) queries scaled by 1 / sqrt(dim / heads).
TEST(Gemma2, ConfigComesFromTheFileAndItsDefaults) {
    SyntheticSpec spec;
    spec.architecture = "gemma2";
    spec.nLayers = 4;
    spec.slidingWindow = 16;
    spec.attnSoftcap = 7.0f;
    spec.finalSoftcap = 9.0f;
    spec.vocabSize = 448;
    Loaded gemma = written(spec);
    ASSERT_TRUE(gemma.model);
    const ModelConfig& c = gemma.model->config();
    EXPECT_FALSE(c.qkNorm);
    EXPECT_EQ(c.localWindow, 16);
    for (int layer = 0; layer < 4; ++layer) EXPECT_EQ(c.isLocalLayer(layer), layer % 2 == 0) << layer;
    EXPECT_EQ(ropeParamsForLayer(c, 0).base, ropeParamsForLayer(c, 1).base);
    EXPECT_FLOAT_EQ(c.attnSoftcap, 7.0f);
    EXPECT_FLOAT_EQ(c.finalSoftcap, 9.0f);

    const auto noCaps = [](const gguf::KeyValue& kv) {
        return kv.key.ends_with("_logit_softcapping") ? gguf::KeyValue{"gemma2.unused." + kv.key, kv.value} : kv;
    };
    const auto keep = [](const std::string&, std::vector<uint8_t>&) {};
    Loaded defaults = load(rewrite(gemma.model->file(), noCaps, keep));
    ASSERT_TRUE(defaults.model);
    EXPECT_FLOAT_EQ(defaults.model->config().attnSoftcap, 50.0f);
    EXPECT_FLOAT_EQ(defaults.model->config().finalSoftcap, 30.0f);

    spec.nLayers = 46;
    Loaded gemma27b = written(spec);
    ASSERT_TRUE(gemma27b.model);
    EXPECT_FLOAT_EQ(gemma27b.model->config().attentionScale(), 1.0f / std::sqrt(16.0f));  // 64 / 4 heads
}

}  // namespace
}  // namespace pagoda

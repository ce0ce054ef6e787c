// The engine's forward pass against the independent float64 reference, on
// fresh random synthetic models: MHA, GQA and MQA, several head dims and
// weight types, F32 and F16 KV; prefill vs token-by-token decode; a batch
// of several sequences vs each sequence alone; the ops each layer asks of
// the backend (the fused entry points a device runs as one launch).

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <map>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "engine/backend/cpu_ops.h"
#include "engine/backend/timed_ops.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"
#include "reference_transformer.h"

namespace pagoda {
namespace {

struct Shape {
    const char* name;
    int dim, heads, kvHeads, ffn;
    const char* architecture = "llama";
    int headDim = 0;  // 0: dim / heads
    bool ropeFreqs = false;  // rope_freqs.weight, as Llama 3.1 and later carry
    const char* ropeScaling = "";  // rope.scaling.type: linear or yarn (factor 4), or longrope
    // > 0: the context the model runs with (TransformerOptions::maxContext,
    // and the reference's), else its own: LongRoPE's factors depend on it.
    int context = 0;
};

// head dims 16, 32, 64 and 80; MHA, GQA 4:1, MQA
const Shape kShapes[] = {
    {"mha_hd16", 64, 4, 4, 96},
    {"gqa4_hd16", 128, 8, 2, 160},
    {"mqa_hd32", 128, 4, 1, 128},
    {"gqa2_hd64", 128, 2, 1, 96},
    {"mha_hd80", 160, 2, 2, 64},
};

// qwen2 (biases, NeoX RoPE) and qwen3 (NeoX RoPE, QK-norm; one with heads
// wider than dim / heads, as Qwen3's 128 at every size); RoPE frequency
// divisors (rope_freqs.weight) in both RoPE styles; linear and YaRN context
// scaling.
const Shape kArchitectureShapes[] = {
    {"qwen2_gqa_hd16", 64, 4, 2, 96, "qwen2"},
    {"qwen3_gqa_hd16", 64, 4, 2, 96, "qwen3"},
    {"qwen3_gqa_hd64_wide", 64, 4, 2, 96, "qwen3", 64},
    {"qwen3_mqa_hd32", 128, 4, 1, 128, "qwen3"},
    {"llama_ropefreqs_gqa_hd32", 128, 4, 1, 128, "llama", 0, true},
    {"qwen3_ropefreqs_gqa_hd16", 64, 4, 2, 96, "qwen3", 0, true},
    {"llama_linear_mha_hd16", 64, 4, 4, 96, "llama", 0, false, "linear"},
    {"qwen3_yarn_gqa_hd32", 128, 4, 2, 128, "qwen3", 0, false, "yarn"},
    {"llama_yarn_ropefreqs_mqa_hd32", 128, 4, 1, 128, "llama", 0, true, "yarn"},
    {"phi3_mha_hd16", 64, 4, 4, 96, "phi3"},
    {"phi3_gqa_hd32", 128, 4, 2, 128, "phi3"},
    {"phi3_longrope_gqa_hd32", 128, 4, 2, 128, "phi3", 0, false, "longrope"},
    {"phi3_longrope_short_gqa_hd32", 128, 4, 2, 128, "phi3", 0, false, "longrope", 96},
    {"gemma3_mqa_hd32", 128, 4, 1, 128, "gemma3"},
    {"gemma3_gqa_hd64_wide", 64, 4, 2, 96, "gemma3", 64},
    {"gemma3_linear_gqa_hd32", 128, 4, 2, 128, "gemma3", 0, false, "linear"},
    {"gemma2_gqa_hd32", 128, 4, 2, 128, "gemma2"},
    {"gemma2_mqa_hd64_wide", 64, 4, 1, 96, "gemma2", 64},
};

// Every row length a multiple of 256, for the K-quants.
const Shape kShapes256[] = {
    {"gqa2_hd64_d256", 256, 4, 2, 512},
};

std::vector<const Shape*> shapePointers(std::span<const Shape> shapes) {
    std::vector<const Shape*> pointers;
    for (const Shape& shape : shapes) pointers.push_back(&shape);
    return pointers;
}

struct Built {
    std::vector<uint8_t> bytes;  // owns the GGUF the model views
    std::unique_ptr<Model> model;
    std::unique_ptr<reference::ReferenceTransformer> reference;
};

Built build(const Shape& shape, DType dtype, uint64_t seed) {
    SyntheticSpec spec;
    spec.architecture = shape.architecture;
    spec.headDim = shape.headDim;
    spec.ropeFreqFactors = shape.ropeFreqs;
    spec.ropeScaling = shape.ropeScaling;
    spec.dim = shape.dim;
    spec.nLayers = 2;
    if (std::string_view(shape.architecture) == "gemma3") {
        // Five local layers with a window of 8, then a global one at its own RoPE base.
        spec.nLayers = 6;
        spec.slidingWindow = 8;
        spec.ropeBase = 1e6f;
    } else if (std::string_view(shape.architecture) == "gemma2") {
        // Local and global layers alternating; caps low enough to bend these
        // models' scores (std about 1) and logits (about 2.5).
        spec.nLayers = 4;
        spec.slidingWindow = 8;
        spec.attnSoftcap = 2.0f;
        spec.finalSoftcap = 3.0f;
    }
    spec.nHeads = shape.heads;
    spec.nKvHeads = shape.kvHeads;
    spec.ffnDim = shape.ffn;
    spec.vocabSize = 448;
    // LongRoPE's original context is a quarter of the file's: its long
    // factors beyond, its short ones within (shape.context 96).
    spec.contextLength = std::string_view(shape.ropeScaling) == "longrope" ? 4 * 96 : 96;
    spec.dtype = dtype;
    spec.seed = seed;
    spec.tiedOutput = seed % 2 == 0;
    Built b;
    auto writer = syntheticModelWriter(spec);
    EXPECT_TRUE(writer) << writer.error().message;
    auto bytes = writer->writeToMemory();
    EXPECT_TRUE(bytes) << bytes.error().message;
    b.bytes = std::move(*bytes);
    auto file = gguf::GgufFile::parse(b.bytes);
    EXPECT_TRUE(file) << file.error().message;
    auto reference = reference::ReferenceTransformer::load(*file, shape.context);
    EXPECT_TRUE(reference) << reference.error().message;
    b.reference = std::make_unique<reference::ReferenceTransformer>(std::move(*reference));
    auto model = Model::fromFile(std::move(*file));
    EXPECT_TRUE(model) << model.error().message;
    b.model = std::move(*model);
    return b;
}

std::vector<int32_t> randomTokens(int n, int vocab, std::mt19937_64& rng) {
    std::vector<int32_t> ids(n);
    for (int32_t& id : ids) id = int32_t(rng() % uint64_t(vocab));
    return ids;
}

// A cache of `tokens` tokens without prefix caching: every token is computed.
std::unique_ptr<KvCache> makeCache(const ModelConfig& config, int tokens, DType kvType) {
    BlockManagerConfig manager;
    manager.maxContext = config.contextLength;
    manager.prefixCaching = false;
    manager.watermark = 0;
    auto cache = KvCache::create(kvLayoutForTokens(config, tokens, 16, kvType), manager);
    EXPECT_TRUE(cache) << cache.error().message;
    return cache ? std::move(*cache) : nullptr;
}

SeqId admit(KvCache& cache, std::span<const int32_t> prompt) {
    auto admission = cache.blocks().admit(prompt);
    EXPECT_TRUE(admission) << admission.error().message;
    return admission->seq;
}

void addChunk(ForwardBatch& batch, KvCache& cache, SeqId seq, std::span<const int32_t> tokens, bool allLogits) {
    auto status = cache.addChunk(batch, seq, tokens, allLogits);
    ASSERT_TRUE(status) << status.error().message;
    ASSERT_EQ(*status, Alloc::Ok);
}

// max |engine - reference| over a row, relative to the reference's RMS;
// +inf when anything is NaN so NaN never passes.
double relativeError(std::span<const float> engine, const std::vector<double>& reference) {
    double maxDiff = 0, sumSquares = 0;
    for (size_t i = 0; i < reference.size(); ++i) {
        const double diff = std::abs(double(engine[i]) - reference[i]);
        if (!(diff == diff)) return INFINITY;
        maxDiff = std::max(maxDiff, diff);
        sumSquares += reference[i] * reference[i];
    }
    return maxDiff / std::sqrt(sumSquares / double(reference.size()));
}

using ForwardParam = std::tuple<const Shape*, DType, DType>;

// Q8_0 KV: measured up to 0.080 over 15 runs of the KvQ8 cases (F16 KV:
// 0.0039); a wrong scale or offset is O(1).
constexpr double kQ8KvBound = 0.15;

class ForwardVsReference : public testing::TestWithParam<ForwardParam> {};

TEST_P(ForwardVsReference, PrefillAndDecodeMatchFloat64Reference) {
    const auto [shape, weightType, kvType] = GetParam();
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Built b = build(*shape, weightType, seed);
    ASSERT_TRUE(b.model && b.reference);
    const int vocab = b.model->config().vocabSize;
    // F32 KV: only f32 accumulation order differs from the reference. F16 KV
    // rounds K and V to 11 significant bits; Q8_0 to steps of 1/127 of each
    // block's largest magnitude.
    const double bound = kvType == DType::F32 ? 2e-4 : kvType == DType::F16 ? 1e-2 : kQ8KvBound;

    const int n = 37;  // crosses block boundaries of 16 at odd offsets
    const std::vector<int32_t> tokens = randomTokens(n, vocab, rng);
    const auto expected = b.reference->forward(tokens);

    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    auto cache = makeCache(b.model->config(), 2 * n, kvType);
    ASSERT_TRUE(cache);

    // Prefill in uneven chunks (13 + 24), logits for every token.
    TransformerOptions options;
    options.maxContext = shape->context;
    Transformer prefill(*b.model, ops, 24, options);
    SeqId seq = admit(*cache, tokens);
    std::vector<float> logits;
    for (int done = 0; done < n;) {
        const int chunk = done == 0 ? 13 : n - done;
        ForwardBatch batch;
        addChunk(batch, *cache, seq, std::span(tokens).subspan(done, chunk), true);
        auto out = prefill.forward(batch, *cache);
        ASSERT_TRUE(out) << out.error().message;
        logits.insert(logits.end(), out->begin(), out->end());
        done += chunk;
    }
    ASSERT_EQ(cache->blocks().length(seq), n);
    for (int t = 0; t < n; ++t) {
        const double err = relativeError(std::span(logits).subspan(size_t(t) * vocab, vocab), expected[t]);
        ASSERT_LE(err, bound) << "prefill position " << t;
    }
    ASSERT_TRUE(cache->blocks().release(seq));

    // Token by token (decode), last-token logits only.
    Transformer decode(*b.model, ops, 1, options);
    seq = admit(*cache, tokens);
    for (int t = 0; t < n; ++t) {
        ForwardBatch batch;
        addChunk(batch, *cache, seq, std::span(tokens).subspan(t, 1), false);
        auto out = decode.forward(batch, *cache);
        ASSERT_TRUE(out) << out.error().message;
        const double err = relativeError(*out, expected[t]);
        ASSERT_LE(err, bound) << "decode position " << t;
        const double vsPrefill = relativeError(*out, std::vector<double>(logits.begin() + size_t(t) * vocab,
                                                                        logits.begin() + size_t(t + 1) * vocab));
        ASSERT_LE(vsPrefill, bound) << "decode vs prefill, position " << t;
    }
}

// CpuOps that records the operations the Transformer asks for, by name
// (the fused ones with their output count), before running them.
class RecordingOps final : public Ops {
public:
    std::vector<std::string> calls;

    std::string description() const override { return m_cpu.description(); }
    Result<std::unique_ptr<ActivationMemory>> allocateActivations(size_t floats) override {
        return m_cpu.allocateActivations(floats);
    }
    Result<std::unique_ptr<KvStorage>> createKvStorage(const KvLayout& layout) override {
        return m_cpu.createKvStorage(layout);
    }
    Result<uint64_t> kvMemoryAvailable() override { return m_cpu.kvMemoryAvailable(); }
    Result<std::span<const float>> readBack(const float* data, size_t n, std::vector<float>& staging) override {
        return m_cpu.readBack(data, n, staging);
    }
    uint64_t scratchBytes() const override { return m_cpu.scratchBytes(); }

    void embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) override {
        calls.push_back("embed");
        m_cpu.embed(table, ids, out);
    }
    void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) override {
        calls.push_back("rmsNorm");
        m_cpu.rmsNorm(x, weight, y, nRows, n, eps);
    }
    void addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                    float eps) override {
        calls.push_back("addRmsNorm");
        m_cpu.addRmsNorm(x, delta, weight, y, nRows, n, eps);
    }
    void matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) override {
        calls.push_back("matmul");
        m_cpu.matmul(w, x, y, nTokens);
    }
    void matmuls(std::span<const MatmulOutput> outputs, const float* x, int64_t nTokens) override {
        calls.push_back("matmuls:" + std::to_string(outputs.size()));
        m_cpu.matmuls(outputs, x, nTokens);
    }
    void rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) override {
        calls.push_back("rope");
        m_cpu.rope(x, nTokens, nHeads, positions, params);
    }
    void storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots,
                 int nTokens) override {
        calls.push_back("storeKv");
        m_cpu.storeKv(kv, layer, k, v, slots, nTokens);
    }
    void ropeStoreKv(KvStorage& kv, int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                     int nKvHeads, const int32_t* positions, const int32_t* slots,
                     const cpu::RopeParams& params) override {
        calls.push_back("ropeStoreKv");
        m_cpu.ropeStoreKv(kv, layer, q, k, v, nTokens, nHeads, nKvHeads, positions, slots, params);
    }
    void attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) override {
        calls.push_back("attention");
        m_cpu.attention(kv, layer, params);
    }
    void swiglu(const float* gate, const float* up, float* out, int64_t n) override {
        calls.push_back("swiglu");
        m_cpu.swiglu(gate, up, out, n);
    }
    void geglu(const float* gate, const float* up, float* out, int64_t n) override {
        calls.push_back("geglu");
        m_cpu.geglu(gate, up, out, n);
    }
    void scale(float* x, float s, int64_t n) override {
        calls.push_back("scale");
        m_cpu.scale(x, s, n);
    }
    void softcap(float* x, float cap, int64_t n) override {
        calls.push_back("softcap");
        m_cpu.softcap(x, cap, n);
    }
    void matmulSwiglu(const cpu::WeightMatrix& gate, const cpu::WeightMatrix& up, const float* x, float* out,
                      float* upScratch, int64_t nTokens) override {
        calls.push_back("matmulSwiglu");
        m_cpu.matmulSwiglu(gate, up, x, out, upScratch, nTokens);
    }
    void add(float* y, const float* x, int64_t n) override {
        calls.push_back("add");
        m_cpu.add(y, x, n);
    }
    void addBias(float* y, const float* bias, int64_t nRows, int64_t n) override {
        calls.push_back("addBias");
        m_cpu.addBias(y, bias, nRows, n);
    }
    void copy(float* dst, const float* src, int64_t n) override {
        calls.push_back("copy");
        m_cpu.copy(dst, src, n);
    }
    void copyFromHost(float* dst, std::span<const float> src) override {
        calls.push_back("copyFromHost");
        m_cpu.copyFromHost(dst, src);
    }
    Result<void> runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                               const std::function<void(int nRows)>& layers) override {
        calls.push_back("runDecodeStep");
        shapes.push_back(shape);
        return m_cpu.runDecodeStep(batch, shape, layers);
    }

    std::vector<DecodeStepShape> shapes;  // of each runDecodeStep

private:
    CpuOps m_cpu{CpuOpsOptions{2, std::nullopt}};
};

// The fused entry points a device backend runs as one launch each: q, k and
// v together, RoPE with the K/V store, each residual add with the norm
// after it (but the last layer's), gate and up with their SwiGLU; and the
// logits the same bits as on CpuOps, which runs the fused ops as the
// unfused ones.
TEST(ForwardOps, EachLayerUsesTheFusedEntryPoints) {
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Built b = build(kShapes[1], DType::F32, seed);
    ASSERT_TRUE(b.model);
    const int nLayers = b.model->config().nLayers;
    const std::vector<int32_t> tokens = randomTokens(5, b.model->config().vocabSize, rng);

    RecordingOps recording;
    CpuOps plain(CpuOpsOptions{2, std::nullopt});
    std::vector<std::vector<float>> logits;
    for (Ops* ops : std::initializer_list<Ops*>{&recording, &plain}) {
        auto cache = makeCache(b.model->config(), 8, DType::F32);
        ASSERT_TRUE(cache);
        Transformer transformer(*b.model, *ops, 8);
        ForwardBatch batch;
        addChunk(batch, *cache, admit(*cache, tokens), tokens, false);
        auto out = transformer.forward(batch, *cache);
        ASSERT_TRUE(out) << out.error().message;
        logits.emplace_back(out->begin(), out->end());
    }
    EXPECT_EQ(logits[0], logits[1]);

    std::vector<std::string> want = {"embed", "rmsNorm"};
    for (int l = 0; l < nLayers; ++l) {
        want.insert(want.end(), {"matmuls:3", "ropeStoreKv", "attention", "matmul", "addRmsNorm", "matmulSwiglu",
                                 "matmul", l + 1 < nLayers ? "addRmsNorm" : "add"});
    }
    want.insert(want.end(), {"copy", "rmsNorm", "matmul"});  // the last token's row, its logits
    EXPECT_EQ(recording.calls, want);
}

// A decode step tells the backend the longest context a sequence may
// reach (a device sizes its graphs' attention plans by it): the context
// set (TransformerOptions::maxContext), else the model's.
TEST(ForwardOps, ADecodeStepCarriesTheContextInEffect) {
    std::mt19937_64 rng(3);
    Built b = build(kShapes[1], DType::F32, 3);
    ASSERT_TRUE(b.model);
    const std::vector<int32_t> prompt = randomTokens(5, b.model->config().vocabSize, rng);
    for (const int context : {0, 40}) {
        SCOPED_TRACE(context);
        TransformerOptions options;
        options.decodeGraphs = true;
        options.maxContext = context;
        RecordingOps recording;
        auto cache = makeCache(b.model->config(), 8, DType::F32);
        ASSERT_TRUE(cache);
        Transformer transformer(*b.model, recording, 8, options);
        const SeqId seq = admit(*cache, prompt);
        for (const size_t n : {prompt.size(), size_t(1)}) {
            ForwardBatch batch;
            addChunk(batch, *cache, seq, std::span(prompt).first(n), false);
            ASSERT_TRUE(transformer.forward(batch, *cache));
        }
        ASSERT_EQ(recording.shapes.size(), 1u);  // the prompt ran eagerly
        EXPECT_EQ(recording.shapes[0].maxContext, context > 0 ? context : b.model->config().contextLength);
        EXPECT_EQ(recording.shapes[0].maxBatch, 8);
    }
}

// TimedOps over the CPU: the same bits as the CPU alone, every call of a
// prefill and a decode step (through runDecodeStep) counted under its
// operation, and no more time than the passes took.
TEST(ForwardOps, TimedOpsCountsEveryCallAndKeepsTheBits) {
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Built b = build(kShapes[1], DType::F32, seed);
    ASSERT_TRUE(b.model);
    const int64_t nLayers = b.model->config().nLayers;
    const std::vector<int32_t> prompt = randomTokens(5, b.model->config().vocabSize, rng);
    const std::vector<int32_t> next = randomTokens(1, b.model->config().vocabSize, rng);
    TransformerOptions options;
    options.decodeGraphs = true;

    CpuOps plain(CpuOpsOptions{2, std::nullopt});
    CpuOps inner(CpuOpsOptions{2, std::nullopt});
    TimedOps timed(inner);
    std::vector<std::vector<float>> logits;
    std::chrono::duration<double> timedWall{};
    for (Ops* ops : std::initializer_list<Ops*>{&timed, &plain}) {
        auto cache = makeCache(b.model->config(), 8, DType::F32);
        ASSERT_TRUE(cache);
        Transformer transformer(*b.model, *ops, 8, options);
        const SeqId seq = admit(*cache, prompt);
        const auto start = std::chrono::steady_clock::now();
        for (const std::vector<int32_t>* tokens : {&prompt, &next}) {
            ForwardBatch batch;
            addChunk(batch, *cache, seq, *tokens, false);
            auto out = transformer.forward(batch, *cache);
            ASSERT_TRUE(out) << out.error().message;
            logits.emplace_back(out->begin(), out->end());
        }
        if (ops == &timed) timedWall = std::chrono::steady_clock::now() - start;
    }
    EXPECT_EQ(logits[0], logits[2]);
    EXPECT_EQ(logits[1], logits[3]);

    std::map<std::string, int64_t> calls;
    for (const TimedOps::OpTime& t : timed.times()) {
        calls[std::string(TimedOps::opName(t.op))] = t.calls;
        EXPECT_GT(t.seconds, 0) << TimedOps::opName(t.op);
    }
    // Two passes of the fused entry points (ForwardOps above); the prompt's
    // last row is copied out for its logits.
    const std::map<std::string, int64_t> want = {
        {"embed", 2},       {"rms_norm", 4},          {"matmuls", 2 * nLayers},      {"rope_store_kv", 2 * nLayers},
        {"attention", 2 * nLayers}, {"matmul", 2 * (2 * nLayers + 1)}, {"add_rms_norm", 2 * (2 * nLayers - 1)},
        {"matmul_swiglu", 2 * nLayers}, {"add", 2}, {"copy", 1}, {"read_back", 2}};
    EXPECT_EQ(calls, want);
    EXPECT_LE(timed.totalSeconds(), timedWall.count());
    const std::string table = timed.table(2, "pass");
    EXPECT_TRUE(table.starts_with("operation")) << table;
    EXPECT_NE(table.find("\nattention "), std::string::npos) << table;
    EXPECT_NE(table.find("\ntotal "), std::string::npos) << table;
    const std::string json = TimedOps::json(timed.times(), 2, "pass");
    EXPECT_TRUE(json.starts_with(R"([{"op": ")") && json.ends_with("}]")) << json;
    size_t entries = 0;
    for (size_t at = json.find(R"("calls_per_pass": )"); at != std::string::npos;
         at = json.find(R"("calls_per_pass": )", at + 1)) {
        ++entries;
    }
    EXPECT_EQ(entries, want.size()) << json;
    EXPECT_NE(json.find(R"({"op": "copy", "calls_per_pass": 0.500, "us_per_pass": )"), std::string::npos) << json;
    timed.reset();
    EXPECT_TRUE(timed.times().empty());
    EXPECT_EQ(timed.totalSeconds(), 0);
}

// Switched off, TimedOps times nothing and hands decode steps to the inner
// backend (a device's graphs); the times so far stay.
TEST(ForwardOps, TimedOpsSwitchedOffPassesEveryCallThrough) {
    std::mt19937_64 rng(5);
    Built b = build(kShapes[1], DType::F32, 5);
    ASSERT_TRUE(b.model);
    RecordingOps inner;
    TimedOps timed(inner);
    TransformerOptions options;
    options.decodeGraphs = true;
    Transformer transformer(*b.model, timed, 8, options);
    auto cache = makeCache(b.model->config(), 8, DType::F32);
    ASSERT_TRUE(cache);
    const SeqId seq = admit(*cache, randomTokens(3, b.model->config().vocabSize, rng));
    auto decode = [&] {
        ForwardBatch batch;
        addChunk(batch, *cache, seq, randomTokens(1, b.model->config().vocabSize, rng), false);
        ASSERT_TRUE(transformer.forward(batch, *cache));
    };
    decode();
    const std::vector<TimedOps::OpTime> before = timed.times();
    ASSERT_FALSE(before.empty());
    EXPECT_EQ(std::ranges::count(inner.calls, std::string("runDecodeStep")), 0) << "timed steps run eagerly";

    timed.setTiming(false);
    EXPECT_FALSE(timed.timing());
    decode();
    EXPECT_EQ(std::ranges::count(inner.calls, std::string("runDecodeStep")), 1);
    const std::vector<TimedOps::OpTime> after = timed.times();
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) {
        EXPECT_EQ(after[i].calls, before[i].calls) << TimedOps::opName(after[i].op);
        EXPECT_EQ(after[i].seconds, before[i].seconds) << TimedOps::opName(after[i].op);
    }
}

std::string forwardParamName(const testing::TestParamInfo<ForwardParam>& info) {
    return std::string(std::get<0>(info.param)->name) + "_w" + std::string(dtypeName(std::get<1>(info.param))) +
           "_kv" + std::string(dtypeName(std::get<2>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ForwardVsReference,
                         testing::Combine(testing::ValuesIn(shapePointers(kShapes)),
                                          testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                                                          DType::Q4_0),
                                          testing::Values(DType::F32, DType::F16)),
                         forwardParamName);

INSTANTIATE_TEST_SUITE_P(Architectures, ForwardVsReference,
                         testing::Combine(testing::ValuesIn(shapePointers(kArchitectureShapes)),
                                          testing::Values(DType::F32, DType::F16, DType::Q8_0),
                                          testing::Values(DType::F32, DType::F16)),
                         forwardParamName);

// Q8_0 KV (head dims that are multiples of 32): llama, GQA and MQA, phi3 and qwen3.
const Shape* const kQ8KvShapes[] = {&kShapes[2], &kShapes[3], &kArchitectureShapes[3], &kArchitectureShapes[10],
                                    &kShapes256[0]};
INSTANTIATE_TEST_SUITE_P(KvQ8, ForwardVsReference,
                         testing::Combine(testing::ValuesIn(kQ8KvShapes), testing::Values(DType::F32, DType::Q8_0),
                                          testing::Values(DType::Q8_0)),
                         forwardParamName);

// The K-quants and the other formats with 5 bits or an offset.
INSTANTIATE_TEST_SUITE_P(Shapes256, ForwardVsReference,
                         testing::Combine(testing::ValuesIn(shapePointers(kShapes256)),
                                          testing::Values(DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                                          DType::Q6_K, DType::Q4_1, DType::Q5_0, DType::Q5_1),
                                          testing::Values(DType::F32, DType::F16)),
                         forwardParamName);

// The int8-matmul optimization rounds each matmul's input to 8 bits per
// block (up to max|x|/254 per element, kernels/cpu/matmul.h). With a
// block's max near 3 sigma that is uniform noise of RMS 3/(254 sqrt 3) ~ 0.7%
// of the input's, so ~0.7% of each product's RMS; over the 2 layers' 7
// matmuls and the output projection, ~sqrt(15) * 0.7% ~ 3% of the logits'
// RMS, and the worst of 448 logits ~3.5 times that: ~10% (measured up to
// 10.2% on Q5_K). Bound 0.25 against the float64 reference: a wrong scale
// or nibble is O(1). The float products keep their 2e-4.
class Int8Matmul : public testing::TestWithParam<std::tuple<const Shape*, DType>> {};

TEST_P(Int8Matmul, StaysNearTheFloat64Reference) {
    const auto [shape, weightType] = GetParam();
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Built b = build(*shape, weightType, seed);
    ASSERT_TRUE(b.model && b.reference);
    const int n = 21;
    const std::vector<int32_t> tokens = randomTokens(n, b.model->config().vocabSize, rng);
    const auto expected = b.reference->forward(tokens);

    const int vocab = b.model->config().vocabSize;
    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    for (const bool int8 : {true, false}) {
        SCOPED_TRACE(testing::Message() << "int8 matmul " << int8);
        ops.setInt8Matmul(int8 ? pagoda::Int8Matmul::Cpu : pagoda::Int8Matmul::Off);
        const double bound = int8 ? 0.25 : 2e-4;
        auto cache = makeCache(b.model->config(), n, DType::F32);
        ASSERT_TRUE(cache);
        Transformer transformer(*b.model, ops, n);
        const SeqId decoded = admit(*cache, tokens);
        for (int t = 0; t < n; ++t) {
            ForwardBatch batch;
            addChunk(batch, *cache, decoded, std::span(tokens).subspan(t, 1), false);
            auto out = transformer.forward(batch, *cache);
            ASSERT_TRUE(out) << out.error().message;
            ASSERT_LE(relativeError(*out, expected[t]), bound) << "decode position " << t;
        }
        // The prompt in one chunk: the several-token products.
        ASSERT_TRUE(cache->blocks().release(decoded));
        ForwardBatch batch;
        addChunk(batch, *cache, admit(*cache, tokens), tokens, true);
        auto out = transformer.forward(batch, *cache);
        ASSERT_TRUE(out) << out.error().message;
        for (int t = 0; t < n; ++t) {
            ASSERT_LE(relativeError(std::span(*out).subspan(size_t(t) * vocab, vocab), expected[t]), bound)
                << "prefill position " << t;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Types, Int8Matmul,
                         testing::Combine(testing::Values(&kShapes256[0]),
                                          testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                                          DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                                          DType::Q5_K, DType::Q6_K)),
                         [](const testing::TestParamInfo<std::tuple<const Shape*, DType>>& info) {
                             return std::string(dtypeName(std::get<1>(info.param)));
                         });

TEST(ForwardBatch, SeveralSequencesInOneBatchMatchEachAlone) {
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Built b = build(kShapes[1], DType::F32, seed);
    ASSERT_TRUE(b.model);
    const int vocab = b.model->config().vocabSize;
    CpuOps ops(CpuOpsOptions{2, std::nullopt});

    // Sequence A: prompt 21 then 3 decode steps; B: prompt 5 then decode; C: prompt 30.
    const std::vector<int32_t> a = randomTokens(24, vocab, rng);
    const std::vector<int32_t> bTokens = randomTokens(8, vocab, rng);
    const std::vector<int32_t> c = randomTokens(30, vocab, rng);

    auto alone = [&](const std::vector<int32_t>& tokens) {
        auto cache = makeCache(b.model->config(), 64, DType::F32);
        Transformer t(*b.model, ops, 64);
        ForwardBatch batch;
        addChunk(batch, *cache, admit(*cache, tokens), tokens, true);
        auto out = t.forward(batch, *cache);
        EXPECT_TRUE(out) << out.error().message;
        return out ? std::vector<float>(out->begin(), out->end()) : std::vector<float>{};
    };
    const auto aAlone = alone(a), bAlone = alone(bTokens), cAlone = alone(c);

    auto cache = makeCache(b.model->config(), 128, DType::F32);
    ASSERT_TRUE(cache);
    Transformer t(*b.model, ops, 64);
    const SeqId sa = admit(*cache, a), sb = admit(*cache, bTokens), sc = admit(*cache, c);
    auto expectRow = [&](std::span<const float> got, const std::vector<float>& want, int position) {
        std::vector<double> ref(want.begin() + size_t(position) * vocab, want.begin() + size_t(position + 1) * vocab);
        EXPECT_LE(relativeError(got, ref), 1e-5) << "position " << position;
    };

    // Step 1: prefill A (21) and B (5) together.
    ForwardBatch step1;
    addChunk(step1, *cache, sa, std::span(a).first(21), false);
    addChunk(step1, *cache, sb, std::span(bTokens).first(5), false);
    auto out1 = t.forward(step1, *cache);
    ASSERT_TRUE(out1) << out1.error().message;
    expectRow(out1->subspan(0, vocab), aAlone, 20);
    expectRow(out1->subspan(vocab, vocab), bAlone, 4);

    // Steps 2-4: decode A and B while C's prompt is prefilled in chunks of 10.
    for (int s = 0; s < 3; ++s) {
        ForwardBatch step;
        addChunk(step, *cache, sa, std::span(a).subspan(21 + s, 1), false);
        addChunk(step, *cache, sb, std::span(bTokens).subspan(5 + s, 1), false);
        addChunk(step, *cache, sc, std::span(c).subspan(10 * s, 10), true);
        auto out = t.forward(step, *cache);
        ASSERT_TRUE(out) << out.error().message;
        expectRow(out->subspan(0, vocab), aAlone, 21 + s);
        expectRow(out->subspan(vocab, vocab), bAlone, 5 + s);
        for (int i = 0; i < 10; ++i) expectRow(out->subspan(size_t(2 + i) * vocab, vocab), cAlone, 10 * s + i);
    }
}

}  // namespace
}  // namespace pagoda

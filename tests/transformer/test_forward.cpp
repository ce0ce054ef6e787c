// The engine's forward pass against the independent float64 reference, on
// fresh random synthetic models: MHA, GQA and MQA, several head dims and
// weight types, F32 and F16 KV; prefill vs token-by-token decode; a batch
// of several sequences vs each sequence alone.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "engine/backend/cpu_ops.h"
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
};

// head dims 16, 32, 64 and 80; MHA, GQA 4:1, MQA
const Shape kShapes[] = {
    {"mha_hd16", 64, 4, 4, 96},
    {"gqa4_hd16", 128, 8, 2, 160},
    {"mqa_hd32", 128, 4, 1, 128},
    {"gqa2_hd64", 128, 2, 1, 96},
    {"mha_hd80", 160, 2, 2, 64},
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
    spec.dim = shape.dim;
    spec.nLayers = 2;
    spec.nHeads = shape.heads;
    spec.nKvHeads = shape.kvHeads;
    spec.ffnDim = shape.ffn;
    spec.vocabSize = 448;
    spec.contextLength = 96;
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
    auto reference = reference::ReferenceTransformer::load(*file);
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
    // rounds K and V to 11 significant bits.
    const double bound = kvType == DType::F32 ? 2e-4 : 1e-2;

    const int n = 37;  // crosses block boundaries of 16 at odd offsets
    const std::vector<int32_t> tokens = randomTokens(n, vocab, rng);
    const auto expected = b.reference->forward(tokens);

    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    auto cache = makeCache(b.model->config(), 2 * n, kvType);
    ASSERT_TRUE(cache);

    // Prefill in uneven chunks (13 + 24), logits for every token.
    Transformer prefill(*b.model, ops, 24);
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
    Transformer decode(*b.model, ops, 1);
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
        ASSERT_LE(vsPrefill, kvType == DType::F32 ? 2e-4 : 1e-2) << "decode vs prefill, position " << t;
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

// The K-quants and the other formats with 5 bits or an offset.
INSTANTIATE_TEST_SUITE_P(Shapes256, ForwardVsReference,
                         testing::Combine(testing::ValuesIn(shapePointers(kShapes256)),
                                          testing::Values(DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                                          DType::Q6_K, DType::Q4_1, DType::Q5_0, DType::Q5_1),
                                          testing::Values(DType::F32, DType::F16)),
                         forwardParamName);

// The int8-decode optimization rounds each matmul's input to 8 bits per
// block (up to max|x|/254 per element, kernels/cpu/matmul.h). With a
// block's max near 3 sigma that is uniform noise of RMS 3/(254 sqrt 3) ~ 0.7%
// of the input's, so ~0.7% of each product's RMS; over the 2 layers' 7
// matmuls and the output projection, ~sqrt(15) * 0.7% ~ 3% of the logits'
// RMS, and the worst of 448 logits ~3.5 times that: ~10% (measured up to
// 10.2% on Q5_K). Bound 0.25 against the float64 reference: a wrong scale
// or nibble is O(1). The default (float) decode keeps its 2e-4.
class Int8Decode : public testing::TestWithParam<std::tuple<const Shape*, DType>> {};

TEST_P(Int8Decode, StaysNearTheFloat64Reference) {
    const auto [shape, weightType] = GetParam();
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Built b = build(*shape, weightType, seed);
    ASSERT_TRUE(b.model && b.reference);
    const int n = 21;
    const std::vector<int32_t> tokens = randomTokens(n, b.model->config().vocabSize, rng);
    const auto expected = b.reference->forward(tokens);

    CpuOps ops(CpuOpsOptions{2, std::nullopt});
    for (const bool int8 : {true, false}) {
        SCOPED_TRACE(testing::Message() << "int8 decode " << int8);
        ops.setInt8Decode(int8);
        auto cache = makeCache(b.model->config(), n, DType::F32);
        ASSERT_TRUE(cache);
        Transformer decode(*b.model, ops, 1);
        const SeqId seq = admit(*cache, tokens);
        for (int t = 0; t < n; ++t) {
            ForwardBatch batch;
            addChunk(batch, *cache, seq, std::span(tokens).subspan(t, 1), false);
            auto out = decode.forward(batch, *cache);
            ASSERT_TRUE(out) << out.error().message;
            ASSERT_LE(relativeError(*out, expected[t]), int8 ? 0.25 : 2e-4) << "position " << t;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Types, Int8Decode,
                         testing::Combine(testing::Values(&kShapes256[0]),
                                          testing::Values(DType::Q8_0, DType::Q4_0, DType::Q2_K, DType::Q3_K,
                                                          DType::Q4_K, DType::Q5_K, DType::Q6_K)),
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

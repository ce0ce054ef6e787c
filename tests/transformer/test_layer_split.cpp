// A model split across two backends by layer (LayerSplitOps), here two CPU
// backends so that it runs anywhere: the logits of every split point match
// one backend's bit for bit (prefill of two sequences, decode steps eager
// and through runDecodeStep, a forked sequence's copied blocks); each
// backend runs its own layers, keeps only their KV pools and gets the
// residual stream once per pass; the split's own errors and its KV budget.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <span>
#include <vector>

#include "engine/backend/cpu_ops.h"
#include "engine/backend/layer_split_ops.h"
#include "engine/backend/timed_ops.h"
#include "engine/transformer/transformer.h"
#include "tests/built_model.h"

namespace pagoda {
namespace {

using ::testing::HasSubstr;

constexpr int kLayers = 4;

// GQA (8 query heads over 2 KV heads), F16 weights, untied output.
test::BuiltModel buildModel() {
    SyntheticSpec spec;
    spec.dim = 128;
    spec.nLayers = kLayers;
    spec.nHeads = 8;
    spec.nKvHeads = 2;
    spec.ffnDim = 192;
    spec.vocabSize = 448;
    spec.contextLength = 128;
    spec.dtype = DType::F16;
    spec.seed = 2026;
    spec.tiedOutput = false;
    return test::buildModel(spec);
}

std::unique_ptr<KvCache> makeCache(const ModelConfig& config, Ops& ops) {
    BlockManagerConfig manager;
    manager.maxContext = config.contextLength;
    manager.watermark = 0;
    auto cache = KvCache::create(kvLayoutForTokens(config, 256, 16, DType::F32), manager, &ops);
    EXPECT_TRUE(cache) << cache.error().message;
    return cache ? std::move(*cache) : nullptr;
}

std::unique_ptr<LayerSplitOps> split(std::unique_ptr<Ops> first, std::unique_ptr<Ops> second, int secondFrom) {
    auto ops = LayerSplitOps::create(std::move(first), std::move(second), secondFrom, kLayers);
    EXPECT_TRUE(ops) << ops.error().message;
    return ops ? std::move(*ops) : nullptr;
}

std::unique_ptr<CpuOps> cpu() { return std::make_unique<CpuOps>(CpuOpsOptions{2, std::nullopt}); }

// Every logit of a fixed run on `ops`: a prefill of two prompts in one
// batch, a fork of the first, then `steps` decode steps of all three (the
// next token of each chosen from the seed, not the logits, so that every
// backend gets the same batches).
std::vector<float> run(const Model& model, Ops& ops, bool graphs, int steps = 5) {
    const ModelConfig& c = model.config();
    TransformerOptions options;
    options.decodeGraphs = graphs;
    Transformer transformer(model, ops, 64, options);
    std::unique_ptr<KvCache> cache = makeCache(c, ops);
    if (!cache) return {};
    std::mt19937_64 rng(99);
    auto tokens = [&](int n) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (int32_t& id : ids) id = int32_t(rng() % uint64_t(c.vocabSize));
        return ids;
    };
    std::vector<float> all;
    auto forward = [&](const ForwardBatch& batch) {
        auto logits = transformer.forward(batch, *cache);
        EXPECT_TRUE(logits) << logits.error().message;
        if (logits) all.insert(all.end(), logits->begin(), logits->end());
    };

    const std::vector<std::vector<int32_t>> prompts = {tokens(21), tokens(9)};
    std::vector<SeqId> seqs;
    ForwardBatch prefill;
    for (const auto& prompt : prompts) {
        auto admission = cache->blocks().admit(prompt);
        EXPECT_TRUE(admission) << admission.error().message;
        if (!admission) return {};
        seqs.push_back(admission->seq);
        EXPECT_TRUE(cache->addChunk(prefill, admission->seq, prompt, false));
    }
    forward(prefill);
    // The fork shares the first's full blocks and copies its partial one.
    auto fork = cache->blocks().fork(seqs[0]);
    EXPECT_TRUE(fork) << fork.error().message;
    if (!fork) return {};
    EXPECT_TRUE(cache->copyBlocks(fork->copies));
    seqs.push_back(fork->seq);
    for (int step = 0; step < steps; ++step) {
        ForwardBatch decode;
        for (const SeqId seq : seqs) EXPECT_TRUE(cache->addChunk(decode, seq, tokens(1), false));
        forward(decode);
    }
    return all;
}

TEST(LayerSplit, LogitsOfEverySplitPointMatchOneBackendBitForBit) {
    const test::BuiltModel built = buildModel();
    for (const bool graphs : {false, true}) {
        SCOPED_TRACE(graphs ? "decode through runDecodeStep" : "eager decode");
        CpuOps whole{CpuOpsOptions{2, std::nullopt}};
        const std::vector<float> want = run(*built.model, whole, graphs);
        ASSERT_EQ(want.size(), size_t(2 + 5 * 3) * size_t(built.model->config().vocabSize));
        for (int from = 1; from < kLayers; ++from) {
            SCOPED_TRACE("the second backend from layer " + std::to_string(from));
            const auto ops = split(cpu(), cpu(), from);
            ASSERT_NE(ops, nullptr);
            EXPECT_EQ(run(*built.model, *ops, graphs), want);  // NaN never equals
            EXPECT_TRUE(ops->status());
        }
    }
}

TEST(LayerSplit, EachBackendRunsItsLayersAndTheSecondTheOutput) {
    const test::BuiltModel built = buildModel();
    CpuOps firstCpu{CpuOpsOptions{2, std::nullopt}};
    CpuOps secondCpu{CpuOpsOptions{2, std::nullopt}};
    auto firstTimed = std::make_unique<TimedOps>(firstCpu);
    auto secondTimed = std::make_unique<TimedOps>(secondCpu);
    TimedOps& first = *firstTimed;
    TimedOps& second = *secondTimed;
    const auto ops = split(std::move(firstTimed), std::move(secondTimed), 1);
    ASSERT_NE(ops, nullptr);
    const int steps = 3;
    ASSERT_FALSE(run(*built.model, *ops, false, steps).empty());
    const int passes = 1 + steps;
    auto calls = [](const TimedOps& timed, TimedOps::Op op) {
        for (const TimedOps::OpTime& t : timed.times()) {
            if (t.op == op) return t.calls;
        }
        return int64_t(0);
    };
    // Layer 0 on the first: embedding, one gate/up per pass, no output.
    EXPECT_EQ(calls(first, TimedOps::Op::Embed), passes);
    EXPECT_EQ(calls(first, TimedOps::Op::MatmulSwiglu), passes);
    EXPECT_EQ(calls(first, TimedOps::Op::Attention), passes);
    EXPECT_EQ(calls(first, TimedOps::Op::ReadBack), passes);  // the residual stream, read where it is
    EXPECT_EQ(calls(first, TimedOps::Op::Matmul), 2 * passes);  // wo and down of layer 0
    // Layers 1-3 and the output on the second, which gets the residual
    // stream once per pass.
    EXPECT_EQ(calls(second, TimedOps::Op::Embed), 0);
    EXPECT_EQ(calls(second, TimedOps::Op::MatmulSwiglu), (kLayers - 1) * passes);
    EXPECT_EQ(calls(second, TimedOps::Op::Attention), (kLayers - 1) * passes);
    EXPECT_EQ(calls(second, TimedOps::Op::Matmul), (2 * (kLayers - 1) + 1) * passes);
    EXPECT_EQ(calls(second, TimedOps::Op::Copy), passes + 2);  // the residual stream, and the prefill's two last rows
}

// TimedOps over a split times both backends' calls: the same logits, every
// layer's calls counted once.
TEST(LayerSplit, TimingASplitTimesTheCallsOfBoth) {
    const test::BuiltModel built = buildModel();
    CpuOps whole{CpuOpsOptions{2, std::nullopt}};
    const std::vector<float> want = run(*built.model, whole, true, 3);
    const auto ops = split(cpu(), cpu(), 3);
    ASSERT_NE(ops, nullptr);
    TimedOps timed(*ops);
    EXPECT_EQ(run(*built.model, timed, true, 3), want);
    const int passes = 1 + 3;
    std::map<TimedOps::Op, int64_t> calls;
    for (const TimedOps::OpTime& t : timed.times()) calls[t.op] = t.calls;
    EXPECT_EQ(calls[TimedOps::Op::Embed], passes);
    EXPECT_EQ(calls[TimedOps::Op::MatmulSwiglu], kLayers * passes);
    EXPECT_EQ(calls[TimedOps::Op::Attention], kLayers * passes);
    EXPECT_GT(timed.totalSeconds(), 0);
    // Each backend's time: the calls of both add up to the total.
    const std::vector<TimedOps::PartTime> parts = timed.parts();
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].backend, "cpu");
    EXPECT_GT(parts[0].seconds, 0);
    EXPECT_GT(parts[1].seconds, 0);
    EXPECT_NEAR(parts[0].seconds + parts[1].seconds, timed.totalSeconds(), 1e-9);
    const std::string table = timed.table(passes, "pass");
    EXPECT_NE(table.find("\non cpu "), std::string::npos) << table;
    timed.reset();
    EXPECT_TRUE(timed.times().empty());
    EXPECT_EQ(timed.parts()[0].seconds, 0);
}

TEST(LayerSplit, EachBackendKeepsThePoolsOfItsLayers) {
    auto ops = split(cpu(), cpu(), 3);
    ASSERT_NE(ops, nullptr);
    KvLayout layout{kLayers, 2, 16, 16, 8, DType::F32};
    auto storage = ops->createKvStorage(layout);
    ASSERT_TRUE(storage) << storage.error().message;
    std::vector<const void*> keys;
    for (int l = 0; l < kLayers; ++l) {
        const KvStorage::Part part = (*storage)->part(l);
        EXPECT_EQ(part.layer, l < 3 ? l : l - 3) << "layer " << l;
        const cpu::PagedKvView view = part.storage->view(part.layer);
        EXPECT_EQ(view.k, (*storage)->view(l).k) << "layer " << l;
        keys.push_back(view.k);
    }
    // Layers 0-2 are one storage's, layer 3 another's: the first three's
    // pools lie one layer's K and V apart, the last's elsewhere.
    const size_t layerBytes = 2 * layout.poolBytesPerBlock() * size_t(layout.numBlocks);
    EXPECT_EQ(static_cast<const uint8_t*>(keys[1]) - static_cast<const uint8_t*>(keys[0]), ptrdiff_t(layerBytes));
    EXPECT_EQ(static_cast<const uint8_t*>(keys[2]) - static_cast<const uint8_t*>(keys[1]), ptrdiff_t(layerBytes));
    EXPECT_NE((*storage)->part(3).storage, (*storage)->part(2).storage);
    EXPECT_EQ((*storage)->part(0).storage, (*storage)->part(2).storage);

    layout.nLayers = kLayers + 1;
    const auto mismatched = ops->createKvStorage(layout);
    ASSERT_FALSE(mismatched);
    EXPECT_THAT(mismatched.error().message, HasSubstr("5 layers for a model of 4"));
}

TEST(LayerSplit, TheBudgetIsWhatBothBackendsHoldTheirShareOf) {
    auto first = cpu();
    auto second = cpu();
    CpuOps& firstCpu = *first;
    CpuOps& secondCpu = *second;
    auto ops = split(std::move(first), std::move(second), 1);
    ASSERT_NE(ops, nullptr);
    // The first holds 1 layer of 4, the second 3: each share is its bytes.
    firstCpu.setKvMemoryLimit(100 << 20);
    secondCpu.setKvMemoryLimit(600 << 20);
    EXPECT_EQ(ops->kvMemoryAvailable().value(), uint64_t(400) << 20);
    secondCpu.setKvMemoryLimit(150 << 20);
    EXPECT_EQ(ops->kvMemoryAvailable().value(), uint64_t(200) << 20);

    // The automatic budget's bound: each backend's beside the activations
    // it allocates, the logits' only on the second.
    const test::BuiltModel built = buildModel();
    const ModelConfig& c = built.model->config();
    const int maxTokens = 64;
    const uint64_t activations = Transformer::activationBytes(c, maxTokens);
    const uint64_t logits = uint64_t(maxTokens) * uint64_t(c.vocabSize) * sizeof(float);
    secondCpu.setKvMemoryLimit(600 << 20);
    EXPECT_EQ(kvMemoryBesideActivations(*ops, nullptr, c, maxTokens).value(),
              std::min(((100u << 20) - (activations - logits)) * 4, ((600u << 20) - activations) / 3 * 4));
    secondCpu.setKvMemoryLimit(150 << 20);
    EXPECT_EQ(kvMemoryBesideActivations(*ops, nullptr, c, maxTokens).value(),
              std::min(((100u << 20) - (activations - logits)) * 4, ((150u << 20) - activations) / 3 * 4));
}

TEST(LayerSplit, ItsOwnOperationsAndBadSplitsAreErrors) {
    for (const int from : {0, kLayers, -1}) {
        const auto bad = LayerSplitOps::create(cpu(), cpu(), from, kLayers);
        ASSERT_FALSE(bad) << from;
        EXPECT_THAT(bad.error().message, HasSubstr("each backend needs at least one"));
    }
    EXPECT_FALSE(LayerSplitOps::create(cpu(), nullptr, 1, kLayers));
    EXPECT_EQ(describeLayers(3, 4), "layer 3");
    EXPECT_EQ(describeLayers(0, 3), "layers 0-2");

    auto ops = split(cpu(), cpu(), 2);
    ASSERT_NE(ops, nullptr);
    EXPECT_THAT(ops->description(), HasSubstr("; layers 2-3 of 4 (layers 0-1 on cpu: 2 threads"));
    float x[4] = {};
    ops->add(x, x, 4);
    const Result<void> status = ops->status();
    ASSERT_FALSE(status);
    EXPECT_THAT(status.error().message, HasSubstr("an operation called on a layer split itself"));
    EXPECT_TRUE(ops->status());  // reported once
}

}  // namespace
}  // namespace pagoda

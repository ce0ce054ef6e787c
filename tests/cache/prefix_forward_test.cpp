// The block manager driving the real forward pass on a synthetic model:
// a prompt that reuses cached prefix blocks (its prefill skipped) gives the
// logits of computing it from scratch, and a fork whose copy-on-write
// copies are applied to the pools decodes like its parent.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "engine/backend/cpu_ops.h"
#include "engine/cache/block_manager.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"

namespace pagoda {
namespace {

constexpr int kBlockSize = 16;
constexpr int kBlocks = 16;

class PrefixForward : public testing::Test {
protected:
    void SetUp() override {
        SyntheticSpec spec;
        spec.dim = 64;
        spec.nLayers = 2;
        spec.nHeads = 4;
        spec.nKvHeads = 2;
        spec.ffnDim = 96;
        spec.vocabSize = 448;
        spec.contextLength = 256;
        spec.seed = 7;
        auto writer = syntheticModelWriter(spec);
        ASSERT_TRUE(writer) << writer.error().message;
        auto bytes = writer->writeToMemory();
        ASSERT_TRUE(bytes) << bytes.error().message;
        m_bytes = std::move(*bytes);
        auto file = gguf::GgufFile::parse(m_bytes);
        ASSERT_TRUE(file) << file.error().message;
        auto model = Model::fromFile(std::move(*file));
        ASSERT_TRUE(model) << model.error().message;
        m_model = std::move(*model);

        KvLayout layout = kvLayoutForTokens(m_model->config(), kBlocks * kBlockSize, kBlockSize, DType::F32);
        BlockManagerConfig config;
        config.maxContext = spec.contextLength;
        config.hashSeed = 11;
        auto cache = KvCache::create(layout, config);
        ASSERT_TRUE(cache) << cache.error().message;
        m_cache = std::move(*cache);
        m_transformer.emplace(*m_model, m_ops, 64);
    }

    // Appends `tokens` to seq through the manager and runs them; returns the last token's logits.
    std::vector<float> run(SeqId seq, const std::vector<int32_t>& tokens) {
        const int start = *manager().length(seq);
        ForwardBatch batch;
        auto alloc = m_cache->addChunk(batch, seq, tokens, false);
        EXPECT_TRUE(alloc && *alloc == Alloc::Ok);
        const auto table = *manager().blockTable(seq);
        for (size_t i = 0; i < tokens.size(); ++i) {
            const int pos = start + int(i);
            EXPECT_EQ(batch.slots[i], table[pos / kBlockSize] * kBlockSize + pos % kBlockSize);
        }
        auto logits = m_transformer->forward(batch, *m_cache);
        EXPECT_TRUE(logits) << logits.error().message;
        if (!logits) return {};
        return {logits->begin(), logits->end()};
    }

    BlockManager& manager() { return m_cache->blocks(); }

    // The same prompt computed from scratch in a cache of its own.
    std::vector<float> fromScratch(const std::vector<int32_t>& tokens) {
        BlockManagerConfig config;
        config.maxContext = m_model->config().contextLength;
        config.prefixCaching = false;
        auto cache = KvCache::create(kvLayoutForTokens(m_model->config(), 128, kBlockSize, DType::F32), config);
        EXPECT_TRUE(cache) << cache.error().message;
        auto admission = (*cache)->blocks().admit(tokens);
        EXPECT_TRUE(admission);
        ForwardBatch batch;
        EXPECT_TRUE((*cache)->addChunk(batch, admission->seq, tokens, false));
        auto logits = m_transformer->forward(batch, **cache);
        EXPECT_TRUE(logits) << logits.error().message;
        if (!logits) return {};
        return {logits->begin(), logits->end()};
    }

    // NaN into every free block, so that reading one (a wrong table entry,
    // a missing copy) shows in the logits.
    void poisonFreeBlocks() {
        const KvLayout& layout = m_cache->layout();
        const size_t blockFloats = layout.poolBytesPerBlock() / sizeof(float);  // an f32 cache
        const auto map = manager().blockMap();
        for (int l = 0; l < layout.nLayers; ++l) {
            for (void* pool : {m_cache->keys(l), m_cache->values(l)}) {
                for (size_t b = 0; b < map.size(); ++b) {
                    if (map[b].state != BlockState::Free) continue;
                    float* block = static_cast<float*>(pool) + b * blockFloats;
                    std::fill(block, block + blockFloats, std::nanf(""));
                }
            }
        }
    }

    std::vector<int32_t> randomTokens(int n) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (int32_t& id : ids) id = int32_t(m_rng() % uint64_t(m_model->config().vocabSize));
        return ids;
    }

    static double maxRelativeDiff(const std::vector<float>& a, const std::vector<float>& b) {
        double maxDiff = 0, sumSquares = 0;
        for (size_t i = 0; i < a.size(); ++i) {
            const double diff = std::abs(double(a[i]) - double(b[i]));
            if (!(diff == diff)) return INFINITY;
            maxDiff = std::max(maxDiff, diff);
            sumSquares += double(b[i]) * double(b[i]);
        }
        return maxDiff / std::sqrt(sumSquares / double(b.size()));
    }

    std::mt19937_64 m_rng{12345};
    std::vector<uint8_t> m_bytes;
    std::unique_ptr<Model> m_model;
    std::unique_ptr<KvCache> m_cache;
    CpuOps m_ops{CpuOpsOptions{2, std::nullopt}};
    std::optional<Transformer> m_transformer;
};

TEST_F(PrefixForward, CachedPrefixGivesFromScratchLogits) {
    const std::vector<int32_t> first = randomTokens(40);
    const SeqId a = manager().admit(first)->seq;
    run(a, first);
    ASSERT_TRUE(manager().release(a));
    poisonFreeBlocks();

    // Same 35 first tokens, another ending: blocks 0 and 1 (32 tokens) are reused.
    std::vector<int32_t> second(first.begin(), first.begin() + 35);
    const std::vector<int32_t> ending = randomTokens(10);
    second.insert(second.end(), ending.begin(), ending.end());
    auto admission = manager().admit(second);
    ASSERT_TRUE(admission);
    ASSERT_EQ(admission->hitTokens, 32);
    const auto cached = run(admission->seq, std::vector<int32_t>(second.begin() + 32, second.end()));
    EXPECT_LE(maxRelativeDiff(cached, fromScratch(second)), 1e-5);
    auto valid = manager().validate();
    EXPECT_TRUE(valid) << valid.error().message;
}

TEST_F(PrefixForward, ForkWithAppliedCopiesDecodesLikeItsParent) {
    const std::vector<int32_t> prompt = randomTokens(37);  // the last block is partly filled
    const SeqId parent = manager().admit(prompt)->seq;
    run(parent, prompt);
    poisonFreeBlocks();
    auto fork = manager().fork(parent);
    ASSERT_TRUE(fork && fork->status == Alloc::Ok);
    ASSERT_EQ(fork->copies.size(), 1u);
    ASSERT_TRUE(m_cache->copyBlocks(fork->copies));

    const std::vector<int32_t> next = randomTokens(3);
    std::vector<float> parentLogits, childLogits;
    for (int32_t token : next) {
        parentLogits = run(parent, {token});
        childLogits = run(fork->seq, {token});
        EXPECT_LE(maxRelativeDiff(childLogits, parentLogits), 1e-6);
    }
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), next.begin(), next.end());
    EXPECT_LE(maxRelativeDiff(childLogits, fromScratch(all)), 1e-5);
}

}  // namespace
}  // namespace pagoda

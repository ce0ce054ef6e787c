#pragma once
// Shared by the runtime tests: tiny synthetic models built in memory, an
// EngineEvents recorder, greedy requests, and a small JSON checker.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/generation/generator.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/runtime/engine.h"

namespace pagoda::runtime::testing {

struct TestModel {
    std::vector<uint8_t> bytes;  // owns the GGUF the model views
    std::unique_ptr<Model> model;
};

// The model `spec` writes, loaded from memory.
inline TestModel syntheticModel(const SyntheticSpec& spec) {
    TestModel m;
    auto bytes = syntheticModelWriter(spec)->writeToMemory();
    EXPECT_TRUE(bytes) << bytes.error().message;
    m.bytes = std::move(*bytes);
    auto file = gguf::GgufFile::parse(m.bytes);
    EXPECT_TRUE(file) << file.error().message;
    auto model = Model::fromFile(std::move(*file));
    EXPECT_TRUE(model) << model.error().message;
    m.model = std::move(*model);
    return m;
}

// The `tiny` preset (dim 64, 2 layers, 4 query heads over 2 KV heads,
// vocab 512) with F32 weights and the given context.
// headDim 0: the preset's 16 (dim / heads); else written as the key length.
inline TestModel tinyModel(int contextLength, uint64_t seed = 42, int headDim = 0) {
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.contextLength = contextLength;
    spec.headDim = headDim;
    spec.dtype = DType::F32;
    spec.seed = seed;
    return syntheticModel(spec);
}

// Optimized, with F32 KV (exact comparisons) and a budget in blocks of 16.
inline OptimizationConfig testConfig(int budgetBlocks = 256) {
    OptimizationConfig c = OptimizationConfig::optimized();
    c.kvType = DType::F32;
    c.maxBatch = 8;
    c.maxBatchTokens = 64;
    // tiny: 2 (K, V) x 2 layers x 2 KV heads x 16 tokens x 16 dims x 4 bytes per block
    c.kvBudgetBytes = uint64_t(budgetBlocks) * 2 * 2 * 2 * 16 * 16 * 4;
    return c;
}

inline std::vector<int32_t> randomTokens(int n, std::mt19937_64& rng, int vocab = 512) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = int32_t(3 + rng() % uint64_t(vocab - 3));  // past <unk> <s> </s>
    return ids;
}

// Greedy, no repetition penalty, EOS ignored: maxNewTokens tokens exactly.
inline Request greedyRequest(std::vector<int32_t> prompt, int maxNewTokens) {
    Request r;
    r.promptTokens = std::move(prompt);
    r.sampling.temperature = 0;
    r.sampling.repeatPenalty = 1;
    r.maxNewTokens = maxNewTokens;
    r.stopAtEndOfGeneration = false;
    return r;
}

// Records every event; safe to read from another thread than the engine's.
class Recorder : public EngineEvents {
public:
    void onToken(RequestId id, int32_t token) override {
        std::lock_guard lock(m_mutex);
        m_tokens[id].push_back(token);
    }
    void onText(RequestId id, std::string_view text) override {
        std::lock_guard lock(m_mutex);
        m_text[id] += text;
    }
    void onFinished(const FinishEvent& event) override {
        {
            std::lock_guard lock(m_mutex);
            m_finishes[event.id].push_back(event);
        }
        m_changed.notify_all();
    }

    std::vector<int32_t> tokens(RequestId id) const {
        std::lock_guard lock(m_mutex);
        auto it = m_tokens.find(id);
        return it == m_tokens.end() ? std::vector<int32_t>{} : it->second;
    }
    std::string text(RequestId id) const {
        std::lock_guard lock(m_mutex);
        auto it = m_text.find(id);
        return it == m_text.end() ? std::string{} : it->second;
    }
    std::vector<FinishEvent> finishes(RequestId id) const {
        std::lock_guard lock(m_mutex);
        auto it = m_finishes.find(id);
        return it == m_finishes.end() ? std::vector<FinishEvent>{} : it->second;
    }
    std::map<RequestId, std::vector<FinishEvent>> allFinishes() const {
        std::lock_guard lock(m_mutex);
        return m_finishes;
    }
    // Waits until `count` requests have finished; false on timeout.
    template <class Duration>
    bool waitForFinishes(size_t count, Duration timeout) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, timeout, [&] { return m_finishes.size() >= count; });
    }

private:
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::map<RequestId, std::vector<int32_t>> m_tokens;
    std::map<RequestId, std::string> m_text;
    std::map<RequestId, std::vector<FinishEvent>> m_finishes;
};

// Eight prompts, every other one starting with the same 40 tokens (two
// full blocks of 16 to share), each with a tail of 10 + 7i tokens of its own.
inline std::vector<std::vector<int32_t>> sharedPrefixPrompts(uint64_t seed = 11) {
    std::mt19937_64 rng(seed);
    const std::vector<int32_t> shared = randomTokens(40, rng);
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 8; ++i) {
        std::vector<int32_t> prompt;
        if (i % 2 == 0) prompt = shared;
        const std::vector<int32_t> tail = randomTokens(10 + 7 * i, rng);
        prompt.insert(prompt.end(), tail.begin(), tail.end());
        prompts.push_back(std::move(prompt));
    }
    return prompts;
}

// Runs greedy requests for the prompts together on one engine until all
// finish (validating the engine after every step); the tokens of each.
inline std::vector<std::vector<int32_t>> runTogether(const Model& model, Ops& ops,
                                                     const std::vector<std::vector<int32_t>>& prompts,
                                                     const OptimizationConfig& config, int maxNewTokens,
                                                     StatsSnapshot* stats = nullptr) {
    Recorder events;
    auto engine = Engine::create(model, ops, config, &events);
    EXPECT_TRUE(engine) << engine.error().message;
    if (!engine) return {};
    std::vector<RequestId> ids;
    for (const auto& prompt : prompts) ids.push_back((*engine)->submit(greedyRequest(prompt, maxNewTokens)).value());
    while ((*engine)->step()) EXPECT_TRUE((*engine)->validate());
    if (stats) *stats = (*engine)->snapshot();
    std::vector<std::vector<int32_t>> out;
    for (RequestId id : ids) {
        const std::vector<FinishEvent> finishes = events.finishes(id);
        EXPECT_EQ(finishes.size(), 1u);
        if (finishes.size() == 1) {
            EXPECT_EQ(finishes[0].reason, FinishReason::Length) << finishes[0].message;
        }
        out.push_back(events.tokens(id));
    }
    return out;
}

// A greedy choice from a row of logits, and how clear it is: the gap to the
// runner-up relative to the logits' RMS.
struct GreedyChoice {
    int32_t token = -1;
    float margin = 0;
};

// The greedy choice at each position where `generated` was sampled after
// `prompt`: one prefill of prompt + generated (but its last token) on
// `generator`. Empty (with a test failure) when the prefill fails.
inline std::vector<GreedyChoice> greedyChoices(Generator& generator, const std::vector<int32_t>& prompt,
                                               const std::vector<int32_t>& generated, int vocab) {
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), generated.begin(), generated.end() - 1);
    auto logits = generator.promptLogits(all);
    EXPECT_TRUE(logits) << logits.error().message;
    if (!logits) return {};
    std::vector<GreedyChoice> choices;
    for (size_t g = 0; g < generated.size(); ++g) {
        const auto row = std::span(*logits).subspan((prompt.size() - 1 + g) * size_t(vocab), size_t(vocab));
        const auto best = std::max_element(row.begin(), row.end());
        float second = -INFINITY;
        float sumSquares = 0;
        for (auto it = row.begin(); it != row.end(); ++it) {
            if (it != best) second = std::max(second, *it);
            sumSquares += *it * *it;
        }
        choices.push_back({int32_t(best - row.begin()), (*best - second) / std::sqrt(sumSquares / float(vocab))});
    }
    return choices;
}

// Whether `text` is one well-formed JSON value (RFC 8259 grammar).
bool isValidJson(std::string_view text);

}  // namespace pagoda::runtime::testing

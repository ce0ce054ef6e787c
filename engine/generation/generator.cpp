#include "engine/generation/generator.h"

#include <algorithm>
#include <chrono>

#include "engine/model/model.h"

namespace pagoda {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

Result<void> checkPrompt(std::span<const int32_t> prompt, const ModelConfig& config) {
    if (prompt.empty()) return fail("empty prompt");
    if (int64_t(prompt.size()) > config.contextLength) {
        return fail("prompt of {} tokens does not fit the context of {} tokens", prompt.size(), config.contextLength);
    }
    for (int32_t id : prompt) {
        if (id < 0 || id >= config.vocabSize) return fail("token id {} outside [0, {})", id, config.vocabSize);
    }
    return {};
}

}  // namespace

std::string_view finishReasonName(FinishReason reason) {
    switch (reason) {
    case FinishReason::EndOfGeneration:
        return "end of generation";
    case FinishReason::Length:
        return "length";
    case FinishReason::ContextFull:
        return "context full";
    }
    return "unknown";
}

Generator::Generator(const Model& model, Ops& ops, const GeneratorOptions& options)
    : m_model(model), m_ops(ops), m_options(options), m_transformer(model, ops, options.maxBatchTokens) {}

Result<void> Generator::prepareCache(int tokens) {
    const KvLayout layout = kvLayoutForTokens(m_model.config(), tokens, m_options.blockSize, m_options.kvType);
    if (m_cache && m_cache->layout().numBlocks >= layout.numBlocks) return {};
    PAGODA_ASSIGN_OR_RETURN(m_cache, KvCache::create(layout));
    return {};
}

Result<GenerateStats> Generator::generate(const GenerateRequest& request, const std::function<void(int32_t)>& onToken) {
    PAGODA_RETURN_IF_ERROR(checkPrompt(request.prompt, m_model.config()));
    const int context = m_model.config().contextLength;
    const int promptLength = int(request.prompt.size());
    const int capacity = std::min(context, promptLength + std::max(request.maxTokens, 0));
    PAGODA_RETURN_IF_ERROR(prepareCache(capacity));
    SequenceKv seq;
    PAGODA_RETURN_IF_ERROR(m_cache->reserve(seq, capacity));

    GenerateStats stats;
    stats.promptTokens = promptLength;
    Sampler sampler(request.sampling);
    std::vector<int32_t> history(request.prompt.begin(), request.prompt.end());
    const int vocab = m_model.config().vocabSize;

    const auto start = Clock::now();
    std::span<const float> logits;
    for (int done = 0; done < promptLength;) {
        const int n = std::min(m_transformer.maxTokens(), promptLength - done);
        ForwardBatch batch;
        batch.tokens.assign(request.prompt.begin() + done, request.prompt.begin() + done + n);
        batch.chunks.push_back({&seq, n, false});
        logits = m_transformer.forward(batch, *m_cache);
        done += n;
    }

    const Tokenizer* tokenizer = m_model.tokenizer();
    auto decodeStart = Clock::now();
    for (int produced = 0; produced < request.maxTokens; ++produced) {
        const int32_t token = sampler.sample(logits.first(vocab), history);
        if (produced == 0) {
            stats.promptSeconds = secondsSince(start);
            decodeStart = Clock::now();
        }
        history.push_back(token);
        ++stats.generatedTokens;
        onToken(token);
        const bool endOfGeneration = tokenizer != nullptr ? tokenizer->isEndOfGeneration(token)
                                                          : token == m_model.config().eos;
        if (request.stopAtEndOfGeneration && endOfGeneration) {
            stats.finish = FinishReason::EndOfGeneration;
            break;
        }
        if (produced + 1 == request.maxTokens) break;
        if (seq.length >= capacity) {
            stats.finish = FinishReason::ContextFull;
            break;
        }
        ForwardBatch batch;
        batch.tokens = {token};
        batch.chunks.push_back({&seq, 1, false});
        logits = m_transformer.forward(batch, *m_cache);
    }
    if (stats.generatedTokens > 0) stats.generateSeconds = secondsSince(decodeStart);
    m_cache->release(seq);
    return stats;
}

Result<std::vector<float>> Generator::promptLogits(std::span<const int32_t> prompt) {
    PAGODA_RETURN_IF_ERROR(checkPrompt(prompt, m_model.config()));
    const int n = int(prompt.size());
    PAGODA_RETURN_IF_ERROR(prepareCache(n));
    SequenceKv seq;
    PAGODA_RETURN_IF_ERROR(m_cache->reserve(seq, n));
    std::vector<float> all;
    all.reserve(size_t(n) * m_model.config().vocabSize);
    for (int done = 0; done < n;) {
        const int chunk = std::min(m_transformer.maxTokens(), n - done);
        ForwardBatch batch;
        batch.tokens.assign(prompt.begin() + done, prompt.begin() + done + chunk);
        batch.chunks.push_back({&seq, chunk, true});
        std::span<const float> logits = m_transformer.forward(batch, *m_cache);
        all.insert(all.end(), logits.begin(), logits.end());
        done += chunk;
    }
    m_cache->release(seq);
    return all;
}

}  // namespace pagoda

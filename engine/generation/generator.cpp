#include "engine/generation/generator.h"

#include <algorithm>
#include <chrono>

#include "engine/backend/ops.h"
#include "engine/model/model.h"
#include "kernels/format_bytes.h"

namespace pagoda {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

Result<void> checkPrompt(std::span<const int32_t> prompt, const ModelConfig& config, int context) {
    if (prompt.empty()) return fail("empty prompt");
    if (int64_t(prompt.size()) > context) {
        return fail("prompt of {} tokens does not fit the context of {} tokens", prompt.size(), context);
    }
    for (int32_t id : prompt) {
        if (id < 0 || id >= config.vocabSize) return fail("token id {} outside [0, {})", id, config.vocabSize);
    }
    return {};
}

BlockManagerConfig managerConfig(const ModelConfig& config, int context, bool prefixCaching) {
    BlockManagerConfig manager;
    manager.maxContext = context;
    manager.prefixCaching = prefixCaching;
    manager.slidingWindow = config.slidingWindow;
    manager.watermark = 0;
    return manager;
}

// The context sets LongRoPE's factors (ModelConfig::usesLongRopeFactors).
TransformerOptions transformerOptions(const Model& model, const GeneratorOptions& options) {
    TransformerOptions transformer;
    transformer.maxContext = model.config().contextWithin(options.contextLength);
    return transformer;
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
    : m_model(model),
      m_ops(ops),
      m_options(options),
      m_transformer(model, ops, options.maxBatchTokens, transformerOptions(model, options)) {}

int Generator::context() const { return m_model.config().contextWithin(m_options.contextLength); }

Result<void> Generator::prepareCache() {
    if (m_cache) return {};
    const ModelConfig& config = m_model.config();
    KvLayout layout = kvLayoutForTokens(config, context(), m_options.blockSize, m_options.kvType);
    if (m_options.localKvPools && m_ops.localKvPools() && localLayerPoolsFit(config, config.slidingWindow)) {
        layout = withLocalLayerPools(layout, config, 1, m_transformer.maxTokens());
        layout.numLocalBlocks = std::min(layout.numLocalBlocks, layout.numBlocks);
    }
    PAGODA_ASSIGN_OR_RETURN(const uint64_t available,
                            kvMemoryBesideActivations(m_ops, &m_transformer, config, m_transformer.maxTokens()));
    // The local layers' pools first (a window), then what the others hold.
    const uint64_t perBlock = layout.bytesPerBlock();
    if (available < layout.localBytes() + perBlock) {
        return fail("no memory for the KV cache: {} available beside the activations, a block of {} tokens needs {}",
                    formatBytes(available), layout.blockSize, formatBytes(layout.localBytes() + perBlock));
    }
    layout.numBlocks =
        int(std::min<uint64_t>(uint64_t(layout.numBlocks), (available - layout.localBytes()) / perBlock));
    PAGODA_ASSIGN_OR_RETURN(m_cache,
                            KvCache::create(layout, managerConfig(config, context(), m_options.prefixCaching), &m_ops));
    m_cacheTokens = std::min(context(), layout.numBlocks * layout.blockSize);
    return {};
}

Result<GenerateStats> Generator::generate(const GenerateRequest& request, const std::function<void(int32_t)>& onToken) {
    PAGODA_RETURN_IF_ERROR(checkPrompt(request.prompt, m_model.config(), context()));
    PAGODA_RETURN_IF_ERROR(prepareCache());
    const int promptLength = int(request.prompt.size());
    if (promptLength > m_cacheTokens) {
        return fail("prompt of {} tokens does not fit the KV cache of {} tokens (what memory allows; the model's "
                    "context is {})",
                    promptLength, m_cacheTokens, m_model.config().contextLength);
    }
    const int capacity = std::min(m_cacheTokens, promptLength + std::max(request.maxTokens, 0));
    KvCache& cache = *m_cache;
    PAGODA_ASSIGN_OR_RETURN(const Admission admission, cache.admit(request.prompt));
    const SeqId seq = admission.seq;
    // Appends tokens of seq to a fresh batch and runs it; the cache was sized
    // for the whole request, so it cannot run out.
    auto step = [&](std::span<const int32_t> tokens) -> Result<std::span<const float>> {
        ForwardBatch batch;
        PAGODA_ASSIGN_OR_RETURN(const Alloc status, m_cache->addChunk(batch, seq, tokens, false));
        if (status == Alloc::NoSpace) return fail("KV cache full ({} blocks)", m_cache->layout().numBlocks);
        return m_transformer.forward(batch, *m_cache);
    };

    GenerateStats stats;
    stats.promptTokens = promptLength;
    stats.reusedTokens = admission.hitTokens;
    Sampler sampler(request.sampling);
    std::vector<int32_t> history(request.prompt.begin(), request.prompt.end());
    const int vocab = m_model.config().vocabSize;

    const auto start = Clock::now();
    std::span<const float> logits;
    for (int done = admission.hitTokens; done < promptLength;) {
        const int n = std::min(m_transformer.maxTokens(), promptLength - done);
        auto out = step(request.prompt.subspan(done, n));
        if (!out) {
            (void)cache.release(seq);
            return std::unexpected(out.error());
        }
        logits = *out;
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
        if (promptLength + produced >= capacity) {
            stats.finish = FinishReason::ContextFull;
            break;
        }
        auto out = step(std::span(&token, 1));
        if (!out) {
            (void)cache.release(seq);
            return std::unexpected(out.error());
        }
        logits = *out;
    }
    if (stats.generatedTokens > 0) stats.generateSeconds = secondsSince(decodeStart);
    PAGODA_RETURN_IF_ERROR(cache.release(seq));
    return stats;
}

Result<std::vector<float>> Generator::promptLogits(std::span<const int32_t> prompt) {
    PAGODA_RETURN_IF_ERROR(checkPrompt(prompt, m_model.config(), context()));
    const int n = int(prompt.size());
    // Every position's logits are wanted, so nothing may come from the prefix
    // cache. The generation cache goes first: a device backend holds one pool.
    m_cache.reset();
    const KvLayout layout = kvLayoutForTokens(m_model.config(), n, m_options.blockSize, m_options.kvType);
    PAGODA_ASSIGN_OR_RETURN(auto cache,
                            KvCache::create(layout, managerConfig(m_model.config(), context(), false), &m_ops));
    PAGODA_ASSIGN_OR_RETURN(const Admission admission, cache->admit(prompt));
    std::vector<float> all;
    all.reserve(size_t(n) * m_model.config().vocabSize);
    for (int done = 0; done < n;) {
        const int chunk = std::min(m_transformer.maxTokens(), n - done);
        ForwardBatch batch;
        PAGODA_ASSIGN_OR_RETURN(const Alloc status, cache->addChunk(batch, admission.seq, prompt.subspan(done, chunk), true));
        if (status == Alloc::NoSpace) return fail("KV cache full ({} blocks)", layout.numBlocks);
        PAGODA_ASSIGN_OR_RETURN(std::span<const float> logits, m_transformer.forward(batch, *cache));
        all.insert(all.end(), logits.begin(), logits.end());
        done += chunk;
    }
    return all;
}

}  // namespace pagoda

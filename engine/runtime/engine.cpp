#include "engine/runtime/engine.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "engine/backend/ops.h"
#include "engine/core/log.h"
#include "engine/model/model.h"
#include "engine/runtime/prometheus.h"
#include "engine/runtime/trace.h"

namespace pagoda::runtime {
namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// How often memory is read: the resident set size costs a few syscalls, a
// device's free memory a driver call.
constexpr std::chrono::milliseconds kMemoryInterval{20};

}  // namespace

Engine::Engine(const Model& model, Ops& ops, EngineEvents* events, const EngineOptions& options)
    : m_model(model), m_ops(ops), m_events(events), m_options(options), m_timed(ops), m_scheduler(SchedulerLimits{}) {
    m_timed.setTiming(false);
}

Result<std::unique_ptr<Engine>> Engine::create(const Model& model, Ops& ops, const OptimizationConfig& config,
                                               EngineEvents* events, const EngineOptions& options) {
    if (options.maxWaiting < 1) return fail("max waiting requests {}: at least 1", options.maxWaiting);
    PAGODA_RETURN_IF_ERROR(validateConfig(config, model.config()));
    std::unique_ptr<Engine> engine(new Engine(model, ops, events, options));
    PAGODA_RETURN_IF_ERROR(engine->applyConfig(config));
    engine->publish(nullptr);
    return engine;
}

// --- any thread ---

Result<RequestId> Engine::submit(Request request) {
    const int vocab = m_model.config().vocabSize;
    const Tokenizer* tokenizer = m_model.tokenizer();
    if (request.promptTokens.empty()) {
        if (request.promptText.empty()) return fail("empty prompt: give prompt tokens or text");
        if (tokenizer == nullptr) return fail("the model has no tokenizer: give prompt tokens, not text");
        request.promptTokens =
            tokenizer->encode(request.promptText, tokenizer->vocab().addBos, request.parseSpecialTokens);
        if (request.promptTokens.empty()) return fail("prompt text '{}' encodes to no tokens", request.promptText);
    }
    for (int32_t id : request.promptTokens) {
        if (id < 0 || id >= vocab) return fail("prompt token id {} outside the vocabulary [0, {})", id, vocab);
    }
    if (request.maxNewTokens < 1) return fail("max new tokens {}: at least 1", request.maxNewTokens);

    std::unique_lock lock(m_inboxMutex);
    const int waiting = m_waitingPublished + int(m_submissions.size());
    if (waiting >= m_options.maxWaiting) {
        ++m_rejected;
        return fail("overloaded: {} requests waiting (limit {}); retry later", waiting, m_options.maxWaiting);
    }
    if (!m_noCachePublished.empty()) return fail("{}; reconfigure the engine", m_noCachePublished);
    if (int(request.promptTokens.size()) > m_contextLimitPublished) {
        return fail("prompt of {} tokens exceeds the context limit of {} tokens{}", request.promptTokens.size(),
                    m_contextLimitPublished, m_contextLimitWhy);
    }
    const RequestId id = m_nextId++;
    m_submissions.push_back(std::make_unique<Sequence>(id, std::move(request), uint64_t(id), tokenizer));
    m_live.insert(id);
    ++m_submitted;
    lock.unlock();
    m_wake.notify_one();
    return id;
}

bool Engine::cancel(RequestId id) {
    {
        std::lock_guard lock(m_inboxMutex);
        if (!m_live.contains(id)) return false;
        m_cancels.push_back(id);
    }
    m_wake.notify_one();
    return true;
}

Result<void> Engine::reconfigure(const OptimizationConfig& config) {
    PAGODA_RETURN_IF_ERROR(validateConfig(config, m_model.config()));
    {
        std::lock_guard lock(m_inboxMutex);
        m_newConfig = config;
    }
    m_wake.notify_one();
    return {};
}

void Engine::refitKvCache() {
    {
        std::lock_guard lock(m_inboxMutex);
        m_refitRequested = true;
    }
    m_wake.notify_one();
}

void Engine::timeOperations(bool on) {
    {
        std::lock_guard lock(m_inboxMutex);
        m_timeOperations = on;
    }
    m_wake.notify_one();
}

StatsSnapshot Engine::snapshot() const {
    std::lock_guard lock(m_publishMutex);
    StatsSnapshot copy = m_snapshot;
    std::tie(copy.generatedTokensPerSecond, copy.promptTokensPerSecond) = m_rates.rates(Clock::now());
    return copy;
}

std::string Engine::prometheus() const { return prometheusText(snapshot()); }

std::string Engine::trace() const {
    std::vector<StepMetrics> steps;
    {
        std::lock_guard lock(m_publishMutex);
        steps.assign(m_trace.begin(), m_trace.end());
    }
    return traceJson(steps);
}

// --- the engine thread ---

Result<std::unique_ptr<KvCache>> Engine::makeCache(const OptimizationConfig& asked) {
    const ModelConfig& model = m_model.config();
    OptimizationConfig config = asked;
    config.localKvPools = asked.localKvPools && m_ops.localKvPools();
    uint64_t available = std::numeric_limits<uint64_t>::max();
    if (config.kvBudgetBytes == kAutoKvBudget) {
        auto memory = kvMemoryBesideActivations(m_ops, m_transformer.get(), model, config.maxBatchTokens);
        if (!memory) return std::unexpected(withContext("automatic KV budget", memory.error()));
        available = *memory;
    }
    const KvBudgetChoice budget = kvBudgetFor(config, model, available);
    const std::string described = describeKvBudget(budget, config, model);
    auto layout = kvLayoutFor(config, model, budget.bytes);
    if (!layout) return std::unexpected(withContext("KV budget " + described, layout.error()));
    PAGODA_ASSIGN_OR_RETURN(auto cache, KvCache::create(*layout, blockManagerConfigFor(config, model), &m_ops));
    m_kvBudget = described;
    m_kvLimitedByMemory = budget.limitedByMemory;
    return cache;
}

Result<void> Engine::rebuildCache(const OptimizationConfig& config) {
    if (m_cache) {
        const BlockStats old = m_cache->blocks().stats();
        for (int c = 0; c < kEvictionCauses; ++c) m_evictionsBefore[size_t(c)] += old.evictions[size_t(c)];
        m_counters.preemptions += m_scheduler.dropAllRunning();
        ++m_counters.cacheRebuilds;
        m_cache.reset();
    }
    auto cache = makeCache(config);
    if (cache) {
        m_cache = std::move(*cache);
        return {};
    }
    if (m_transformer) {  // a config is in effect: make its cache again
        if (auto previous = makeCache(m_config)) {
            m_cache = std::move(*previous);
        } else {
            m_kvBudget = "no KV cache: " + previous.error().message;
            logger("engine")->error("{}", m_kvBudget);
        }
    }
    return std::unexpected(cache.error());
}

void Engine::updateContextLimit() {
    m_contextLimit = computeContextLimit();
    std::string why = contextLimitWhy();
    std::lock_guard lock(m_inboxMutex);
    m_contextLimitPublished = m_contextLimit;
    m_contextLimitWhy = std::move(why);
    m_noCachePublished = m_cache ? std::string() : m_kvBudget;
}

std::string Engine::contextLimitWhy() const {
    const int model = m_model.config().contextLength;
    if (!m_cache || m_contextLimit >= model) return {};
    const int set = m_cache->blocks().config().maxContext;
    if (m_contextLimit >= set) return fmt::format(" (the context set; the model's is {})", model);
    return fmt::format(" (the model's is {}; the KV cache, {}, holds no more)", model, m_kvBudget);
}

Result<void> Engine::applyConfig(const OptimizationConfig& config) {
    const ModelConfig& model = m_model.config();
    if (!m_cache || needsCacheRebuild(m_config, config, model)) {
        if (auto rebuilt = rebuildCache(config); !rebuilt) {
            updateContextLimit();
            return rebuilt;
        }
    }
    const TransformerOptions options{config.attention, !config.groupedKv, slidingWindowFor(config, model),
                                     config.decodeGraphs, contextFor(config, model)};
    m_ops.setInt8Matmul(config.int8Matmul);
    m_ops.setDependentLaunch(config.dependentLaunch);
    if (!m_transformer || m_transformer->maxTokens() != config.maxBatchTokens) {
        m_transformer = std::make_unique<Transformer>(m_model, m_timed, config.maxBatchTokens, options);
    } else {
        m_transformer->setOptions(options);
    }
    m_scheduler.setLimits({config.batching, config.maxBatch, config.maxBatchTokens});
    m_config = config;
    updateContextLimit();
    return {};
}

int Engine::computeContextLimit() const {
    if (!m_cache) return 0;
    const BlockManager& blocks = m_cache->blocks();
    const int context = blocks.config().maxContext;  // the context in effect (contextFor)
    if (blocks.config().allocation == KvAllocation::Contiguous) return context;
    // A sequence alone in the pool must be admissible: its blocks plus the
    // watermark that admission leaves free.
    return std::min(context, (blocks.config().numBlocks - blocks.watermarkBlocks()) * blocks.config().blockSize);
}

bool Engine::step() {
    const auto start = Clock::now();
    m_finishedThisStep = 0;
    std::vector<std::unique_ptr<Sequence>> submissions;
    std::vector<RequestId> cancels;
    std::optional<OptimizationConfig> config;
    bool refit = false;
    std::optional<bool> timeOps;
    {
        std::lock_guard lock(m_inboxMutex);
        submissions.swap(m_submissions);
        cancels.swap(m_cancels);
        config.swap(m_newConfig);
        refit = std::exchange(m_refitRequested, false);
        timeOps = std::exchange(m_timeOperations, std::nullopt);
        // They wait in the scheduler now; submit keeps counting them.
        m_waitingPublished += int(submissions.size());
    }
    if (config) {
        if (auto applied = applyConfig(*config); !applied) {
            logger("engine")->error("reconfigure failed, keeping the previous config: {}", applied.error().message);
            ++m_counters.configFailures;
            m_configError = applied.error().message;
        }
    }
    if (refit && m_cache && m_kvLimitedByMemory) {
        if (auto rebuilt = rebuildCache(m_config); !rebuilt) {
            logger("engine")->error("refitting the KV cache failed: {}", rebuilt.error().message);
            if (!m_cache) {  // reported as a failed reconfigure: the app shows why nothing runs
                ++m_counters.configFailures;
                m_configError = m_kvBudget;
            }
        }
        updateContextLimit();
    }
    if (timeOps && *timeOps != m_timed.timing()) {
        if (*timeOps) {
            m_timed.reset();
            m_timedSteps = 0;
            m_timedTokens = 0;
        }
        m_timed.setTiming(*timeOps);
    }
    for (auto& s : submissions) m_scheduler.enqueue(std::move(s));
    if (!m_cache) return failWithoutCache();
    for (RequestId id : cancels) {
        if (auto s = m_scheduler.take(id, *m_cache)) complete(std::move(s), FinishReason::Cancelled);
    }

    StepPlan plan = m_scheduler.schedule(*m_cache, m_contextLimit, m_batch);
    for (auto& [s, error] : plan.failed) complete(std::move(s), FinishReason::Error, error.message);
    for (auto& s : plan.overflowed) overflowWaiting(std::move(s));
    m_counters.peakRunning = std::max(m_counters.peakRunning, int(m_scheduler.running().size()));
    m_counters.peakKvBytes = std::max(m_counters.peakKvBytes, m_cache->bytesHeld());

    const auto scheduled = Clock::now();
    Result<std::span<const float>> logits;
    if (!m_batch.chunks.empty()) logits = m_transformer->forward(m_batch, *m_cache);
    const auto forwarded = Clock::now();
    const int64_t generatedBefore = m_counters.generatedTokens;
    if (logits) {
        sample(plan, *logits);
    } else {
        failBatch(plan, logits.error());
    }
    const auto end = Clock::now();

    m_counters.preemptions += plan.preemptions;
    m_counters.promptTokens += plan.prefillTokens;
    m_counters.decodeTokens += plan.decodeTokens;
    m_counters.recomputedTokens += plan.recomputedTokens;
    m_counters.prefixQueryTokens += plan.prefixQueryTokens;
    m_counters.prefixHitTokens += plan.prefixHitTokens;
    if (m_timed.timing() && !m_batch.chunks.empty()) {
        ++m_timedSteps;
        m_timedTokens += plan.prefillTokens + plan.decodeTokens;
    }
    if (m_batch.chunks.empty()) {
        publish(nullptr);
    } else {
        StepMetrics step;
        step.index = m_counters.steps++;
        step.startSeconds = seconds(start - m_start);
        step.wallSeconds = seconds(end - start);
        step.scheduleSeconds = seconds(scheduled - start);
        step.forwardSeconds = seconds(forwarded - scheduled);
        step.sampleSeconds = seconds(end - forwarded);
        const int tokens = plan.prefillTokens + plan.decodeTokens;
        step.prefillSeconds = step.forwardSeconds * plan.prefillTokens / tokens;
        step.decodeSeconds = step.forwardSeconds * plan.decodeTokens / tokens;
        step.prefillTokens = plan.prefillTokens;
        step.decodeTokens = plan.decodeTokens;
        step.generatedTokens = int(m_counters.generatedTokens - generatedBefore);
        step.batchSequences = int(plan.chunks.size());
        step.admitted = plan.admissions;
        step.preempted = plan.preemptions;
        m_counters.prefillSeconds += step.prefillSeconds;
        m_counters.decodeSeconds += step.decodeSeconds;
        m_counters.stepSeconds += step.wallSeconds;
        publish(&step);
    }
    std::lock_guard lock(m_inboxMutex);
    m_waitingPublished = int(m_scheduler.waiting().size());
    return !m_scheduler.idle() || commandsWaiting();
}

bool Engine::failWithoutCache() {
    for (auto& s : m_scheduler.takeAllWaiting()) complete(std::move(s), FinishReason::Error, m_kvBudget);
    publish(nullptr);
    std::lock_guard lock(m_inboxMutex);
    m_waitingPublished = 0;
    return commandsWaiting();
}

bool Engine::commandsWaiting() const {
    return !m_submissions.empty() || !m_cancels.empty() || m_newConfig || m_refitRequested || m_timeOperations;
}

void Engine::runUntilIdle() {
    while (step()) {
    }
}

void Engine::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        if (step()) continue;
        std::unique_lock lock(m_inboxMutex);
        m_wake.wait(lock, stop, [&] { return commandsWaiting(); });
    }
}

void Engine::sample(const StepPlan& plan, std::span<const float> logits) {
    const size_t vocab = size_t(m_model.config().vocabSize);
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
        Sequence* s = plan.chunks[i].sequence;
        if (s->pending() > 0) continue;  // its prefill goes on next step
        onSampled(s, s->sampler.sample(logits.subspan(i * vocab, vocab), s->tokens));
    }
}

void Engine::failBatch(const StepPlan& plan, const Error& error) {
    logger("engine")->error("forward pass failed: {}", error.message);
    for (const ScheduledChunk& chunk : plan.chunks) {
        if (auto s = m_scheduler.take(chunk.sequence->id, *m_cache)) {
            complete(std::move(s), FinishReason::Error, "forward pass failed: " + error.message);
        }
    }
}

void Engine::onSampled(Sequence* s, int32_t token) {
    const auto now = Clock::now();
    if (s->generated == 0) {
        s->firstToken = now;
        s->stats.ttftSeconds = seconds(now - s->submitted);
    }
    s->lastToken = now;
    s->tokens.push_back(token);
    ++s->generated;
    ++m_counters.generatedTokens;
    if (m_events) m_events->onToken(s->id, token);
    const TextStream::Delta delta = s->text.push(token);
    if (m_events && !delta.text.empty()) m_events->onText(s->id, delta.text);

    const Tokenizer* tokenizer = m_model.tokenizer();
    const bool endOfGeneration =
        tokenizer != nullptr ? tokenizer->isEndOfGeneration(token) : token == m_model.config().eos;
    std::optional<FinishReason> reason;
    if (delta.stopped) {
        reason = FinishReason::StopString;
    } else if (s->request.stopAtEndOfGeneration && endOfGeneration) {
        reason = FinishReason::EndOfGeneration;
    } else if (s->generated >= s->request.maxNewTokens) {
        reason = FinishReason::Length;
    } else if (int(s->tokens.size()) > m_contextLimit) {
        // The new token cannot be fed: its position is past the limit.
        if (s->request.overflow == OverflowPolicy::KeepWindow) {
            shiftWindow(*s);
            m_scheduler.requeue(s, *m_cache);
            return;
        }
        std::string message = fmt::format("context full: {} tokens, the limit is {}", s->tokens.size() - 1, m_contextLimit);
        complete(m_scheduler.take(s->id, *m_cache), FinishReason::ContextOverflow, std::move(message));
        return;
    }
    if (reason) complete(m_scheduler.take(s->id, *m_cache), *reason);
}

void Engine::overflowWaiting(std::unique_ptr<Sequence> s) {
    if (s->request.overflow == OverflowPolicy::KeepWindow) {
        shiftWindow(*s);
        m_scheduler.enqueue(std::move(s));
        return;
    }
    const std::string message =
        fmt::format("{} tokens exceed the context limit of {} tokens{}", s->tokens.size(), m_contextLimit,
                    contextLimitWhy());
    complete(std::move(s), FinishReason::ContextOverflow, message);
}

void Engine::shiftWindow(Sequence& s) {
    const int32_t bos = m_model.config().bos;
    const bool keepBos = bos >= 0 && s.tokens.front() == bos;
    const size_t keep = size_t(std::max(1, m_contextLimit / 2 - (keepBos ? 1 : 0)));
    std::vector<int32_t> kept;
    if (keepBos) kept.push_back(bos);
    kept.insert(kept.end(), s.tokens.end() - std::ptrdiff_t(keep), s.tokens.end());
    s.stats.droppedTokens += int(s.tokens.size() - kept.size());
    ++s.stats.contextShifts;
    ++m_counters.contextShifts;
    s.tokens = std::move(kept);
    // Every kept token but the newest was computed before, at other positions.
    s.computedPeak = int(s.tokens.size()) - 1;
}

void Engine::complete(std::unique_ptr<Sequence> s, FinishReason reason, std::string message) {
    if (const std::string rest = s->text.finish(); m_events && !rest.empty()) m_events->onText(s->id, rest);
    const auto now = Clock::now();
    RequestStats& stats = s->stats;
    stats.generatedTokens = s->generated;
    stats.totalSeconds = seconds(now - s->submitted);
    if (s->generated > 0) stats.decodeSeconds = seconds(s->lastToken - s->firstToken);
    if (stats.contextShifts > 0) {
        message += fmt::format("{}context window kept: {} shifts dropped {} tokens", message.empty() ? "" : "; ",
                               stats.contextShifts, stats.droppedTokens);
    }
    ++m_counters.requestsFinished[size_t(reason)];
    ++m_finishedThisStep;
    {
        std::lock_guard lock(m_inboxMutex);
        m_live.erase(s->id);
    }
    if (m_events) m_events->onFinished(FinishEvent{s->id, reason, std::move(message), stats});
}

void Engine::publish(const StepMetrics* step) {
    const auto now = Clock::now();
    if (now - m_memorySampled >= kMemoryInterval) {
        m_rss = hostRssBytes();
        m_deviceMemory = m_ops.deviceMemory();
        m_memorySampled = now;
        m_counters.peakHostRssBytes = std::max(m_counters.peakHostRssBytes, m_rss);
    }
    StatsSnapshot s;
    s.config = m_config;
    s.configError = m_configError;
    s.contextLimit = m_contextLimit;
    s.operations = {m_timed.timing(), m_timed.times(), m_timedSteps, m_timedTokens, m_timed.parts()};
    s.kv.budget = m_kvBudget;
    if (m_cache) {
        const BlockManager& blocks = m_cache->blocks();
        s.kv.allocation = blocks.config().allocation;
        s.kv.blockSize = blocks.config().blockSize;
        s.kv.bytesPerBlock = m_cache->layout().bytesPerBlock();
        s.kv.blocks = blocks.stats();
        s.kv.blockMap = blocks.blockMap();
        s.memory.kvPoolBytes = m_cache->layout().bytes();
        if (const BlockManager* local = m_cache->localBlocks()) {
            s.kv.localLayers = m_cache->layout().localLayers();
            s.kv.localBlocks = local->stats();
        }
    }
    for (int c = 0; c < kEvictionCauses; ++c) {
        m_counters.evictions[size_t(c)] = m_evictionsBefore[size_t(c)] + s.kv.blocks.evictions[size_t(c)];
    }
    s.counters = m_counters;
    s.running = int(m_scheduler.running().size());
    s.waiting = int(m_scheduler.waiting().size());
    s.memory.weightsBytes = m_model.weightBytes();
    s.memory.kvUsedBytes = m_cache ? m_cache->bytesHeld() : 0;
    s.memory.workspaceBytes = m_transformer->workspaceBytes();
    s.memory.hostRssBytes = m_rss;
    s.memory.device = m_deviceMemory;
    for (const auto& r : m_scheduler.running()) {
        const RequestState state = r->generated > 0 && r->pending() <= 1 ? RequestState::Decode : RequestState::Prefill;
        s.requests.push_back({r->id, state, r->request.priority, int(r->tokens.size()), r->generated, r->computed,
                              r->stats.preemptions, r->seq});
    }
    for (const auto& r : m_scheduler.waiting()) {
        s.requests.push_back({r->id, RequestState::Waiting, r->request.priority, int(r->tokens.size()), r->generated,
                              0, r->stats.preemptions});
    }
    if (step) {
        StepMetrics& last = s.lastStep;
        last = *step;
        last.running = s.running;
        last.waiting = s.waiting;
        last.finished = m_finishedThisStep;
        last.blocksUsed = s.kv.blocks.blocksUsed;
        last.blocksCached = s.kv.blocks.blocksCached;
        last.blocksFree = s.kv.blocks.blocksFree;
    }
    {
        std::lock_guard lock(m_inboxMutex);
        s.counters.requestsSubmitted = m_submitted;
        s.counters.requestsRejected = m_rejected;
    }
    std::lock_guard lock(m_publishMutex);
    if (step) {
        m_rates.add(now, step->wallSeconds, step->generatedTokens, step->prefillTokens);
        m_trace.push_back(s.lastStep);
        while (int(m_trace.size()) > m_options.traceCapacity) m_trace.pop_front();
    } else {
        s.lastStep = m_snapshot.lastStep;
    }
    m_snapshot = std::move(s);
}

Result<void> Engine::validate() const {
    if (!m_cache) return fail("{}", m_kvBudget);
    const BlockManager& blocks = m_cache->blocks();
    PAGODA_RETURN_IF_ERROR(m_cache->validate());
    for (const auto& s : m_scheduler.running()) {
        PAGODA_ASSIGN_OR_RETURN(const int length, blocks.length(s->seq));
        if (length != s->computed) {
            return fail("request {}: the cache holds {} tokens, the scheduler computed {}", s->id, length, s->computed);
        }
    }
    for (const auto& s : m_scheduler.waiting()) {
        if (s->seq >= 0) return fail("request {} is waiting but holds sequence {}", s->id, s->seq);
    }
    if (blocks.stats().sequences != int(m_scheduler.running().size())) {
        return fail("{} sequences in the cache, {} running", blocks.stats().sequences, m_scheduler.running().size());
    }
    return {};
}

}  // namespace pagoda::runtime

#pragma once
// The inference engine: requests in, tokens and text out, many sequences
// batched per forward pass. Any thread may submit, cancel, reconfigure and
// read statistics (a mutex-protected inbox and a published snapshot); one
// engine thread runs the step loop and is the only one that touches the
// model, the KV cache and the scheduler, and the only one that calls
// EngineEvents. docs/ENGINE.md has the scheduling policy and metric names.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/backend/timed_ops.h"
#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"
#include "engine/runtime/metrics.h"
#include "engine/runtime/optimization_config.h"
#include "engine/runtime/request.h"
#include "engine/runtime/scheduler.h"
#include "engine/transformer/transformer.h"

namespace pagoda {
class Model;
class Ops;
}  // namespace pagoda

namespace pagoda::runtime {

struct EngineOptions {
    int maxWaiting = 256;       // beyond this many waiting requests submit fails "overloaded"
    int traceCapacity = 10000;  // steps kept for trace() (the oldest are dropped)
};

class Engine {
public:
    // model and ops must outlive the engine; events (may be null) too.
    // Errors when the config does not suit the model or the KV cache
    // cannot be allocated.
    static Result<std::unique_ptr<Engine>> create(const Model& model, Ops& ops, const OptimizationConfig& config,
                                                  EngineEvents* events = nullptr, const EngineOptions& options = {});

    // --- any thread ---

    // Accepts a request, or errors at once: empty prompt, token ids outside
    // the vocabulary, text without a tokenizer, maxNewTokens < 1, a prompt
    // longer than the context limit, or "overloaded" when maxWaiting
    // requests are waiting already. An accepted request gets exactly one
    // FinishEvent.
    Result<RequestId> submit(Request request);
    // Finishes the request at the next step boundary (FinishReason::Cancelled)
    // and frees its KV blocks. False when it has finished already or never existed.
    bool cancel(RequestId id);
    // Validates now; applies at the next step boundary. A config needing a
    // new KV cache preempts every running sequence, which then recomputes
    // in the new cache, keeping its place in the queue.
    Result<void> reconfigure(const OptimizationConfig& config);
    // At the next step boundary, makes an automatic KV cache again when
    // memory limited it (kv.budget "what memory allows"), so that it takes
    // what has been freed since, such as a model unloaded from the same
    // GPU. Running sequences are preempted and recompute, as for a
    // reconfigure.
    void refitKvCache();
    // Times every operation of the forward passes from the next step on
    // (StatsSnapshot::operations, reset when switched on), or stops. While
    // on, each call waits for the backend and decode steps run without
    // CUDA graphs: the engine runs slower; the outputs are the same.
    void timeOperations(bool on);
    // A copy of the statistics published at the end of the last step.
    StatsSnapshot snapshot() const;
    // prometheusText(snapshot())
    std::string prometheus() const;
    // The kept steps as Chrome/Perfetto trace-event JSON.
    std::string trace() const;

    // --- the engine thread ---

    // One scheduler iteration and one batched forward pass. Returns whether
    // requests remain (running, waiting or just submitted).
    bool step();
    // Steps until every request has finished.
    void runUntilIdle();
    // Steps while there is work and sleeps on the inbox otherwise, until stop.
    void run(std::stop_token stop);
    // Checks the block manager's invariants and that every running
    // sequence's cached length is what the scheduler believes (tests).
    Result<void> validate() const;

private:
    Engine(const Model& model, Ops& ops, EngineEvents* events, const EngineOptions& options);

    Result<void> applyConfig(const OptimizationConfig& config);
    // Replaces the cache with one for `config`, the old one released first
    // (a device holds one pool; an automatic budget counts its memory).
    // When that fails, a cache for the config in effect is made again; only
    // if that fails too is the engine left without a cache.
    Result<void> rebuildCache(const OptimizationConfig& config);
    // A cache sized by config's budget (automatic: within what the backend's
    // memory allows now); sets m_kvBudget.
    Result<std::unique_ptr<KvCache>> makeCache(const OptimizationConfig& config);
    // Publishes the context limit of the cache now (0 without one).
    void updateContextLimit();
    int computeContextLimit() const;
    // "" when the context limit is the model's; else why the cache holds
    // fewer tokens: " (the model's is 8192; the KV cache, auto: ..., holds no more)".
    std::string contextLimitWhy() const;
    // Without a cache: fails every waiting request with m_kvBudget; returns
    // whether commands remain.
    bool failWithoutCache();
    // Submissions, cancellations, a config or a refit in the inbox
    // (m_inboxMutex held).
    bool commandsWaiting() const;
    void sample(const StepPlan& plan, std::span<const float> logits);
    // Finishes every sequence of the batch with the error (nothing to sample).
    void failBatch(const StepPlan& plan, const Error& error);
    void onSampled(Sequence* sequence, int32_t token);
    // A waiting sequence longer than the context limit.
    void overflowWaiting(std::unique_ptr<Sequence> sequence);
    // Drops the oldest tokens (BOS kept) down to half the context limit.
    void shiftWindow(Sequence& sequence);
    void complete(std::unique_ptr<Sequence> sequence, FinishReason reason, std::string message = {});
    void publish(const StepMetrics* step);

    const Model& m_model;
    Ops& m_ops;
    EngineEvents* m_events;
    const EngineOptions m_options;
    const Clock::time_point m_start = Clock::now();

    // Engine thread only.
    OptimizationConfig m_config;
    std::unique_ptr<KvCache> m_cache;  // null only after a rebuild and its fallback both failed
    std::string m_kvBudget;            // KvStats::budget
    std::string m_configError;         // StatsSnapshot::configError
    bool m_kvLimitedByMemory = false;  // the cache's budget: automatic, and memory set it
    // The Transformer's backend: m_ops, timed per operation while asked.
    TimedOps m_timed;
    int64_t m_timedSteps = 0;
    int64_t m_timedTokens = 0;
    std::unique_ptr<Transformer> m_transformer;
    Scheduler m_scheduler;
    ForwardBatch m_batch;
    int m_contextLimit = 0;
    EngineCounters m_counters;
    std::array<int64_t, kEvictionCauses> m_evictionsBefore{};  // of caches replaced by reconfigure
    int m_finishedThisStep = 0;
    Clock::time_point m_memorySampled{};
    uint64_t m_rss = 0;
    std::optional<DeviceMemoryStats> m_deviceMemory;

    // Commands from any thread.
    mutable std::mutex m_inboxMutex;
    std::condition_variable_any m_wake;
    std::vector<std::unique_ptr<Sequence>> m_submissions;
    std::vector<RequestId> m_cancels;
    std::optional<OptimizationConfig> m_newConfig;
    bool m_refitRequested = false;
    std::optional<bool> m_timeOperations;
    std::unordered_set<RequestId> m_live;  // accepted, not finished
    RequestId m_nextId = 0;
    int m_waitingPublished = 0;
    int m_contextLimitPublished = 0;
    std::string m_noCachePublished;  // why there is no cache; empty with one
    std::string m_contextLimitWhy;   // contextLimitWhy(), for submit's error
    int64_t m_submitted = 0;
    int64_t m_rejected = 0;

    // Published by the engine thread.
    mutable std::mutex m_publishMutex;
    StatsSnapshot m_snapshot;
    RollingRate m_rates;
    std::deque<StepMetrics> m_trace;
};

}  // namespace pagoda::runtime

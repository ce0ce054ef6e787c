#pragma once
// Continuous batching: a waiting queue (priority, then submission order)
// and a running set. Each step gives every running sequence its next
// tokens (one decode token, or a prefill chunk within the step's token
// budget), preempting the lowest-priority, latest-admitted sequence when
// the KV cache runs out, and then admits waiting sequences that the cache
// can hold (prefix hits skip their prefill). Static and sequential
// batching are the same loop with admission only into an empty batch.
//
// The scheduler owns the sequences; the engine runs the batch it builds
// and reports what was sampled. Engine thread only.

#include <memory>
#include <span>
#include <vector>

#include "engine/core/result.h"
#include "engine/kv/kv_cache.h"
#include "engine/runtime/optimization_config.h"
#include "engine/runtime/sequence.h"
#include "engine/transformer/transformer.h"

namespace pagoda::runtime {

struct SchedulerLimits {
    BatchingMode mode = BatchingMode::Continuous;
    int maxBatch = 16;         // running sequences
    int maxBatchTokens = 256;  // tokens per step, >= maxBatch
};

// A chunk of the step's batch: `nTokens` tokens of `sequence` from its
// computed length on (parallel to ForwardBatch::chunks).
struct ScheduledChunk {
    Sequence* sequence = nullptr;
    int nTokens = 0;
    bool decode = false;  // the single newest sampled token (else prefill or recompute)
};

struct StepPlan {
    std::vector<ScheduledChunk> chunks;
    int prefillTokens = 0;     // prompt and recomputed tokens in the batch
    int decodeTokens = 0;
    int recomputedTokens = 0;  // of prefillTokens, those computed before (preemption, context shift)
    int admissions = 0;
    int preemptions = 0;
    int prefixQueryTokens = 0;  // tokens of admitted sequences looked up in the prefix cache
    int prefixHitTokens = 0;    // of those, found cached (their prefill is skipped)
    // Waiting sequences longer than the context limit; the engine applies
    // their overflow policy.
    std::vector<std::unique_ptr<Sequence>> overflowed;
    // Sequences the block manager refused with an error (a bug, reported
    // per request rather than taking the engine down).
    std::vector<std::pair<std::unique_ptr<Sequence>, Error>> failed;
};

class Scheduler {
public:
    explicit Scheduler(const SchedulerLimits& limits) : m_limits(limits) {}

    void setLimits(const SchedulerLimits& limits) { m_limits = limits; }

    // Adds a waiting sequence at its place: priority, then submission order
    // (a preempted sequence returns to where it was).
    void enqueue(std::unique_ptr<Sequence> sequence);

    // Builds the next step into `batch` (empty when there is nothing to
    // run). contextLimit: the most tokens one sequence may hold now.
    StepPlan schedule(KvCache& cache, int contextLimit, ForwardBatch& batch);

    // Removes a waiting or running sequence, releasing its KV blocks; null
    // when the id is not here.
    std::unique_ptr<Sequence> take(RequestId id, KvCache& cache);
    // Releases `sequence`'s blocks and moves it back to waiting, to be
    // recomputed from its tokens (context shifts).
    void requeue(Sequence* sequence, KvCache& cache);
    // Moves every running sequence back to waiting; their blocks are
    // dropped with the cache being replaced (nothing is released). Returns
    // how many there were.
    int dropAllRunning();
    // Removes every waiting sequence (they hold no KV blocks).
    std::vector<std::unique_ptr<Sequence>> takeAllWaiting();

    std::span<const std::unique_ptr<Sequence>> waiting() const { return m_waiting; }
    std::span<const std::unique_ptr<Sequence>> running() const { return m_running; }
    bool idle() const { return m_waiting.empty() && m_running.empty(); }

private:
    // Largest n <= limit that the cache can append to `sequence` now.
    Result<int> tokensThatFit(const KvCache& cache, const Sequence& sequence, int limit) const;
    // The running sequence not yet in this step's batch that is kept last
    // (lowest priority, latest admitted).
    Sequence* preemptionVictim(std::span<Sequence* const> unscheduled) const;
    void addChunk(StepPlan& plan, KvCache& cache, ForwardBatch& batch, Sequence* sequence, int nTokens);
    void admitWaiting(StepPlan& plan, KvCache& cache, int contextLimit, ForwardBatch& batch, int& budget);
    std::unique_ptr<Sequence> removeRunning(Sequence* sequence);
    void preempt(StepPlan& plan, KvCache& cache, Sequence* sequence);
    void failRunning(StepPlan& plan, KvCache& cache, Sequence* sequence, Error error);

    SchedulerLimits m_limits;
    std::vector<std::unique_ptr<Sequence>> m_waiting;  // in admission order
    std::vector<std::unique_ptr<Sequence>> m_running;
    uint64_t m_nextAdmission = 0;
};

}  // namespace pagoda::runtime

#pragma once
// What the engine measures, as value types the UI and tools can copy:
// per-step timings and counts (StepMetrics, also the trace), cumulative
// counters, KV occupancy with the block map, memory, and a StatsSnapshot
// holding all of it. Exported as Prometheus text (prometheus.h) and as a
// Chrome/Perfetto trace (trace.h).

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "engine/backend/ops.h"
#include "engine/backend/timed_ops.h"
#include "engine/cache/block_stats.h"
#include "engine/runtime/optimization_config.h"
#include "engine/runtime/request.h"

namespace pagoda::runtime {

// One engine step: scheduling, one batched forward pass, sampling.
struct StepMetrics {
    int64_t index = 0;
    double startSeconds = 0;     // since the engine was created
    double wallSeconds = 0;      // the whole step
    double scheduleSeconds = 0;  // inbox, reconfigure, scheduling, batch building
    double forwardSeconds = 0;   // the forward pass
    double sampleSeconds = 0;    // sampling, text, stop checks, events
    // The forward pass split by its tokens: a mixed step computes prefill
    // and decode tokens in one pass, so its time is shared in proportion to
    // their counts (exact for steps of one kind).
    double prefillSeconds = 0;
    double decodeSeconds = 0;
    int prefillTokens = 0;  // prompt and recomputed tokens
    int decodeTokens = 0;
    int generatedTokens = 0;  // sampled
    int batchSequences = 0;  // chunks in the forward pass
    int running = 0;         // after the step
    int waiting = 0;
    int admitted = 0;
    int preempted = 0;
    int finished = 0;
    int blocksUsed = 0;
    int blocksCached = 0;
    int blocksFree = 0;
};

// Cumulative since the engine was created (across KV cache rebuilds).
struct EngineCounters {
    int64_t steps = 0;
    int64_t requestsSubmitted = 0;
    int64_t requestsRejected = 0;  // overloaded
    std::array<int64_t, kFinishReasons> requestsFinished{};  // by FinishReason
    int64_t promptTokens = 0;      // prefill tokens computed (recomputed ones included)
    int64_t decodeTokens = 0;
    int64_t generatedTokens = 0;   // sampled
    int64_t recomputedTokens = 0;
    int64_t prefixQueryTokens = 0;
    int64_t prefixHitTokens = 0;
    int64_t preemptions = 0;       // KV pressure and cache rebuilds
    int64_t contextShifts = 0;
    int64_t cacheRebuilds = 0;
    // Reconfigures valid when asked that failed when applied at the step
    // (the KV cache could not be made): StatsSnapshot::configError.
    int64_t configFailures = 0;
    std::array<int64_t, kEvictionCauses> evictions{};  // blocks, by EvictionCause
    double prefillSeconds = 0;
    double decodeSeconds = 0;
    double stepSeconds = 0;
    // Peaks, for capacity reports.
    int peakRunning = 0;
    uint64_t peakKvBytes = 0;  // of the blocks sequences held (KvCache::bytesHeld)
    uint64_t peakHostRssBytes = 0;

    int64_t finished(FinishReason reason) const { return requestsFinished[size_t(reason)]; }
};

struct MemoryStats {
    uint64_t weightsBytes = 0;    // tensor data of the model file
    uint64_t kvPoolBytes = 0;     // K and V pools, allocated
    uint64_t kvUsedBytes = 0;     // blocks held by sequences, in every pool (KvCache::bytesHeld)
    uint64_t workspaceBytes = 0;  // activations and attention scratch
    uint64_t hostRssBytes = 0;    // resident set of the process (sampled)
    // The backend's device memory (sampled with the RSS); none on the CPU.
    std::optional<DeviceMemoryStats> device;
};

struct KvStats {
    // How the pool was sized (describeKvBudget), or why there is none.
    std::string budget;
    KvAllocation allocation = KvAllocation::Paged;
    int blockSize = 0;
    uint64_t bytesPerBlock = 0;
    BlockStats blocks;                   // of the current cache (its global layers' with local pools)
    std::vector<BlockMapEntry> blockMap;  // [blocks]
    // Local layers with pools of their own (OptimizationConfig::localKvPools):
    // how many, and their pools' blocks; 0 and empty otherwise.
    int localLayers = 0;
    BlockStats localBlocks;
};

enum class RequestState { Waiting, Prefill, Decode };

struct RequestSnapshot {
    RequestId id = -1;
    RequestState state = RequestState::Waiting;
    int priority = 0;
    int tokens = 0;     // prompt + generated (kept)
    int generated = 0;
    int computed = 0;   // tokens with KV in the cache
    int preemptions = 0;
    SeqId seq = -1;     // its block manager sequence (the block map's owners) while running
};

// Where the forward passes' time went, by operation (Engine::timeOperations).
struct OperationTimes {
    bool on = false;  // the engine times each operation now
    // Since timing was last switched on, the longest first (kept once it
    // is switched off).
    std::vector<TimedOps::OpTime> times;
    int64_t steps = 0;   // forward passes timed
    int64_t tokens = 0;  // prompt and decode tokens they carried
    // A model split by layer: each backend's share (TimedOps::parts).
    std::vector<TimedOps::PartTime> parts;
};

struct StatsSnapshot {
    OptimizationConfig config;  // in effect
    std::string configError;    // why the latest of counters.configFailures failed
    int contextLimit = 0;  // most tokens one sequence may hold now
    EngineCounters counters;
    StepMetrics lastStep;
    int running = 0;
    int waiting = 0;
    // Over the last RollingRate::kWindow of steps.
    double generatedTokensPerSecond = 0;
    double promptTokensPerSecond = 0;
    KvStats kv;
    MemoryStats memory;
    OperationTimes operations;
    std::vector<RequestSnapshot> requests;  // running, then waiting
};

// Tokens per second over the steps of the last kWindow.
class RollingRate {
public:
    static constexpr std::chrono::milliseconds kWindow{2000};
    using Clock = std::chrono::steady_clock;

    void add(Clock::time_point end, double seconds, int generatedTokens, int promptTokens);
    // {generated, prompt} tokens per second, counting idle time up to now.
    std::pair<double, double> rates(Clock::time_point now) const;

private:
    struct Sample {
        Clock::time_point end;
        double seconds;
        int generated;
        int prompt;
    };
    std::deque<Sample> m_samples;
};

// Resident set size of this process from /proc/self/statm; 0 when unreadable.
uint64_t hostRssBytes();

}  // namespace pagoda::runtime

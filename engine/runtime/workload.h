#pragma once
// A synthetic serving workload run through the engine and measured: N
// greedy requests of L prompt tokens (a share of them a prefix common to
// all) and G generated tokens, from C clients in a closed loop (each
// submits its next request when the previous one finishes). The one
// implementation behind `pagoda-bench compare` and the app's comparison
// view; docs/ENGINE.md lists what it measures.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"
#include "engine/runtime/optimization_config.h"

namespace pagoda {
class Model;
class Ops;
struct ModelConfig;
}  // namespace pagoda

namespace pagoda::runtime {

struct Workload {
    int requests = 16;
    int promptLength = 64;
    int genLength = 32;
    int concurrency = 8;
    double sharedPrefix = 0.5;  // fraction of every prompt that all requests share
};

struct WorkloadResult {
    OptimizationConfig config;
    double seconds = 0;
    int64_t generatedTokens = 0;
    double tokensPerSecond = 0;
    double ttftP50 = 0, ttftP95 = 0;  // seconds
    double itlP50 = 0, itlP95 = 0;    // seconds between a request's tokens
    uint64_t peakKvBytes = 0;         // most KV blocks held by sequences at once, in bytes
    uint64_t kvPoolBytes = 0;
    std::string kvBudget;  // how the pool was sized (KvStats::budget)
    uint64_t peakRssBytes = 0;
    uint64_t workspaceBytes = 0;
    int maxConcurrent = 0;
    int contextLimit = 0;
    int64_t preemptions = 0;
    double prefixHitRate = 0;
    std::vector<std::vector<int32_t>> outputs;  // [request] generated ids
};

struct WorkloadProgress {
    int finished = 0;    // requests finished (cancelled ones included)
    int total = 0;
    int blocksUsed = 0;  // KV blocks held by sequences after the step
};

struct WorkloadControl {
    // Read between engine steps; once true the run cancels its requests,
    // steps until they have left the engine and returns kWorkloadCancelled.
    const std::atomic<bool>* cancel = nullptr;
    // Called on the running thread after each step that finished a request,
    // and once after a cancelled run has drained.
    std::function<void(const WorkloadProgress&)> progress;
};

// The error message of a cancelled run.
inline constexpr std::string_view kWorkloadCancelled = "cancelled";

// Errors when the prompt and generation do not fit the model's context.
Result<void> checkWorkload(const Workload& workload, const ModelConfig& model);
// The config with room for the workload's clients: max batch at least the
// concurrency, max batch tokens at least the max batch.
OptimizationConfig fitToWorkload(OptimizationConfig config, const Workload& workload);
// The short run that pages in the weights and starts the backend's threads,
// so the first measured config is not charged for them.
Workload warmUpWorkload(const Workload& workload);
// n ids in [0, vocab) from a 64-bit LCG: the same sequence on every
// platform, so a workload's (and a benchmark's) tokens are the same in every run.
std::vector<int32_t> lcgTokens(int n, int vocab, uint64_t seed);
// workload.requests prompts of promptLength tokens (BOS first when bos >= 0)
// whose first sharedPrefix share is common to all; deterministic.
std::vector<std::vector<int32_t>> makeWorkloadPrompts(const Workload& workload, int vocab, int32_t bos);

// Runs the prompts (one per request, at least workload.requests) through a
// new Engine over model and ops on the calling thread, every request
// greedy so that any two configs must produce the same tokens. Errors when
// the engine refuses the config or a request, when a request finishes
// before its genLength tokens, and on cancellation (kWorkloadCancelled).
Result<WorkloadResult> runWorkload(const Model& model, Ops& ops, const OptimizationConfig& config,
                                   const Workload& workload, const std::vector<std::vector<int32_t>>& prompts,
                                   const WorkloadControl& control = {});

// One result as a JSON object, named (the format of `pagoda-bench compare --json`).
std::string workloadResultJson(std::string_view name, const WorkloadResult& result);

}  // namespace pagoda::runtime

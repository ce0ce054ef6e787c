#include "engine/runtime/prometheus.h"

#include <fmt/format.h>

namespace pagoda::runtime {
namespace {

class Exposition {
public:
    // Starts a metric family.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        m_name = name;
        m_text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    // A sample of the current family; labels: `key="value"` pairs, or empty.
    template <class T>
    void sample(T value, std::string_view labels = {}) {
        if (labels.empty()) {
            m_text += fmt::format("{} {}\n", m_name, value);
        } else {
            m_text += fmt::format("{}{{{}}} {}\n", m_name, labels, value);
        }
    }
    template <class T>
    void single(std::string_view name, std::string_view type, std::string_view help, T value) {
        family(name, type, help);
        sample(value);
    }
    std::string take() { return std::move(m_text); }

private:
    std::string m_text;
    std::string m_name;
};

std::string label(std::string_view key, std::string_view value) { return fmt::format("{}=\"{}\"", key, value); }

constexpr std::string_view kEvictionCauseNames[kEvictionCauses] = {"lru", "fifo", "window", "preemption"};

}  // namespace

std::string prometheusText(const StatsSnapshot& s) {
    const EngineCounters& c = s.counters;
    Exposition e;
    e.single("pagoda_steps_total", "counter", "Engine steps run (one batched forward pass each).", c.steps);
    e.single("pagoda_requests_submitted_total", "counter", "Requests accepted by submit.", c.requestsSubmitted);
    e.single("pagoda_requests_rejected_total", "counter", "Requests refused because the waiting queue was full.",
             c.requestsRejected);
    e.family("pagoda_requests_finished_total", "counter", "Requests finished, by reason.");
    for (int r = 0; r < kFinishReasons; ++r) {
        e.sample(c.requestsFinished[size_t(r)], label("reason", finishReasonName(FinishReason(r))));
    }
    e.single("pagoda_prompt_tokens_total", "counter", "Prefill tokens computed, recomputed ones included.",
             c.promptTokens);
    e.single("pagoda_decode_tokens_total", "counter", "Decode tokens computed.", c.decodeTokens);
    e.single("pagoda_generated_tokens_total", "counter", "Tokens sampled.", c.generatedTokens);
    e.single("pagoda_recomputed_tokens_total", "counter",
             "Tokens computed again after preemption or a context shift.", c.recomputedTokens);
    e.single("pagoda_prefix_query_tokens_total", "counter", "Tokens of admitted sequences looked up in the prefix cache.",
             c.prefixQueryTokens);
    e.single("pagoda_prefix_hit_tokens_total", "counter", "Tokens whose KV came from the prefix cache.",
             c.prefixHitTokens);
    e.single("pagoda_preemptions_total", "counter", "Sequences preempted (KV pressure or cache rebuild).",
             c.preemptions);
    e.single("pagoda_context_shifts_total", "counter", "Context windows kept by dropping the oldest tokens.",
             c.contextShifts);
    e.single("pagoda_kv_cache_rebuilds_total", "counter", "KV caches rebuilt by reconfigure.", c.cacheRebuilds);
    e.single("pagoda_config_failures_total", "counter", "Reconfigures that failed when applied.", c.configFailures);
    e.family("pagoda_kv_evictions_total", "counter", "KV blocks evicted, by cause.");
    for (int cause = 0; cause < kEvictionCauses; ++cause) {
        e.sample(c.evictions[size_t(cause)], label("cause", kEvictionCauseNames[cause]));
    }
    e.family("pagoda_forward_seconds_total", "counter", "Forward-pass time, by phase (mixed steps split by tokens).");
    e.sample(c.prefillSeconds, label("phase", "prefill"));
    e.sample(c.decodeSeconds, label("phase", "decode"));
    e.single("pagoda_step_seconds_total", "counter", "Wall time of all steps.", c.stepSeconds);

    e.single("pagoda_running_sequences", "gauge", "Sequences in the running batch.", s.running);
    e.single("pagoda_waiting_requests", "gauge", "Requests in the waiting queue.", s.waiting);
    e.single("pagoda_batch_sequences", "gauge", "Sequences in the last step's forward pass.",
             s.lastStep.batchSequences);
    e.family("pagoda_last_step_tokens", "gauge", "Tokens in the last step, by phase.");
    e.sample(s.lastStep.prefillTokens, label("phase", "prefill"));
    e.sample(s.lastStep.decodeTokens, label("phase", "decode"));
    e.single("pagoda_last_step_seconds", "gauge", "Wall time of the last step.", s.lastStep.wallSeconds);
    e.single("pagoda_generated_tokens_per_second", "gauge", "Tokens sampled per second, rolling window.",
             s.generatedTokensPerSecond);
    e.single("pagoda_prompt_tokens_per_second", "gauge", "Prefill tokens computed per second, rolling window.",
             s.promptTokensPerSecond);
    e.single("pagoda_context_limit_tokens", "gauge", "Most tokens one sequence may hold.", s.contextLimit);

    e.family("pagoda_kv_blocks", "gauge", "KV blocks by state.");
    e.sample(s.kv.blocks.blocksUsed, label("state", "used"));
    e.sample(s.kv.blocks.blocksCached, label("state", "cached"));
    e.sample(s.kv.blocks.blocksFree, label("state", "free"));
    if (s.kv.localLayers > 0) {
        e.family("pagoda_kv_local_blocks", "gauge", "Blocks of each local layer's own KV pool, by state.");
        e.sample(s.kv.localBlocks.blocksUsed, label("state", "used"));
        e.sample(s.kv.localBlocks.blocksCached, label("state", "cached"));
        e.sample(s.kv.localBlocks.blocksFree, label("state", "free"));
    }
    e.single("pagoda_kv_block_size_tokens", "gauge", "Tokens per KV block.", s.kv.blockSize);
    e.single("pagoda_kv_block_utilization_ratio", "gauge", "Used KV blocks / all blocks.",
             s.kv.blocks.blocksTotal ? double(s.kv.blocks.blocksUsed) / s.kv.blocks.blocksTotal : 0.0);
    e.single("pagoda_kv_slot_utilization_ratio", "gauge", "Tokens stored / slots of used blocks.",
             s.kv.blocks.slotUtilization());
    e.family("pagoda_memory_bytes", "gauge", "Memory by kind.");
    e.sample(s.memory.weightsBytes, label("kind", "weights"));
    e.sample(s.memory.kvPoolBytes, label("kind", "kv_pool"));
    e.sample(s.memory.kvUsedBytes, label("kind", "kv_used"));
    e.sample(s.memory.workspaceBytes, label("kind", "workspace"));
    e.sample(s.memory.hostRssBytes, label("kind", "host_rss"));
    // Time by operation (Engine::timeOperations): gauges, since they start
    // again from zero each time timing is switched on.
    const OperationTimes& ops = s.operations;
    e.single("pagoda_operation_timing", "gauge", "1 while the engine times each operation of its forward passes.",
             ops.on ? 1 : 0);
    if (!ops.times.empty()) {
        e.family("pagoda_operation_seconds", "gauge", "Time in each operation since timing was last switched on.");
        for (const TimedOps::OpTime& t : ops.times) e.sample(t.seconds, label("op", TimedOps::opName(t.op)));
        e.family("pagoda_operation_calls", "gauge", "Calls of each operation since timing was last switched on.");
        for (const TimedOps::OpTime& t : ops.times) e.sample(t.calls, label("op", TimedOps::opName(t.op)));
        e.single("pagoda_operation_timed_steps", "gauge", "Steps timed since timing was last switched on.", ops.steps);
    }
    if (s.memory.device) {
        const DeviceMemoryStats& d = *s.memory.device;
        e.family("pagoda_device_memory_bytes", "gauge",
                 "Device memory in use by weights, kv_cache, activations, workspace; reserved: all the backend's "
                 "pool holds (in use or cached).");
        e.sample(d.weightsBytes, label("use", "weights"));
        e.sample(d.kvCacheBytes, label("use", "kv_cache"));
        e.sample(d.activationsBytes, label("use", "activations"));
        e.sample(d.workspaceBytes, label("use", "workspace"));
        e.sample(d.reservedBytes, label("use", "reserved"));
        e.single("pagoda_device_memory_free_bytes", "gauge", "Free device memory, as the device's runtime reports.",
                 d.freeBytes);
        e.single("pagoda_device_memory_total_bytes", "gauge", "Device memory in all.", d.totalBytes);
    }
    return e.take();
}

}  // namespace pagoda::runtime

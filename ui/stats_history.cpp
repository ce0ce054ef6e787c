#include "ui/stats_history.h"

#include <QLocale>
#include <QSet>
#include <QStringList>

#include <algorithm>
#include <utility>

namespace pagoda::ui {
namespace {

double mib(uint64_t bytes) { return double(bytes) / double(1 << 20); }

const char* onOff(bool on) { return on ? "on" : "off"; }

// The CSV's device memory columns, present when any sample has a device.
const std::pair<const char*, double DeviceMemorySample::*> kDeviceColumns[] = {
    {"gpu_weights_mib", &DeviceMemorySample::weightsMiB},
    {"gpu_kv_cache_mib", &DeviceMemorySample::kvCacheMiB},
    {"gpu_activations_mib", &DeviceMemorySample::activationsMiB},
    {"gpu_used_mib", &DeviceMemorySample::usedMiB},
    {"gpu_total_mib", &DeviceMemorySample::totalMiB},
};

}  // namespace

QString describeConfigChange(const runtime::OptimizationConfig& a, const runtime::OptimizationConfig& b) {
    QStringList parts;
    if (a.kvAllocation != b.kvAllocation) {
        parts << (b.kvAllocation == KvAllocation::Paged ? QStringLiteral("paged KV") : QStringLiteral("contiguous KV"));
    }
    if (a.attention != b.attention) {
        parts << (b.attention == cpu::AttentionAlgorithm::Flash ? QStringLiteral("flash attn") : QStringLiteral("naive attn"));
    }
    if (a.groupedKv != b.groupedKv) parts << (b.groupedKv ? QStringLiteral("grouped KV") : QStringLiteral("expanded KV"));
    if (a.prefixCaching != b.prefixCaching) parts << QStringLiteral("prefix %1").arg(onOff(b.prefixCaching));
    if (a.localKvPools != b.localKvPools) parts << QStringLiteral("local KV %1").arg(onOff(b.localKvPools));
    if (a.decodeGraphs != b.decodeGraphs) parts << QStringLiteral("CUDA graphs %1").arg(onOff(b.decodeGraphs));
    if (a.int8Matmul != b.int8Matmul) {
        parts << QStringLiteral("int8 matmul %1").arg(QString::fromLatin1(runtime::int8MatmulName(b.int8Matmul)));
    }
    if (a.dependentLaunch != b.dependentLaunch) {
        parts << QStringLiteral("dependent launch %1").arg(onOff(b.dependentLaunch));
    }
    if (a.batching != b.batching) parts << QString::fromLatin1(runtime::batchingModeName(b.batching));
    if (a.eviction != b.eviction) parts << QStringLiteral("evict %1").arg(QString::fromLatin1(evictionPolicyName(b.eviction)));
    if (a.blockSize != b.blockSize) parts << QStringLiteral("block %1").arg(b.blockSize);
    if (a.maxBatch != b.maxBatch) parts << QStringLiteral("batch ≤%1").arg(b.maxBatch);
    if (a.maxBatchTokens != b.maxBatchTokens) parts << QStringLiteral("%1 tok/step").arg(b.maxBatchTokens);
    if (a.kvBudgetBytes != b.kvBudgetBytes) {
        parts << (b.kvBudgetBytes == runtime::kAutoKvBudget ? QStringLiteral("KV auto")
                                                             : QStringLiteral("KV %1 MiB").arg(b.kvBudgetBytes >> 20));
    }
    if (a.slidingWindow != b.slidingWindow) parts << QStringLiteral("window %1").arg(b.slidingWindow);
    if (a.kvType != b.kvType) parts << (b.kvType == DType::F32 ? QStringLiteral("KV f32") : QStringLiteral("KV f16"));
    return parts.join(QStringLiteral(", "));
}

const Sample& StatsHistory::add(const StatsUpdate& update) {
    const runtime::StatsSnapshot& s = update.snapshot;
    Sample sample;
    sample.t = update.seconds;
    sample.generatedPerSecond = s.generatedTokensPerSecond;
    sample.promptPerSecond = s.promptTokensPerSecond;
    sample.blocksUsed = s.kv.blocks.blocksUsed;
    sample.blocksCached = s.kv.blocks.blocksCached;
    sample.blocksFree = s.kv.blocks.blocksFree;
    sample.slotUtilization = s.kv.blocks.slotUtilization();
    if (s.kv.localLayers > 0) {
        const BlockStats& l = s.kv.localBlocks;
        sample.localBlocks = std::array{l.blocksUsed, l.blocksCached, l.blocksFree};
    }
    sample.hostRssMiB = mib(s.memory.hostRssBytes);
    sample.weightsMiB = mib(s.memory.weightsBytes);
    sample.kvPoolMiB = mib(s.memory.kvPoolBytes);
    sample.workspaceMiB = mib(s.memory.workspaceBytes);
    if (s.memory.device) {
        const DeviceMemoryStats& d = *s.memory.device;
        sample.device = DeviceMemorySample{mib(d.weightsBytes), mib(d.kvCacheBytes),
                                           mib(d.activationsBytes + d.workspaceBytes),
                                           mib(d.totalBytes - std::min(d.freeBytes, d.totalBytes)), mib(d.totalBytes)};
    }
    sample.running = s.running;
    sample.waiting = s.waiting;
    while (m_recent.size() > 1 && m_recent[1].t <= update.seconds - kRateWindowSeconds) m_recent.pop_front();
    if (!m_recent.empty()) {
        const Reference& before = m_recent.front();
        const runtime::EngineCounters& now = s.counters;
        const double dt = update.seconds - before.t;
        if (dt > 0) {
            for (int c = 0; c < kEvictionCauses; ++c) {
                sample.evictionsPerSecond[size_t(c)] =
                    double(std::max<int64_t>(0, now.evictions[size_t(c)] - before.counters.evictions[size_t(c)])) / dt;
            }
            for (auto it = update.tokensByConversation.begin(); it != update.tokensByConversation.end(); ++it) {
                const qint64 previous = before.tokensByConversation.value(it.key(), 0);
                sample.generatedPerSecondByConversation[it.key()] = double(it.value() - previous) / dt;
            }
        }
        const int64_t steps = now.steps - before.counters.steps;
        if (steps > 0) {
            sample.prefillMsPerStep = (now.prefillSeconds - before.counters.prefillSeconds) * 1e3 / double(steps);
            sample.decodeMsPerStep = (now.decodeSeconds - before.counters.decodeSeconds) * 1e3 / double(steps);
        }
        const runtime::OptimizationConfig& previous = m_recent.back().config;
        if (s.config != previous) m_changes.push_back({sample.t, describeConfigChange(previous, s.config)});
    }
    m_recent.push_back({update.seconds, s.counters, update.tokensByConversation, s.config});
    m_samples.push_back(std::move(sample));
    const double oldest = m_samples.back().t - kKeepSeconds;
    while (!m_samples.empty() && m_samples.front().t < oldest) m_samples.pop_front();
    while (!m_changes.empty() && m_changes.front().t < oldest) m_changes.pop_front();
    return m_samples.back();
}

QString StatsHistory::toCsv() const {
    QStringList conversations;
    for (const Sample& s : m_samples) {
        for (auto it = s.generatedPerSecondByConversation.begin(); it != s.generatedPerSecondByConversation.end(); ++it) {
            if (!conversations.contains(it.key())) conversations << it.key();
        }
    }
    QStringList header{"t_s",          "generated_tok_s", "prompt_tok_s",     "blocks_used",     "blocks_cached",
                       "blocks_free",  "slot_utilization", "evict_lru_per_s", "evict_fifo_per_s", "evict_window_per_s",
                       "evict_preemption_per_s", "host_rss_mib", "weights_mib", "kv_pool_mib", "workspace_mib",
                       "running",      "waiting",         "prefill_ms_per_step", "decode_ms_per_step"};
    const bool device = std::ranges::any_of(m_samples, [](const Sample& s) { return s.device.has_value(); });
    if (device) {
        for (const auto& column : kDeviceColumns) header << QString::fromLatin1(column.first);
    }
    const bool local = std::ranges::any_of(m_samples, [](const Sample& s) { return s.localBlocks.has_value(); });
    if (local) header << "local_blocks_used" << "local_blocks_cached" << "local_blocks_free";
    for (const QString& id : conversations) header << QStringLiteral("tok_s_%1").arg(id);
    QString csv = header.join(',') + '\n';
    const QLocale c = QLocale::c();
    const auto number = [&c](double v) { return c.toString(v, 'g', 8); };
    for (const Sample& s : m_samples) {
        QStringList row{number(s.t), number(s.generatedPerSecond), number(s.promptPerSecond),
                        QString::number(s.blocksUsed), QString::number(s.blocksCached), QString::number(s.blocksFree),
                        number(s.slotUtilization)};
        for (double rate : s.evictionsPerSecond) row << number(rate);
        row << number(s.hostRssMiB) << number(s.weightsMiB) << number(s.kvPoolMiB) << number(s.workspaceMiB)
            << QString::number(s.running) << QString::number(s.waiting) << number(s.prefillMsPerStep)
            << number(s.decodeMsPerStep);
        if (device) {
            for (const auto& column : kDeviceColumns) row << (s.device ? number((*s.device).*column.second) : QString());
        }
        if (local) {
            for (int i = 0; i < 3; ++i) row << (s.localBlocks ? QString::number((*s.localBlocks)[size_t(i)]) : QString());
        }
        for (const QString& id : conversations) row << number(s.generatedPerSecondByConversation.value(id, 0));
        csv += row.join(',') + '\n';
    }
    return csv;
}

}  // namespace pagoda::ui

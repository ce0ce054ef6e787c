#pragma once
// What the profiler plots, derived from the stream of StatsUpdates: one
// Sample per update (rates from the difference of cumulative counters over
// the last second, so that 100 ms samples of a few tokens do not zigzag),
// the configuration changes seen in between, and CSV export. Keeps the
// longest plot window (10 minutes).

#include <QHash>
#include <QString>
#include <QVector>

#include <array>
#include <deque>
#include <optional>

#include "ui/engine_types.h"

namespace pagoda::ui {

// A device backend's memory (runtime::MemoryStats::device), in MiB.
struct DeviceMemorySample {
    double weightsMiB = 0;
    double kvCacheMiB = 0;
    double activationsMiB = 0;  // activations and workspace
    double usedMiB = 0;         // of the whole device (total - free), other processes included
    double totalMiB = 0;
};

struct Sample {
    double t = 0;  // seconds since the worker started
    double generatedPerSecond = 0;
    double promptPerSecond = 0;
    QHash<QString, double> generatedPerSecondByConversation;
    int blocksUsed = 0;
    int blocksCached = 0;
    int blocksFree = 0;
    double slotUtilization = 0;  // 0..1
    // Blocks of each local layer's own pool (Gemma's, local-layer KV pools
    // on): used, cached, free; none without such pools.
    std::optional<std::array<int, 3>> localBlocks;
    std::array<double, kEvictionCauses> evictionsPerSecond{};  // by EvictionCause
    double hostRssMiB = 0;
    double weightsMiB = 0;
    double kvPoolMiB = 0;
    double workspaceMiB = 0;
    std::optional<DeviceMemorySample> device;  // none on the CPU backend
    int running = 0;  // sequences in the batch
    int waiting = 0;
    double prefillMsPerStep = 0;  // mean over the steps of the last second
    double decodeMsPerStep = 0;
};

struct ConfigChange {
    double t = 0;
    QString label;  // what changed: "prefix off, block 32"
};

class StatsHistory {
public:
    static constexpr double kKeepSeconds = 600;
    static constexpr double kRateWindowSeconds = 1.0;

    // Appends the sample for `update` and records a config change when the
    // snapshot's config differs from the previous one.
    const Sample& add(const StatsUpdate& update);

    const std::deque<Sample>& samples() const { return m_samples; }
    const std::deque<ConfigChange>& changes() const { return m_changes; }
    bool empty() const { return m_samples.empty(); }
    double latest() const { return m_samples.empty() ? 0 : m_samples.back().t; }
    QString toCsv() const;

private:
    // The cumulative values of an earlier update.
    struct Reference {
        double t = 0;
        runtime::EngineCounters counters;
        QHash<QString, qint64> tokensByConversation;
        runtime::OptimizationConfig config;
    };

    std::deque<Sample> m_samples;
    std::deque<ConfigChange> m_changes;
    std::deque<Reference> m_recent;  // the last kRateWindowSeconds of updates, and one before
};

// The differences between two configs, short ("prefix off, block 32").
QString describeConfigChange(const runtime::OptimizationConfig& from, const runtime::OptimizationConfig& to);

}  // namespace pagoda::ui

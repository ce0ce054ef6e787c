#pragma once
// The comparison view's worker: runs one workload under two optimization
// configs (runtime::runWorkload) on its own QThread ("pagoda-compare"),
// with an Engine and backends of its own over the shared model (one for
// both configs, or one each where they run on different backends: the CPU
// against a GPU), so the chat engine, its backend and its thread are never
// touched. On the chats' GPU a backend runs on the chats' copy of the
// weights rather than uploading its own. They share the CPU cores or GPU with the chats, which is why the
// view asks for idle chats.
//
// The view calls run() through a queued invocation and hears back through
// the signals (value types only). Cancel with the atomic flag given at
// construction; run() then returns within one engine step.

#include <QMetaType>
#include <QObject>
#include <QString>

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "engine/backend/backend_select.h"
#include "engine/backend/timed_ops.h"
#include "engine/runtime/workload.h"

namespace pagoda {
class Model;
struct SharedCudaWeights;
}

namespace pagoda::ui {

struct CompareRequest {
    std::shared_ptr<const Model> model;  // kept alive by the run, whatever the chat worker loads meanwhile
    QString modelName;
    runtime::Workload workload;
    std::array<runtime::OptimizationConfig, 2> configs;  // A, B
    std::array<BackendOptions, 2> backends;  // where A and B run, each on a backend of the run's own
    std::weak_ptr<const SharedCudaWeights> gpuWeights;  // the chats' (ModelInfo::gpuWeights)
    // Then A and B once more each through TimedOps (every call timed
    // alone, so apart from the measured runs): CompareOutcome::opTimes.
    bool opTimes = false;
};


struct CompareOutcome {
    QString modelName;
    std::array<QString, 2> backends;      // Ops::description() of the backends that ran A and B
    std::array<QString, 2> backendNotes;  // how each was chosen ("cpu: chosen", "cuda: unavailable: ...; using cpu")
    runtime::Workload workload;
    std::array<runtime::WorkloadResult, 2> results;  // A, B
    int sameOutputs = 0;  // requests whose generated tokens are equal under A and B
    // A's and B's timed runs (TimedOps::times()), over workload.requests x
    // workload.genLength generated tokens; with CompareRequest::opTimes.
    std::array<std::vector<TimedOps::OpTime>, 2> opTimes;
};

class CompareWorker : public QObject {
    Q_OBJECT
public:
    // Progress is emitted at most this often (and at the end of each config).
    static constexpr int kProgressIntervalMs = 50;

    explicit CompareWorker(std::shared_ptr<const std::atomic<bool>> cancel);

    // Warm-up, then A, then B (then each timed by operation). Emits
    // exactly one of finished, failed and cancelled.
    void run(const pagoda::ui::CompareRequest& request);

Q_SIGNALS:
    // The backends are ready (before the warm-up): Ops::description() of
    // A's and B's.
    void backendsReady(const QString& a, const QString& b);
    // Requests finished over every run (the warm-up not counted).
    void progress(int finished, int total);
    void finished(const pagoda::ui::CompareOutcome& outcome);
    void failed(const QString& message);
    void cancelled();

private:
    std::shared_ptr<const std::atomic<bool>> m_cancel;
};

}  // namespace pagoda::ui

Q_DECLARE_METATYPE(pagoda::ui::CompareOutcome)

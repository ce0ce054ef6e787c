#pragma once
// The bridge between the widgets and the engine. EngineWorker lives on its
// own QThread ("pagoda-worker"): it loads models (on short-lived loader
// threads, so it stays responsive), renders and tokenizes chat prompts,
// owns the Engine and the thread that runs Engine::run(stop_token)
// ("pagoda-engine"), and publishes statistics at most every 100 ms.
//
// The UI calls its slots through queued connections and hears back through
// its signals, which carry value types only; some are emitted on the engine
// thread, so connect them queued. Nothing here touches a widget.

#include <QElapsedTimer>
#include <QObject>
#include <QTimer>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/backend/backend_select.h"
#include "engine/chat/chat_template.h"
#include "engine/runtime/engine.h"
#include "ui/engine_types.h"

namespace pagoda {
class Model;
class Ops;
}  // namespace pagoda

namespace pagoda::ui {

class EngineWorker : public QObject {
    Q_OBJECT
public:
    // How often statistics are published (the UI's plots sample at this rate).
    static constexpr int kStatsIntervalMs = 100;

    explicit EngineWorker(const runtime::OptimizationConfig& config);
    ~EngineWorker() override;

public Q_SLOTS:
    // Loads a GGUF model onto the backend `backend` chooses; an empty path
    // loads the default synthetic model, creating it first when it does not
    // exist yet. The running model keeps serving until the new one is ready,
    // unless it runs on the GPU the new one goes to and the new one's
    // weights (taken as its file's size) do not fit beside it
    // (weightsFitBeside): then it is unloaded first (modelUnloaded), rather
    // than the new one falling back to the CPU.
    void loadModel(const QString& path, const pagoda::BackendOptions& backend);
    // Forgets the load in progress: the current model stays.
    void cancelLoad();
    // Before the first model is ready, turns wait for it.
    void submit(const pagoda::ui::GenerationRequest& request);
    void cancel(quint64 ticket);
    void reconfigure(const pagoda::runtime::OptimizationConfig& config);
    // Engine::timeOperations, for this engine and the next models'.
    void timeOperations(bool on);
    // Lists the CUDA devices again (devicesListed): what a load lists, on
    // demand (a GPU freed or added since).
    void listDevices(const pagoda::BackendOptions& backend);

Q_SIGNALS:
    void loadStarted(const QString& what);
    void loadProgress(qint64 done, qint64 total);
    void modelLoaded(const pagoda::ui::ModelInfo& info);
    void loadFailed(const QString& message);
    void loadCancelled();
    // The current model is gone before the next one is ready (`why`).
    void modelUnloaded(const QString& why);
    void devicesListed(const pagoda::CudaDeviceList& devices);

    void accepted(quint64 ticket, int promptTokens);
    void rejected(quint64 ticket, const QString& message);
    void textReady(quint64 ticket, const QString& text);  // engine thread
    void finished(quint64 ticket, const pagoda::runtime::FinishEvent& event);  // engine thread

    void configApplied(const pagoda::runtime::OptimizationConfig& config);
    void configRejected(const QString& message, const pagoda::runtime::OptimizationConfig& current);
    void statsUpdated(const pagoda::ui::StatsUpdate& update);

private:
    struct LoadJob;
    class Events;
    struct Loaded;

    void runLoad(std::shared_ptr<LoadJob> job, QString path, BackendOptions backendOptions);
    void install(const std::shared_ptr<LoadJob>& job, std::shared_ptr<Loaded> loaded);
    // Unloads the current model when loadModel(path, backend) needs its GPU.
    void makeRoomFor(const QString& path, const BackendOptions& backend);
    void startEngine();
    void stopEngine();
    void publishStats();
    ModelInfo describe(const Model& model, const QString& path) const;
    void reapLoaders();
    // Turns sent before any model was ready, refused with `message`.
    void rejectWaiting(const QString& message);

    std::unique_ptr<Ops> m_ops;  // the backend of m_model (each load picks its own)
    int m_cudaDevice = -1;       // the GPU m_ops runs on; -1 on the CPU
    std::weak_ptr<const SharedCudaWeights> m_gpuWeights;  // m_model's on that GPU, held by m_ops
    int64_t m_configFailuresSeen = 0;  // of m_engine's counters.configFailures, reported
    QString m_backendNote;
    CudaDeviceList m_cudaDevices;  // listed by the load of m_model
    std::unique_ptr<Events> m_events;
    runtime::OptimizationConfig m_config;
    bool m_timeOperations = false;  // timeOperations
    QTimer m_statsTimer;
    QElapsedTimer m_clock;

    std::shared_ptr<const Model> m_model;  // also handed out in ModelInfo (the comparison view)
    std::optional<ChatTemplate> m_template;
    std::unique_ptr<runtime::Engine> m_engine;
    std::jthread m_engineThread;

    std::shared_ptr<LoadJob> m_currentLoad;
    std::vector<GenerationRequest> m_waitingForModel;
    std::vector<std::pair<std::shared_ptr<LoadJob>, std::jthread>> m_loaders;
};

}  // namespace pagoda::ui

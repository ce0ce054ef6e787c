#pragma once
// The UI thread's handle on the engine: owns the "pagoda-worker" QThread
// and the EngineWorker on it (the destructor quits and waits), hands out
// tickets for generations, and re-emits the worker's signals on the UI
// thread. Calls return at once; nothing here waits for the engine.

#include <QObject>
#include <QThread>

#include "engine/backend/backend_select.h"
#include "ui/engine_types.h"

namespace pagoda::ui {

class EngineWorker;

class EngineClient : public QObject {
    Q_OBJECT
public:
    explicit EngineClient(const runtime::OptimizationConfig& config, QObject* parent = nullptr);
    ~EngineClient() override;

    void loadModel(const QString& path);  // empty: the default synthetic model
    // The backend the next loads choose (the app's Run on menu); the model
    // loaded stays where it is until then.
    void setBackend(const BackendOptions& backend) { m_backend = backend; }
    const BackendOptions& backend() const { return m_backend; }
    void cancelLoad();
    // Sends one turn; the returned ticket (request.ticket is ignored) tags
    // every signal about it.
    quint64 generate(GenerationRequest request);
    void cancel(quint64 ticket);
    void reconfigure(const runtime::OptimizationConfig& config);
    // Times each operation of the forward passes (the profiler's breakdown,
    // StatsSnapshot::operations), now and for the models loaded after.
    void timeOperations(bool on);
    // Lists the CUDA devices again (devicesListed), as the next load would.
    void refreshDevices();

    bool loading() const { return m_loading; }
    // What the loaded model's chat template does with <think> blocks (none
    // while no model is loaded).
    const ReasoningSupport& reasoning() const { return m_reasoning; }
    // The config last applied; what reconfigure starts from.
    const runtime::OptimizationConfig& config() const { return m_config; }

Q_SIGNALS:
    void loadStarted(const QString& what);
    void loadProgress(qint64 done, qint64 total);
    void modelLoaded(const pagoda::ui::ModelInfo& info);
    void loadFailed(const QString& message);
    void modelUnloaded(const QString& why);  // EngineWorker::modelUnloaded
    void devicesListed(const pagoda::CudaDeviceList& devices);
    void loadCancelled();

    void accepted(quint64 ticket, int promptTokens);
    void rejected(quint64 ticket, const QString& message);
    void textReady(quint64 ticket, const QString& text);
    void finished(quint64 ticket, const pagoda::runtime::FinishEvent& event);

    void configApplied(const pagoda::runtime::OptimizationConfig& config);
    void configRejected(const QString& message, const pagoda::runtime::OptimizationConfig& current);
    void statsUpdated(const pagoda::ui::StatsUpdate& update);

private:
    QThread m_thread;
    EngineWorker* m_worker;  // lives on m_thread; deleted there when it finishes
    runtime::OptimizationConfig m_config;
    BackendOptions m_backend;
    quint64 m_nextTicket = 1;
    bool m_loading = false;
    ReasoningSupport m_reasoning;
};

}  // namespace pagoda::ui

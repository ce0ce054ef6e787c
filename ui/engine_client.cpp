#include "ui/engine_client.h"

#include "ui/engine_worker.h"

namespace pagoda::ui {

EngineClient::EngineClient(const runtime::OptimizationConfig& config, QObject* parent)
    : QObject(parent), m_worker(new EngineWorker(config)), m_config(config) {
    registerEngineTypes();
    m_thread.setObjectName(QStringLiteral("pagoda-worker"));
    m_worker->moveToThread(&m_thread);
    connect(&m_thread, &QThread::finished, m_worker, &QObject::deleteLater);

    const auto queued = Qt::QueuedConnection;
    connect(m_worker, &EngineWorker::loadStarted, this, [this](const QString& what) {
        m_loading = true;
        Q_EMIT loadStarted(what);
    }, queued);
    connect(m_worker, &EngineWorker::loadProgress, this, &EngineClient::loadProgress, queued);
    connect(m_worker, &EngineWorker::modelLoaded, this, [this](const ModelInfo& info) {
        m_loading = false;
        m_reasoning = info.reasoning;
        Q_EMIT modelLoaded(info);
    }, queued);
    connect(m_worker, &EngineWorker::loadFailed, this, [this](const QString& message) {
        m_loading = false;
        Q_EMIT loadFailed(message);
    }, queued);
    connect(m_worker, &EngineWorker::modelUnloaded, this, [this](const QString& why) {
        m_reasoning = {};
        Q_EMIT modelUnloaded(why);
    }, queued);
    connect(m_worker, &EngineWorker::devicesListed, this, &EngineClient::devicesListed, queued);
    connect(m_worker, &EngineWorker::loadCancelled, this, [this] {
        m_loading = false;
        Q_EMIT loadCancelled();
    }, queued);
    connect(m_worker, &EngineWorker::accepted, this, &EngineClient::accepted, queued);
    connect(m_worker, &EngineWorker::rejected, this, &EngineClient::rejected, queued);
    connect(m_worker, &EngineWorker::textReady, this, &EngineClient::textReady, queued);
    connect(m_worker, &EngineWorker::finished, this, &EngineClient::finished, queued);
    connect(m_worker, &EngineWorker::configApplied, this, [this](const runtime::OptimizationConfig& config) {
        m_config = config;
        Q_EMIT configApplied(config);
    }, queued);
    connect(m_worker, &EngineWorker::configRejected, this,
            [this](const QString& message, const runtime::OptimizationConfig& current) {
                m_config = current;
                Q_EMIT configRejected(message, current);
            }, queued);
    connect(m_worker, &EngineWorker::statsUpdated, this, &EngineClient::statsUpdated, queued);
    m_thread.start();
}

EngineClient::~EngineClient() {
    m_thread.quit();
    m_thread.wait();
}

void EngineClient::loadModel(const QString& path) {
    m_loading = true;
    QMetaObject::invokeMethod(m_worker, [w = m_worker, path, backend = m_backend] { w->loadModel(path, backend); },
                              Qt::QueuedConnection);
}

void EngineClient::cancelLoad() {
    QMetaObject::invokeMethod(m_worker, &EngineWorker::cancelLoad, Qt::QueuedConnection);
}

quint64 EngineClient::generate(GenerationRequest request) {
    request.ticket = m_nextTicket++;
    QMetaObject::invokeMethod(m_worker, [w = m_worker, request] { w->submit(request); }, Qt::QueuedConnection);
    return request.ticket;
}

void EngineClient::cancel(quint64 ticket) {
    QMetaObject::invokeMethod(m_worker, [w = m_worker, ticket] { w->cancel(ticket); }, Qt::QueuedConnection);
}

void EngineClient::reconfigure(const runtime::OptimizationConfig& config) {
    QMetaObject::invokeMethod(m_worker, [w = m_worker, config] { w->reconfigure(config); }, Qt::QueuedConnection);
}

void EngineClient::refreshDevices() {
    QMetaObject::invokeMethod(m_worker, [w = m_worker, backend = m_backend] { w->listDevices(backend); },
                              Qt::QueuedConnection);
}

void EngineClient::timeOperations(bool on) {
    QMetaObject::invokeMethod(m_worker, [w = m_worker, on] { w->timeOperations(on); }, Qt::QueuedConnection);
}

}  // namespace pagoda::ui

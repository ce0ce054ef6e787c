#include "ui/engine_worker.h"

#include <pthread.h>

#include <QFileInfo>

#include "engine/backend/backend_select.h"
#include "engine/backend/cuda_ops.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"

namespace pagoda::ui {
namespace {

ChatRole chatRole(Role role) {
    switch (role) {
    case Role::System:
        return ChatRole::System;
    case Role::User:
        return ChatRole::User;
    case Role::Assistant:
        return ChatRole::Assistant;
    }
    return ChatRole::User;
}

QString fromStd(const std::string& text) { return QString::fromStdString(text); }

}  // namespace

// One model load. `cancelled` is read by the loader thread between phases;
// the synthetic model writer cannot be interrupted, so a cancelled creation
// runs to its end (the file is written atomically and reused next time) and
// its result is dropped.
struct EngineWorker::LoadJob {
    std::atomic<bool> cancelled = false;
    std::atomic<bool> done = false;
};

struct EngineWorker::Loaded {
    std::unique_ptr<Model> model;
    SelectedBackend backend;  // with the model's weights on it
    std::shared_ptr<const SharedCudaWeights> gpuWeights;  // on backend's GPU
    CudaDeviceList cudaDevices;
    QString path;
    QString error;
};

// EngineEvents on the engine thread: translates request ids to the UI's
// tickets and re-emits as the worker's signals (queued to the receivers).
class EngineWorker::Events final : public runtime::EngineEvents {
public:
    explicit Events(EngineWorker* worker) : m_worker(worker) {}

    struct Live {
        quint64 ticket;
        QString conversationId;
    };

    // Held while submitting, so the engine cannot report on a request
    // before its ticket is known.
    std::mutex& mutex() { return m_mutex; }
    void addLocked(runtime::RequestId id, quint64 ticket, const QString& conversationId) {
        m_live[id] = {ticket, conversationId};
    }
    std::optional<runtime::RequestId> idOf(quint64 ticket) {
        std::lock_guard lock(m_mutex);
        for (const auto& [id, live] : m_live) {
            if (live.ticket == ticket) return id;
        }
        return std::nullopt;
    }
    // Requests the stopped engine will never finish.
    std::unordered_map<runtime::RequestId, Live> takeLive() {
        std::lock_guard lock(m_mutex);
        return std::exchange(m_live, {});
    }
    QHash<QString, qint64> tokensByConversation() {
        std::lock_guard lock(m_mutex);
        return m_tokens;
    }
    // The conversation of each running request of the snapshot, by its
    // block manager sequence.
    QHash<qint64, QString> conversationBySequence(const runtime::StatsSnapshot& snapshot) {
        std::lock_guard lock(m_mutex);
        QHash<qint64, QString> bySequence;
        for (const runtime::RequestSnapshot& r : snapshot.requests) {
            const auto it = m_live.find(r.id);
            if (r.seq >= 0 && it != m_live.end()) bySequence.insert(r.seq, it->second.conversationId);
        }
        return bySequence;
    }

    void onToken(runtime::RequestId id, int32_t) override {
        std::lock_guard lock(m_mutex);
        if (auto it = m_live.find(id); it != m_live.end()) ++m_tokens[it->second.conversationId];
    }
    void onText(runtime::RequestId id, std::string_view text) override {
        quint64 ticket = 0;
        {
            std::lock_guard lock(m_mutex);
            auto it = m_live.find(id);
            if (it == m_live.end()) return;
            ticket = it->second.ticket;
        }
        Q_EMIT m_worker->textReady(ticket, QString::fromUtf8(text.data(), qsizetype(text.size())));
    }
    void onFinished(const runtime::FinishEvent& event) override {
        quint64 ticket = 0;
        {
            std::lock_guard lock(m_mutex);
            auto it = m_live.find(event.id);
            if (it == m_live.end()) return;
            ticket = it->second.ticket;
            m_live.erase(it);
        }
        Q_EMIT m_worker->finished(ticket, event);
    }

private:
    EngineWorker* m_worker;
    std::mutex m_mutex;
    std::unordered_map<runtime::RequestId, Live> m_live;
    QHash<QString, qint64> m_tokens;
};

EngineWorker::EngineWorker(const runtime::OptimizationConfig& config)
    : m_events(std::make_unique<Events>(this)), m_config(config),
      m_statsTimer(this) {
    m_statsTimer.setInterval(kStatsIntervalMs);
    connect(&m_statsTimer, &QTimer::timeout, this, &EngineWorker::publishStats);
    m_clock.start();
}

EngineWorker::~EngineWorker() {
    for (auto& [job, thread] : m_loaders) job->cancelled = true;
    m_loaders.clear();  // joins
    stopEngine();
}

void EngineWorker::loadModel(const QString& path, const BackendOptions& backend) {
    reapLoaders();
    if (m_currentLoad) m_currentLoad->cancelled = true;
    auto job = std::make_shared<LoadJob>();
    m_currentLoad = job;
    std::error_code error;
    const bool createDefault = path.isEmpty() && !std::filesystem::is_regular_file(defaultModelPath(), error);
    if (!createDefault) makeRoomFor(path, backend);
    Q_EMIT loadStarted(createDefault ? tr("Creating the default synthetic model")
                                   : tr("Loading %1").arg(QFileInfo(path.isEmpty() ? fromStd(defaultModelPath().string())
                                                                                   : path)
                                                              .fileName()));
    m_loaders.emplace_back(job, std::jthread([this, job, path, backend] { runLoad(job, path, backend); }));
}

void EngineWorker::makeRoomFor(const QString& path, const BackendOptions& backend) {
    if (!m_engine || m_cudaDevice < 0 || backend.choice == BackendChoice::Cpu) return;
    if (backend.cudaDevice != kFirstUsableCudaDevice && backend.cudaDevice != m_cudaDevice) return;
    const std::optional<DeviceMemoryStats> device = m_engine->snapshot().memory.device;
    const QFileInfo file(path.isEmpty() ? fromStd(defaultModelPath().string()) : path);
    if (!device || weightsFitBeside(uint64_t(file.size()), device->freeBytes)) return;
    m_statsTimer.stop();
    stopEngine();
    m_ops.reset();
    m_cudaDevice = -1;
    m_gpuWeights.reset();
    m_model.reset();
    m_template.reset();
    Q_EMIT modelUnloaded(tr("The current model was unloaded to make room on the GPU for %1").arg(file.fileName()));
}

void EngineWorker::cancelLoad() {
    if (!m_currentLoad) return;
    m_currentLoad->cancelled = true;
    m_currentLoad.reset();
    Q_EMIT loadCancelled();
    rejectWaiting(tr("Loading the model was cancelled"));
}

// Loader thread.
void EngineWorker::runLoad(std::shared_ptr<LoadJob> job, QString path, BackendOptions backendOptions) {
    pthread_setname_np(pthread_self(), "pagoda-loader");
    auto loaded = std::make_shared<Loaded>();
    // loadProgress at most every 50 ms, and at the end, while the job is live.
    const auto progress = [this, job] {
        return [this, job, lastEmit = std::chrono::steady_clock::now() - std::chrono::seconds(1)](
                   uint64_t done, uint64_t total) mutable {
            const auto now = std::chrono::steady_clock::now();
            if (job->cancelled || (now - lastEmit < std::chrono::milliseconds(50) && done < total)) return;
            lastEmit = now;
            Q_EMIT loadProgress(qint64(done), qint64(total));
        };
    };
    std::filesystem::path file = path.toStdString();
    if (path.isEmpty()) {
        // Cancelled (another load, or the app quitting): the write stops
        // after the tensor being generated, so the destructor's join does
        // not wait for the whole model.
        if (auto created = ensureDefaultModel(progress(), [&job] { return job->cancelled.load(); })) {
            file = *created;
        } else {
            loaded->error = tr("Cannot create the default model: %1").arg(fromStd(created.error().message));
        }
    }
    if (loaded->error.isEmpty() && !job->cancelled) {
        loaded->path = fromStd(file.string());
        if (auto model = Model::load(file)) {
            loaded->model = std::move(*model);
        } else {
            loaded->error = fromStd(model.error().message);
        }
    }
    // Each model gets a backend of its own, so the current model keeps
    // serving on its backend while this one's weights are uploaded.
    if (loaded->model && !job->cancelled) {
        loaded->cudaDevices = listCudaDevices(backendOptions.cudaModulePaths);
        auto backend = selectBackend(backendOptions, &loaded->cudaDevices);
        Result<void> prepared = backend ? Result<void>{} : std::unexpected(backend.error());
        if (backend && backend->cuda != nullptr) {
            Q_EMIT loadStarted(tr("Uploading the weights to the GPU"));
            prepared = prepareModel(*backend, *loaded->model, progress());
        }
        if (prepared) {
            copyWeightsForTheCpu(*backend, *loaded->model);
            if (backend->cuda != nullptr) loaded->gpuWeights = backend->cuda->sharedWeights();
            loaded->backend = std::move(*backend);
        } else {
            loaded->error = tr("%1: %2").arg(loaded->path, fromStd(prepared.error().message));
            loaded->model.reset();
        }
    }
    job->done = true;
    QMetaObject::invokeMethod(this, [this, job, loaded] { install(job, loaded); }, Qt::QueuedConnection);
}

void EngineWorker::install(const std::shared_ptr<LoadJob>& job, std::shared_ptr<Loaded> loaded) {
    reapLoaders();
    if (job->cancelled || job != m_currentLoad) return;
    m_currentLoad.reset();
    if (!loaded->model) {
        Q_EMIT loadFailed(loaded->error);
        rejectWaiting(loaded->error);
        return;
    }
    if (loaded->model->tokenizer() == nullptr) {
        const QString error = tr("%1: the model has no tokenizer (tokenizer.ggml.*), so it cannot chat").arg(loaded->path);
        Q_EMIT loadFailed(error);
        rejectWaiting(error);
        return;
    }
    // The new engine is made before the old one stops, so a failure leaves
    // the current model serving.
    runtime::OptimizationConfig config = m_config;
    Ops& ops = *loaded->backend.ops;
    auto engine = runtime::Engine::create(*loaded->model, ops, config, m_events.get());
    if (!engine) {
        config = runtime::OptimizationConfig::optimized();
        engine = runtime::Engine::create(*loaded->model, ops, config, m_events.get());
    }
    if (!engine) {
        const QString error = tr("%1: %2").arg(loaded->path, fromStd(engine.error().message));
        Q_EMIT loadFailed(error);
        rejectWaiting(error);
        return;
    }
    stopEngine();
    m_engine = std::move(*engine);  // the old engine goes before the backend and model it used
    m_ops = std::move(loaded->backend.ops);
    m_cudaDevice = loaded->backend.cudaDevice;
    m_gpuWeights = loaded->gpuWeights;
    m_configFailuresSeen = 0;
    m_backendNote = fromStd(loaded->backend.note);
    m_cudaDevices = std::move(loaded->cudaDevices);
    m_model = std::move(loaded->model);
    m_template = ChatTemplate::fromVocab(m_model->tokenizer()->vocab());
    // The old model's device memory is free now: an automatic KV pool that
    // it limited can grow.
    if (m_cudaDevice >= 0) m_engine->refitKvCache();
    if (m_timeOperations) m_engine->timeOperations(true);
    startEngine();
    if (config != m_config) {
        m_config = config;
        Q_EMIT configApplied(m_config);
    }
    Q_EMIT modelLoaded(describe(*m_model, loaded->path));
    m_statsTimer.start();
    for (const GenerationRequest& request : std::exchange(m_waitingForModel, {})) submit(request);
}

void EngineWorker::rejectWaiting(const QString& message) {
    if (m_engine) return;
    for (const GenerationRequest& request : std::exchange(m_waitingForModel, {})) {
        Q_EMIT rejected(request.ticket, message);
    }
}

void EngineWorker::startEngine() {
    m_engineThread = std::jthread([engine = m_engine.get()](std::stop_token stop) {
        pthread_setname_np(pthread_self(), "pagoda-engine");
        engine->run(stop);
    });
}

void EngineWorker::stopEngine() {
    if (m_engineThread.joinable()) {
        m_engineThread.request_stop();
        m_engineThread.join();
    }
    for (const auto& [id, live] : m_events->takeLive()) {
        runtime::FinishEvent event;
        event.id = id;
        event.reason = runtime::FinishReason::Cancelled;
        event.message = "the model was unloaded";
        Q_EMIT finished(live.ticket, event);
    }
    m_engine.reset();
}

void EngineWorker::submit(const GenerationRequest& request) {
    if (!m_engine) {
        if (m_currentLoad) {
            m_waitingForModel.push_back(request);
        } else {
            Q_EMIT rejected(request.ticket, tr("No model is loaded: open one with File ▸ Open model…"));
        }
        return;
    }
    std::vector<ChatMessage> messages;
    messages.reserve(size_t(request.messages.size()));
    for (const PromptMessage& m : request.messages) messages.push_back({chatRole(m.role), m.content.toStdString()});
    auto prompt = m_template->render(messages, true, request.thinking);
    if (!prompt) {
        Q_EMIT rejected(request.ticket, fromStd(prompt.error().message));
        return;
    }
    const Tokenizer& tokenizer = *m_model->tokenizer();
    runtime::Request r;
    r.promptTokens = tokenizer.encode(*prompt, tokenizer.vocab().addBos, true);
    r.sampling = request.sampling;
    r.maxNewTokens = request.maxNewTokens;
    r.stopStrings = m_template->stopTexts();
    r.stopAtEndOfGeneration = !request.ignoreEos;
    r.overflow = runtime::OverflowPolicy::KeepWindow;
    const int promptTokens = int(r.promptTokens.size());
    {
        std::lock_guard lock(m_events->mutex());
        auto id = m_engine->submit(std::move(r));
        if (!id) {
            Q_EMIT rejected(request.ticket, fromStd(id.error().message));
            return;
        }
        m_events->addLocked(*id, request.ticket, request.conversationId);
        // Under the lock, so that both come before the engine's first text.
        Q_EMIT accepted(request.ticket, promptTokens);
        const std::string_view opening = m_template->replyOpening(request.thinking);
        if (!opening.empty()) Q_EMIT textReady(request.ticket, fromStd(std::string(opening)));
    }
}

void EngineWorker::cancel(quint64 ticket) {
    const auto waiting = std::find_if(m_waitingForModel.begin(), m_waitingForModel.end(),
                                      [ticket](const GenerationRequest& r) { return r.ticket == ticket; });
    if (waiting != m_waitingForModel.end()) {
        m_waitingForModel.erase(waiting);
        runtime::FinishEvent event;
        event.reason = runtime::FinishReason::Cancelled;
        Q_EMIT finished(ticket, event);
        return;
    }
    if (!m_engine) return;
    if (auto id = m_events->idOf(ticket)) m_engine->cancel(*id);
}

void EngineWorker::reconfigure(const runtime::OptimizationConfig& config) {
    if (m_engine) {
        if (auto applied = m_engine->reconfigure(config); !applied) {
            Q_EMIT configRejected(fromStd(applied.error().message), m_config);
            return;
        }
    }
    m_config = config;
    Q_EMIT configApplied(m_config);
}

void EngineWorker::listDevices(const BackendOptions& backend) {
    m_cudaDevices = listCudaDevices(backend.cudaModulePaths);
    Q_EMIT devicesListed(m_cudaDevices);
}

void EngineWorker::timeOperations(bool on) {
    m_timeOperations = on;
    if (m_engine) m_engine->timeOperations(on);
}

void EngineWorker::publishStats() {
    if (!m_engine) return;
    StatsUpdate update;
    update.snapshot = m_engine->snapshot();
    // A reconfigure accepted when asked that failed at the engine's step:
    // the config in effect is the one before it.
    if (update.snapshot.counters.configFailures > m_configFailuresSeen) {
        m_configFailuresSeen = update.snapshot.counters.configFailures;
        m_config = update.snapshot.config;
        Q_EMIT configRejected(fromStd(update.snapshot.configError), m_config);
    }
    update.tokensByConversation = m_events->tokensByConversation();
    update.conversationBySequence = m_events->conversationBySequence(update.snapshot);
    update.seconds = double(m_clock.nsecsElapsed()) * 1e-9;
    Q_EMIT statsUpdated(update);
}

ModelInfo EngineWorker::describe(const Model& model, const QString& path) const {
    const ModelConfig& config = model.config();
    ModelInfo info;
    info.path = path;
    info.name = config.name.empty() ? QFileInfo(path).completeBaseName() : fromStd(config.name);
    info.architecture = fromStd(config.architecture);
    info.weightType = fromStd(model.weightTypeName());
    info.chatFormat = fromStd(std::string(chatFamilyName(m_template->family())));
    info.chatNote = fromStd(m_template->note());
    info.reasoning = m_template->reasoning();
    info.backend = fromStd(m_ops->description());
    info.backendNote = m_backendNote;
    info.cudaDevices = m_cudaDevices;
    info.hostKv = m_ops->localKvPools();
    info.gpuWeights = m_gpuWeights;
    info.fileBytes = qint64(model.file().fileSize());
    for (const gguf::TensorInfo& tensor : model.file().tensors()) info.parameters += tensor.elementCount;
    info.contextLength = config.contextLength;
    info.synthetic = model.file().find("pagoda.synthetic.seed") != nullptr;
    info.model = m_model;
    return info;
}

void EngineWorker::reapLoaders() {
    std::erase_if(m_loaders, [](const auto& loader) { return loader.first->done.load(); });
}

}  // namespace pagoda::ui

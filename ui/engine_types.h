#pragma once
// Value types that cross from the engine worker to the widgets through
// queued signals (registered with Qt's meta-type system by
// registerEngineTypes()). Widgets see the engine only through these.

#include <QHash>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QVector>

#include <memory>

#include "engine/backend/cuda_loader.h"
#include "engine/chat/chat_template.h"
#include "engine/runtime/metrics.h"
#include "engine/runtime/optimization_config.h"
#include "engine/runtime/request.h"
#include "engine/sampling/sampler.h"

namespace pagoda {
class Model;
struct SharedCudaWeights;
}

namespace pagoda::ui {

// What the status bar and the banner show about the loaded model.
struct ModelInfo {
    QString path;
    QString name;          // general.name, else the file name
    QString architecture;  // general.architecture
    QString weightType;    // "f16", "q8_0", ... or "mixed"
    QString chatFormat;    // the chat template family in use ("chatml", "llama3", ...)
    QString chatNote;      // why a fallback template is in use; empty when recognized
    ReasoningSupport reasoning;  // what the chat template does with <think> blocks
    QString backend;       // Ops::description()
    QString backendNote;   // how the backend was chosen ("cuda: unavailable: ...; using cpu")
    CudaDeviceList cudaDevices;  // what the load found (the app's Run on menu)
    // The KV pools in host memory (the CPU backend): F32 KV and local-layer
    // pools are on offer; a GPU, or a model split with one, has neither.
    bool hostKv = true;
    qint64 fileBytes = 0;
    quint64 parameters = 0;
    int contextLength = 0;
    bool synthetic = false;  // random weights: writes random text
    // The model itself, shared with the worker that serves it. Whoever holds
    // it (the comparison view while it runs) keeps the weights mapped after
    // a reload replaces the model; the engine that served it is gone by then,
    // and a const Model may be read by any number of threads.
    std::shared_ptr<const Model> model;
    // The model's weights on the GPU it runs on (none on the CPU): the
    // comparison runs on them beside the chats, without a copy of its own.
    // Weak: unloading the model frees them, unless a comparison running on
    // them holds them until it ends.
    std::weak_ptr<const SharedCudaWeights> gpuWeights;
};

enum class Role { System, User, Assistant };

struct PromptMessage {
    Role role = Role::User;
    QString content;
};

// One turn to generate: the conversation so far, rendered by the worker
// with the model's chat template.
struct GenerationRequest {
    quint64 ticket = 0;          // chosen by the UI; every event about this turn carries it
    QString conversationId;      // per-conversation token rates in the profiler
    QVector<PromptMessage> messages;  // system (optional) first, then alternating, ending with a user turn
    SamplingParams sampling;
    int maxNewTokens = 256;
    bool ignoreEos = false;  // keep generating past end-of-text tokens
    // Off asks a model whose chat template can (Qwen 3) to answer without
    // reasoning first; others ignore it.
    bool thinking = true;
};

// A StatsSnapshot plus what only the worker knows: tokens generated per
// conversation (cumulative, for per-tab rates) and when it was taken.
struct StatsUpdate {
    runtime::StatsSnapshot snapshot;
    QHash<QString, qint64> tokensByConversation;
    QHash<qint64, QString> conversationBySequence;  // running block manager sequence -> conversation id
    double seconds = 0;  // since the worker started
};

void registerEngineTypes();

}  // namespace pagoda::ui

Q_DECLARE_METATYPE(pagoda::ui::ModelInfo)
Q_DECLARE_METATYPE(pagoda::ui::GenerationRequest)
Q_DECLARE_METATYPE(pagoda::ui::StatsUpdate)
Q_DECLARE_METATYPE(pagoda::runtime::FinishEvent)
Q_DECLARE_METATYPE(pagoda::runtime::OptimizationConfig)
Q_DECLARE_METATYPE(pagoda::CudaDeviceList)

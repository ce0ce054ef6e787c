#include "ui/compare_worker.h"

#include <chrono>
#include <string_view>

#include "engine/backend/backend_select.h"
#include "engine/model/model.h"

namespace pagoda::ui {

CompareWorker::CompareWorker(std::shared_ptr<const std::atomic<bool>> cancel) : m_cancel(std::move(cancel)) {}

void CompareWorker::run(const CompareRequest& request) {
    const Model& model = *request.model;
    const runtime::Workload& w = request.workload;
    const auto failWith = [this](const Error& error, std::string_view context = {}) {
        if (error.message == runtime::kWorkloadCancelled) {
            Q_EMIT cancelled();
        } else {
            Q_EMIT failed(QString::fromStdString(context.empty() ? error.message : withContext(context, error).message));
        }
    };
    if (auto fits = runtime::checkWorkload(w, model.config()); !fits) return failWith(fits.error());
    const auto prompts = runtime::makeWorkloadPrompts(w, model.config().vocabSize, model.config().bos);
    runtime::WorkloadControl control;
    control.cancel = m_cancel.get();
    // Backends of its own: CudaOps and CpuOps' pool are single-threaded,
    // and the chat engine's thread is using the worker's. One serves both
    // configs unless they ask for different ones; on the chats' GPU it runs
    // on their weights. Each is warmed up (pages the weights in, fills the
    // caches) before anything is timed, under the first config it is to
    // run: a KV budget set for the comparison holds for the warm-up too.
    const bool shared = sameBackendChoice(request.backends[0], request.backends[1]);
    const std::shared_ptr<const SharedCudaWeights> gpuWeights = request.gpuWeights.lock();
    std::array<SelectedBackend, 2> backends;
    for (size_t side = 0; side < (shared ? 1 : 2); ++side) {
        const std::string_view name = side == 0 ? "backend of A" : "backend of B";
        BackendOptions options = request.backends[side];
        options.room = runtime::gpuRoomFor(request.configs[side]);  // automatic GPU layers plan for this side
        auto backend = selectBackend(options);
        if (!backend) return failWith(backend.error(), name);
        if (auto prepared = prepareModel(*backend, model, {}, gpuWeights); !prepared) {
            return failWith(prepared.error(), name);
        }
        backends[side] = std::move(*backend);
    }
    const auto backendOf = [&](size_t side) -> const SelectedBackend& { return backends[shared ? 0 : side]; };
    Q_EMIT backendsReady(QString::fromStdString(backendOf(0).ops->description()),
                         QString::fromStdString(backendOf(1).ops->description()));
    for (size_t side = 0; side < (shared ? 1 : 2); ++side) {
        if (auto warm = runtime::runWorkload(model, *backends[side].ops,
                                             runtime::fitToWorkload(request.configs[side], w),
                                             runtime::warmUpWorkload(w), prompts, control);
            !warm) {
            return failWith(warm.error(), side == 0 ? "config A, warming up" : "config B, warming up");
        }
    }

    CompareOutcome outcome;
    outcome.modelName = request.modelName;
    for (size_t side = 0; side < 2; ++side) {
        outcome.backends[side] = QString::fromStdString(backendOf(side).ops->description());
        outcome.backendNotes[side] = QString::fromStdString(backendOf(side).note);
    }
    outcome.workload = w;
    using Clock = std::chrono::steady_clock;
    Clock::time_point lastEmit{};
    const int runs = request.opTimes ? 4 : 2;
    const auto reportFrom = [&](int run) {
        control.progress = [&, before = run * w.requests](const runtime::WorkloadProgress& p) {
            const auto now = Clock::now();
            if (p.finished < p.total && now - lastEmit < std::chrono::milliseconds(kProgressIntervalMs)) return;
            lastEmit = now;
            Q_EMIT progress(before + p.finished, runs * w.requests);
        };
    };
    for (size_t side = 0; side < 2; ++side) {
        reportFrom(int(side));
        auto result = runtime::runWorkload(model, *backendOf(side).ops, runtime::fitToWorkload(request.configs[side], w),
                                           w, prompts, control);
        if (!result) return failWith(result.error(), side == 0 ? "config A" : "config B");
        outcome.results[side] = std::move(*result);
    }
    for (size_t side = 0; side < 2 && request.opTimes; ++side) {
        reportFrom(2 + int(side));
        TimedOps timed(*backendOf(side).ops);
        auto result =
            runtime::runWorkload(model, timed, runtime::fitToWorkload(request.configs[side], w), w, prompts, control);
        if (!result) {
            return failWith(result.error(), side == 0 ? "config A, timed by operation" : "config B, timed by operation");
        }
        outcome.opTimes[side] = timed.times();
    }
    for (int i = 0; i < w.requests; ++i) {
        outcome.sameOutputs += outcome.results[0].outputs[size_t(i)] == outcome.results[1].outputs[size_t(i)];
    }
    Q_EMIT finished(outcome);
}

}  // namespace pagoda::ui

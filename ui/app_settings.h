#pragma once
// The app's settings (QSettings) with defaults shipped in :/defaults.json:
// model path and recent models, the backend, the optimization config, new chats'
// settings, the profiler window, and window geometry.

#include <QByteArray>
#include <QJsonObject>
#include <QStringList>

#include <cstdint>
#include <memory>

#include "engine/backend/backend_select.h"
#include "engine/runtime/optimization_config.h"
#include "ui/conversation.h"

class QSettings;

namespace pagoda::ui {

class AppSettings {
public:
    static constexpr int kRecentModelsKept = 8;

    // iniPath empty: the platform's settings for the application.
    explicit AppSettings(const QString& iniPath = {});
    ~AppSettings();

    // Empty: the default synthetic model.
    QString modelPath() const;
    void setModelPath(const QString& path);
    QStringList recentModels() const;
    void addRecentModel(const QString& path);
    void removeRecentModel(const QString& path);

    // Where models run (the Run on menu): the CPU, or a CUDA device when it
    // is usable (else the CPU, the status bar saying why). "cuda", which
    // would refuse the CPU, reads as "auto": the app always falls back.
    // The automatic GPU layers leave room for the saved optimization
    // config's context (runtime::gpuRoomFor).
    BackendOptions backend() const;
    void setBackend(const BackendOptions& backend);

    // The saved optimization config. Defaults of then read as today's: one
    // saved before the automatic KV budget with the fixed default of then
    // (256 MiB) reads as automatic, and one saved before int8 matmul was on
    // for the CPU (version < 3) with it off, then every config's, reads as
    // cpu.
    runtime::OptimizationConfig optimization() const;
    void setOptimization(const runtime::OptimizationConfig& config);
    // The key and value setOptimization writes beside the config (absent in
    // settings saved before the automatic KV budget; 2 until int8 matmul
    // was on for the CPU).
    static constexpr const char* kOptimizationVersionKey = "engine/optimizationVersion";
    static constexpr int kOptimizationVersion = 3;
    static constexpr uint64_t kFormerDefaultKvBudget = 256ull << 20;

    ChatSettings newChatSettings() const;

    double profilerWindowSeconds() const;
    void setProfilerWindowSeconds(double seconds);

    QByteArray windowGeometry() const;
    QByteArray windowState() const;
    void setWindow(const QByteArray& geometry, const QByteArray& state);

private:
    std::unique_ptr<QSettings> m_settings;
    QJsonObject m_defaults;
};

}  // namespace pagoda::ui

#include "ui/app_settings.h"

#include <algorithm>

#include <QFile>
#include <QJsonDocument>
#include <QSettings>

namespace pagoda::ui {
namespace {

QJsonObject loadDefaults() {
    QFile file(QStringLiteral(":/defaults.json"));
    if (!file.open(QIODevice::ReadOnly)) return {};
    return QJsonDocument::fromJson(file.readAll()).object();
}

}  // namespace

AppSettings::AppSettings(const QString& iniPath)
    : m_settings(iniPath.isEmpty() ? std::make_unique<QSettings>()
                                   : std::make_unique<QSettings>(iniPath, QSettings::IniFormat)),
      m_defaults(loadDefaults()) {}

AppSettings::~AppSettings() = default;

QString AppSettings::modelPath() const { return m_settings->value("model/path").toString(); }

void AppSettings::setModelPath(const QString& path) { m_settings->setValue("model/path", path); }

QStringList AppSettings::recentModels() const { return m_settings->value("model/recent").toStringList(); }

void AppSettings::addRecentModel(const QString& path) {
    QStringList recent = recentModels();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > kRecentModelsKept) recent.removeLast();
    m_settings->setValue("model/recent", recent);
}

void AppSettings::removeRecentModel(const QString& path) {
    QStringList recent = recentModels();
    recent.removeAll(path);
    m_settings->setValue("model/recent", recent);
}

BackendOptions AppSettings::backend() const {
    BackendOptions options;
    if (m_settings->value("engine/backend").toString() == QStringLiteral("cpu")) options.choice = BackendChoice::Cpu;
    options.cudaDevice = m_settings->value("engine/cudaDevice", kFirstUsableCudaDevice).toInt();
    if (options.cudaDevice < 0) options.cudaDevice = kFirstUsableCudaDevice;
    options.gpuLayers = std::max(kGpuLayersThatFit, m_settings->value("engine/gpuLayers", kGpuLayersThatFit).toInt());
    options.room = runtime::gpuRoomFor(optimization());
    options.copyWeightsToMemory = m_settings->value("engine/copyWeights", true).toBool();
    return options;
}

void AppSettings::setBackend(const BackendOptions& backend) {
    m_settings->setValue("engine/backend", backend.choice == BackendChoice::Cpu ? "cpu" : "auto");
    m_settings->setValue("engine/cudaDevice", backend.cudaDevice);
    m_settings->setValue("engine/gpuLayers", backend.gpuLayers);
    m_settings->setValue("engine/copyWeights", backend.copyWeightsToMemory);
}

runtime::OptimizationConfig AppSettings::optimization() const {
    const QString spec =
        m_settings->value("engine/optimization", m_defaults.value("optimization").toString("optimized")).toString();
    auto config = runtime::parseOptimizationConfig(spec.toStdString());
    if (!config) return runtime::OptimizationConfig::optimized();
    // Saved before the automatic KV budget (no version), a config holds the
    // fixed default of then, 256 MiB, as though it had been chosen: it gets
    // the automatic budget instead. Saved before version 3, int8 matmul off
    // was every config's: it gets the CPU's.
    const int version = m_settings->value(kOptimizationVersionKey, 0).toInt();
    if (version == 0 && config->kvBudgetBytes == kFormerDefaultKvBudget) config->kvBudgetBytes = runtime::kAutoKvBudget;
    if (version < 3 && config->int8Matmul == Int8Matmul::Off) config->int8Matmul = Int8Matmul::Cpu;
    return *config;
}

void AppSettings::setOptimization(const runtime::OptimizationConfig& config) {
    m_settings->setValue("engine/optimization", QString::fromStdString(runtime::formatOptimizationConfig(config)));
    m_settings->setValue(kOptimizationVersionKey, kOptimizationVersion);
}

ChatSettings AppSettings::newChatSettings() const {
    ChatSettings s;
    s.systemPrompt = m_defaults.value("systemPrompt").toString();
    s.sampling = samplingFromJson(m_defaults.value("sampling").toObject(), SamplingParams{});
    s.maxNewTokens = m_defaults.value("maxNewTokens").toInt(s.maxNewTokens);
    return s;
}

double AppSettings::profilerWindowSeconds() const {
    return m_settings->value("profiler/window", m_defaults.value("profilerWindowSeconds").toDouble(120)).toDouble();
}

void AppSettings::setProfilerWindowSeconds(double seconds) { m_settings->setValue("profiler/window", seconds); }

QByteArray AppSettings::windowGeometry() const { return m_settings->value("window/geometry").toByteArray(); }
QByteArray AppSettings::windowState() const { return m_settings->value("window/state").toByteArray(); }

void AppSettings::setWindow(const QByteArray& geometry, const QByteArray& state) {
    m_settings->setValue("window/geometry", geometry);
    m_settings->setValue("window/state", state);
}

}  // namespace pagoda::ui

#pragma once
// Pagoda's main window: chat tabs in the middle, the profiler, the KV cache
// map and the optimization panel in docks, model and engine state in the
// status bar. It composes the widgets and routes between them and the
// EngineClient; conversations are saved as they change and restored on
// start.

#include <QMainWindow>
#include <QSet>
#include <QTimer>

#include <functional>
#include <memory>

#include "ui/app_settings.h"
#include "ui/conversation_store.h"
#include "ui/engine_types.h"

class QActionGroup;
class QDockWidget;
class QLabel;
class QMenu;
class QTabWidget;

namespace pagoda::ui {

class ChatTab;
class CompareView;
class EngineClient;
class KvCacheView;
class LoadProgress;
class OptimizationPanel;
class ProfilerView;
class SyntheticBanner;

struct MainWindowOptions {
    QString dataDir;       // conversations; empty: QStandardPaths::AppDataLocation
    QString settingsPath;  // an INI file; empty: the platform's settings
    QString modelPath;     // overrides the saved model for this run
    // Errors as dialogs. Off in tests, which watch errorOccurred instead.
    bool errorDialogs = true;
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(MainWindowOptions options = {}, QWidget* parent = nullptr);
    ~MainWindow() override;

    EngineClient* engine() const { return m_engine; }
    ProfilerView* profiler() const { return m_profiler; }
    KvCacheView* kvCache() const { return m_kvCache; }
    OptimizationPanel* optimizationPanel() const { return m_optimizations; }
    SyntheticBanner* banner() const { return m_banner; }
    int tabCount() const;
    ChatTab* tab(int index) const;
    ChatTab* currentTab() const;
    const ModelInfo& model() const { return m_model; }
    bool hasModel() const { return !m_model.path.isEmpty(); }

    ChatTab* newTab();
    void closeTab(int index);
    void reopenClosedTab();
    void renameTab(int index, const QString& title);
    // Loads a model; empty: the default synthetic model.
    void openModel(const QString& path);
    // Where models run from now on (the Run on menu): saved, and the
    // current model is loaded again there; it serves until the copy is ready.
    void setBackend(const BackendOptions& backend);
    // How many of the model's layers run on the GPU (BackendOptions::
    // gpuLayers; kGpuLayersThatFit: as many as fit): setBackend with it.
    void setGpuLayers(int layers);
    QMenu* runOnMenu() const { return m_runOnMenu; }
    // Writes every pending change to disk now.
    void saveAll();
    // Tools ▸ Compare configurations…: shows the comparison window (made on
    // first use, then kept, with its last results).
    CompareView* openCompareView();

Q_SIGNALS:
    void modelReady(const pagoda::ui::ModelInfo& info);
    void errorOccurred(const QString& message);

protected:
    void closeEvent(QCloseEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    void buildMenus();
    void buildDocks();
    void buildStatusBar();
    void connectEngine();
    ChatTab* addTab(Conversation conversation);
    void restoreSession();
    void markDirty(const QString& id);
    void saveSession();
    void showError(const QString& title, const QString& message);
    void onModelLoaded(const ModelInfo& info);
    void onLoadFailed(const QString& message);
    void onModelUnloaded(const QString& why);
    void onDevicesListed(const CudaDeviceList& devices);
    void onStats(const StatsUpdate& update);
    void updateRecentMenu();
    // Automatic, the CPU, and each CUDA device the last load listed.
    void updateRunOnMenu();
    void updateTabIcon(ChatTab* tab);
    void askOpenModel();
    void askGpuLayers();
    void askRenameTab(int index);
    void exportCurrent(bool markdown);

    MainWindowOptions m_options;
    AppSettings m_settings;
    ConversationStore m_store;
    EngineClient* m_engine;
    ModelInfo m_model;
    QString m_loadingPath;  // what the load in progress opens ("" = default model)
    QSet<QString> m_dirty;  // conversations to save
    QTimer m_saveTimer;
    int m_nextChatNumber = 1;

    QTabWidget* m_tabs;
    SyntheticBanner* m_banner;
    ProfilerView* m_profiler;
    KvCacheView* m_kvCache;
    OptimizationPanel* m_optimizations;
    CompareView* m_compareView = nullptr;
    QDockWidget* m_profilerDock = nullptr;
    QDockWidget* m_kvDock = nullptr;
    bool m_docksPlaced = false;  // restored from the settings, or sized on first show
    QMenu* m_recentMenu = nullptr;
    QMenu* m_runOnMenu = nullptr;
    QActionGroup* m_runOnGroup = nullptr;
    QMenu* m_viewMenu = nullptr;
    LoadProgress* m_loadProgress;
    QLabel* m_backendLabel;
    QLabel* m_modelLabel;
    QLabel* m_stateLabel;
};

}  // namespace pagoda::ui

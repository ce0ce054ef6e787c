#include "ui/main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QJsonDocument>
#include <QLabel>
#include <QLocale>
#include <QMenuBar>
#include <QMessageBox>
#include <QRegularExpression>
#include <QScrollArea>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabBar>
#include <QTabWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include "engine/model/model.h"
#include "ui/block_map_widget.h"
#include "ui/chat_tab.h"
#include "ui/compare_view.h"
#include "ui/engine_client.h"
#include "ui/kv_cache_view.h"
#include "ui/load_progress.h"
#include "ui/optimization_panel.h"
#include "ui/profiler_view.h"
#include "ui/synthetic_banner.h"

namespace pagoda::ui {
namespace {

constexpr int kSaveDelayMs = 300;

QString dataDirOr(const QString& dir) {
    return dir.isEmpty() ? QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) : dir;
}

QString humanSize(double bytes) { return QLocale::c().formattedDataSize(qint64(bytes), 1, QLocale::DataSizeTraditionalFormat); }

QString humanCount(quint64 n) {
    if (n >= 1'000'000'000) return QStringLiteral("%1B").arg(QLocale::c().toString(double(n) / 1e9, 'f', 1));
    if (n >= 1'000'000) return QStringLiteral("%1M").arg(QLocale::c().toString(double(n) / 1e6, 'f', 0));
    return QStringLiteral("%1K").arg(QLocale::c().toString(double(n) / 1e3, 'f', 0));
}

QDockWidget* dock(const QString& title, const QString& name, QWidget* content) {
    auto* d = new QDockWidget(title);
    d->setObjectName(name);
    d->setWidget(content);
    d->setAccessibleName(title);
    return d;
}

}  // namespace

MainWindow::MainWindow(MainWindowOptions options, QWidget* parent)
    : QMainWindow(parent),
      m_options(std::move(options)),
      m_settings(m_options.settingsPath),
      m_store(dataDirOr(m_options.dataDir)),
      m_engine(new EngineClient(m_settings.optimization(), this)),
      m_tabs(new QTabWidget),
      m_banner(new SyntheticBanner),
      m_profiler(new ProfilerView),
      m_kvCache(new KvCacheView),
      m_optimizations(new OptimizationPanel),
      m_loadProgress(new LoadProgress),
      m_backendLabel(new QLabel),
      m_modelLabel(new QLabel),
      m_stateLabel(new QLabel) {
    setWindowTitle(QStringLiteral("Pagoda"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/pagoda.png")));

    m_tabs->setTabsClosable(true);
    m_tabs->setMovable(true);
    m_tabs->setDocumentMode(true);
    m_tabs->setAccessibleName(tr("Chats"));
    auto* plus = new QToolButton;
    plus->setIcon(QIcon(QStringLiteral(":/icons/new-chat.png")));
    plus->setText(QStringLiteral("+"));
    plus->setAutoRaise(true);
    plus->setToolTip(tr("New chat (Ctrl+T)"));
    plus->setAccessibleName(tr("New chat"));
    m_tabs->setCornerWidget(plus, Qt::TopRightCorner);
    connect(plus, &QToolButton::clicked, this, &MainWindow::newTab);
    connect(m_tabs, &QTabWidget::tabCloseRequested, this, &MainWindow::closeTab);
    connect(m_tabs, &QTabWidget::tabBarDoubleClicked, this, &MainWindow::askRenameTab);

    auto* central = new QWidget;
    auto* column = new QVBoxLayout(central);
    column->setContentsMargins(4, 4, 4, 0);
    column->addWidget(m_banner);
    column->addWidget(m_tabs, 1);
    setCentralWidget(central);
    m_banner->hide();
    connect(m_banner, &SyntheticBanner::openModelRequested, this, &MainWindow::askOpenModel);

    m_saveTimer.setSingleShot(true);
    m_saveTimer.setInterval(kSaveDelayMs);
    connect(&m_saveTimer, &QTimer::timeout, this, &MainWindow::saveAll);

    buildDocks();
    buildMenus();
    buildStatusBar();
    connectEngine();
    m_optimizations->setConfig(m_engine->config());
    m_profiler->setWindowSeconds(m_settings.profilerWindowSeconds());
    connect(m_profiler, &ProfilerView::windowChanged, this,
            [this](double seconds) { m_settings.setProfilerWindowSeconds(seconds); });
    connect(m_profiler, &ProfilerView::operationTimingToggled, m_engine, &EngineClient::timeOperations);
    connect(m_profiler, &ProfilerView::exportFailed, this,
            [this](const QString& message) { showError(tr("Export failed"), message); });

    resize(1280, 800);
    restoreGeometry(m_settings.windowGeometry());
    m_docksPlaced = restoreState(m_settings.windowState());
    restoreSession();
    connect(m_tabs, &QTabWidget::currentChanged, this, &MainWindow::saveSession);
    connect(m_tabs->tabBar(), &QTabBar::tabMoved, this, &MainWindow::saveSession);
    m_engine->setBackend(m_settings.backend());
    openModel(m_options.modelPath.isEmpty() ? m_settings.modelPath() : m_options.modelPath);
}

MainWindow::~MainWindow() { saveAll(); }

void MainWindow::buildDocks() {
    // Side docks run the full height; the KV cache map sits under the chats.
    setCorner(Qt::TopLeftCorner, Qt::LeftDockWidgetArea);
    setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);
    setCorner(Qt::TopRightCorner, Qt::RightDockWidgetArea);
    setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
    auto* optimizationScroll = new QScrollArea;
    optimizationScroll->setWidget(m_optimizations);
    optimizationScroll->setWidgetResizable(true);
    optimizationScroll->setFrameShape(QFrame::NoFrame);
    optimizationScroll->setMinimumWidth(m_optimizations->sizeHint().width() + 16);
    auto* optimizationDock = dock(tr("Optimizations"), QStringLiteral("optimizationDock"), optimizationScroll);
    m_profilerDock = dock(tr("Profiler"), QStringLiteral("profilerDock"), m_profiler);
    m_kvDock = dock(tr("KV cache"), QStringLiteral("kvCacheDock"), m_kvCache);
    addDockWidget(Qt::LeftDockWidgetArea, optimizationDock);
    addDockWidget(Qt::RightDockWidgetArea, m_profilerDock);
    addDockWidget(Qt::BottomDockWidgetArea, m_kvDock);
    m_viewMenu = new QMenu(tr("&View"), this);
    for (QDockWidget* d : {m_profilerDock, m_kvDock, optimizationDock}) m_viewMenu->addAction(d->toggleViewAction());
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(QIcon(QStringLiteral(":/icons/new-chat.png")), tr("&New chat"), QKeySequence(Qt::CTRL | Qt::Key_T),
                    this, &MainWindow::newTab);
    file->addAction(tr("&Close chat"), QKeySequence(Qt::CTRL | Qt::Key_W), this,
                    [this] { closeTab(m_tabs->currentIndex()); });
    file->addAction(tr("&Reopen closed chat"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_T), this,
                    &MainWindow::reopenClosedTab);
    file->addSeparator();
    file->addAction(QIcon(QStringLiteral(":/icons/open.png")), tr("&Open model…"), QKeySequence::Open, this,
                    &MainWindow::askOpenModel);
    m_recentMenu = file->addMenu(tr("Recent &models"));
    file->addAction(tr("Use the &default synthetic model"), this, [this] { openModel({}); });
    m_runOnMenu = file->addMenu(tr("Run &on"));
    m_runOnMenu->setToolTipsVisible(true);
    updateRunOnMenu();
    file->addSeparator();
    file->addAction(QIcon(QStringLiteral(":/icons/export.png")), tr("Export chat as &Markdown…"), this,
                    [this] { exportCurrent(true); });
    file->addAction(tr("Export chat as &JSON…"), this, [this] { exportCurrent(false); });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    updateRecentMenu();

    QMenu* chat = menuBar()->addMenu(tr("&Chat"));
    chat->addAction(QIcon(QStringLiteral(":/icons/stop.png")), tr("&Stop generating"),
                    QKeySequence(Qt::CTRL | Qt::Key_Period), this, [this] {
                        if (ChatTab* t = currentTab()) t->stop();
                    });
    chat->addAction(QIcon(QStringLiteral(":/icons/regenerate.png")), tr("&Regenerate reply"),
                    QKeySequence(Qt::CTRL | Qt::Key_R), this, [this] {
                        if (ChatTab* t = currentTab()) t->regenerate();
                    });
    chat->addAction(QIcon(QStringLiteral(":/icons/edit.png")), tr("&Edit last message"),
                    QKeySequence(Qt::CTRL | Qt::Key_E), this, [this] {
                        if (ChatTab* t = currentTab()) t->editLastUserMessage();
                    });
    chat->addAction(tr("Re&name chat…"), QKeySequence(Qt::Key_F2), this,
                    [this] { askRenameTab(m_tabs->currentIndex()); });
    chat->addAction(QIcon(QStringLiteral(":/icons/settings.png")), tr("Chat se&ttings"),
                    QKeySequence(Qt::CTRL | Qt::Key_Comma), this, [this] {
                        if (ChatTab* t = currentTab()) t->setSettingsVisible(true);
                    });
    chat->addAction(tr("&Focus the message box"), QKeySequence(Qt::CTRL | Qt::Key_L), this, [this] {
        if (ChatTab* t = currentTab()) t->focusInput();
    });

    menuBar()->addMenu(m_viewMenu);

    QMenu* tools = menuBar()->addMenu(tr("&Tools"));
    tools->addAction(tr("&Compare configurations…"), this, &MainWindow::openCompareView);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Pagoda"), this, [this] {
        QMessageBox::about(this, tr("About Pagoda"),
                           tr("<h3>Pagoda %1</h3><p>Chat with local LLMs and see how the inference engine "
                              "underneath spends its time and memory.</p><p>Model: %2<br>Backend: %3</p>")
                               .arg(QApplication::applicationVersion(), m_model.name.toHtmlEscaped(),
                                    m_model.backend.toHtmlEscaped()));
    });
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::buildStatusBar() {
    m_backendLabel->setAccessibleName(tr("Backend"));
    m_modelLabel->setAccessibleName(tr("Model"));
    m_stateLabel->setAccessibleName(tr("Engine state"));
    statusBar()->addWidget(m_loadProgress);
    statusBar()->addPermanentWidget(m_stateLabel);
    statusBar()->addPermanentWidget(m_modelLabel);
    statusBar()->addPermanentWidget(m_backendLabel);
    m_modelLabel->setText(tr("No model"));
    m_stateLabel->setText(tr("Starting"));
}

void MainWindow::connectEngine() {
    connect(m_engine, &EngineClient::loadStarted, this, [this](const QString& what) {
        m_loadProgress->start(what);
        m_stateLabel->setText(tr("Loading model"));
    });
    connect(m_engine, &EngineClient::loadProgress, m_loadProgress, &LoadProgress::setProgress);
    connect(m_loadProgress, &LoadProgress::cancelRequested, m_engine, &EngineClient::cancelLoad);
    connect(m_engine, &EngineClient::loadCancelled, this, [this] {
        m_loadProgress->finish();
        m_stateLabel->setText(hasModel() ? tr("Idle") : tr("No model: open one with File ▸ Open model…"));
    });
    connect(m_engine, &EngineClient::modelLoaded, this, &MainWindow::onModelLoaded);
    connect(m_engine, &EngineClient::loadFailed, this, &MainWindow::onLoadFailed);
    connect(m_engine, &EngineClient::modelUnloaded, this, &MainWindow::onModelUnloaded);
    connect(m_engine, &EngineClient::devicesListed, this, &MainWindow::onDevicesListed);
    connect(m_engine, &EngineClient::statsUpdated, this, &MainWindow::onStats);
    connect(m_optimizations, &OptimizationPanel::configRequested, m_engine, &EngineClient::reconfigure);
    const auto inForce = [this](const runtime::OptimizationConfig& config) {
        m_settings.setOptimization(config);
        if (m_compareView) m_compareView->setCurrentConfig(config);
    };
    connect(m_engine, &EngineClient::configApplied, this, [this, inForce](const runtime::OptimizationConfig& config) {
        m_optimizations->showApplied(config);
        inForce(config);
    });
    // Refused when asked, or failed when applied: `current` is in effect.
    connect(m_engine, &EngineClient::configRejected, this,
            [this, inForce](const QString& message, const runtime::OptimizationConfig& current) {
                m_optimizations->showRejected(message, current);
                inForce(current);
            });
}

CompareView* MainWindow::openCompareView() {
    if (!m_compareView) {
        m_compareView = new CompareView(this);
        m_compareView->setCurrentConfig(m_engine->config());
        m_compareView->setBackend(m_engine->backend());
        m_compareView->setDevices(m_model.cudaDevices);
        m_compareView->setModel(m_model);
    }
    m_compareView->show();
    m_compareView->raise();
    m_compareView->activateWindow();
    return m_compareView;
}

int MainWindow::tabCount() const { return m_tabs->count(); }
ChatTab* MainWindow::tab(int index) const { return qobject_cast<ChatTab*>(m_tabs->widget(index)); }
ChatTab* MainWindow::currentTab() const { return qobject_cast<ChatTab*>(m_tabs->currentWidget()); }

ChatTab* MainWindow::addTab(Conversation conversation) {
    auto* chat = new ChatTab(m_engine, std::move(conversation));
    const int index = m_tabs->addTab(chat, chat->title());
    m_tabs->setTabToolTip(index, chat->title());
    m_profiler->setConversationTitle(chat->id(), chat->title());
    connect(chat, &ChatTab::changed, this, [this, chat] { markDirty(chat->id()); });
    connect(chat, &ChatTab::titleChanged, this, [this, chat](const QString& title) {
        const int i = m_tabs->indexOf(chat);
        m_tabs->setTabText(i, QString(title).replace('&', QStringLiteral("&&")));
        m_tabs->setTabToolTip(i, title);
        m_profiler->setConversationTitle(chat->id(), title);
    });
    connect(chat, &ChatTab::generatingChanged, this, [this, chat] { updateTabIcon(chat); });
    return chat;
}

ChatTab* MainWindow::newTab() {
    ChatTab* chat = addTab(Conversation::create(tr("Chat %1").arg(m_nextChatNumber++), m_settings.newChatSettings()));
    m_tabs->setCurrentWidget(chat);
    markDirty(chat->id());
    saveSession();
    chat->focusInput();
    return chat;
}

void MainWindow::closeTab(int index) {
    ChatTab* chat = tab(index);
    if (!chat) return;
    chat->stop();
    saveAll();
    m_tabs->removeTab(index);
    if (const QString error = m_store.close(chat->id()); !error.isEmpty()) showError(tr("Cannot close the chat"), error);
    chat->deleteLater();
    if (m_tabs->count() == 0) newTab();
    saveSession();
}

void MainWindow::reopenClosedTab() {
    if (auto conversation = m_store.reopenLastClosed()) {
        m_tabs->setCurrentWidget(addTab(std::move(*conversation)));
        saveSession();
    }
}

void MainWindow::renameTab(int index, const QString& title) {
    if (ChatTab* chat = tab(index); chat && !title.trimmed().isEmpty()) chat->setTitle(title.trimmed());
}

void MainWindow::askRenameTab(int index) {
    ChatTab* chat = tab(index);
    if (!chat) return;
    bool ok = false;
    const QString title =
        QInputDialog::getText(this, tr("Rename chat"), tr("Name:"), QLineEdit::Normal, chat->title(), &ok);
    if (ok) renameTab(index, title);
}

void MainWindow::restoreSession() {
    ConversationStore::Session session = m_store.load();
    for (Conversation& conversation : session.open) addTab(std::move(conversation));
    m_nextChatNumber = m_tabs->count() + 1;
    if (m_tabs->count() == 0) {
        newTab();
    } else {
        m_tabs->setCurrentIndex(session.current);
    }
    if (!session.errors.isEmpty()) {
        showError(tr("Some chats could not be restored"), session.errors.join('\n'));
    }
}

void MainWindow::markDirty(const QString& id) {
    m_dirty.insert(id);
    m_saveTimer.start();
}

void MainWindow::saveAll() {
    m_saveTimer.stop();
    QStringList errors;
    for (int i = 0; i < m_tabs->count(); ++i) {
        ChatTab* chat = tab(i);
        if (!m_dirty.contains(chat->id())) continue;
        if (const QString error = m_store.save(chat->conversation()); !error.isEmpty()) errors << error;
    }
    m_dirty.clear();
    saveSession();
    if (!errors.isEmpty()) showError(tr("Cannot save chats"), errors.join('\n'));
}

void MainWindow::saveSession() {
    QStringList ids;
    for (int i = 0; i < m_tabs->count(); ++i) ids << tab(i)->id();
    if (const QString error = m_store.saveSession(ids, std::max(0, m_tabs->currentIndex())); !error.isEmpty()) {
        statusBar()->showMessage(error, 5000);
    }
}

void MainWindow::showError(const QString& title, const QString& message) {
    Q_EMIT errorOccurred(message);
    statusBar()->showMessage(message, 8000);
    if (!m_options.errorDialogs) return;
    auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::openModel(const QString& path) {
    m_loadingPath = path;
    m_engine->loadModel(path);
}

void MainWindow::setBackend(const BackendOptions& backend) {
    m_settings.setBackend(backend);
    m_engine->setBackend(backend);
    if (m_compareView) m_compareView->setBackend(backend);
    updateRunOnMenu();
    openModel(hasModel() ? m_settings.modelPath() : m_loadingPath);
}

void MainWindow::onDevicesListed(const CudaDeviceList& devices) {
    m_model.cudaDevices = devices;
    if (m_compareView) m_compareView->setDevices(devices);
    updateRunOnMenu();
}

void MainWindow::setGpuLayers(int layers) {
    BackendOptions backend = m_settings.backend();
    if (backend.gpuLayers == layers) return;
    backend.gpuLayers = layers;
    setBackend(backend);
}

void MainWindow::askGpuLayers() {
    const int nLayers = m_model.model ? m_model.model->config().nLayers : 0;
    QInputDialog dialog(this);
    dialog.setWindowTitle(tr("GPU layers"));
    dialog.setLabelText(tr("How many of the model's %1 layers run on the GPU (the last ones, with the output);\n"
                           "the CPU runs the others. Automatic: every layer when the model fits with room for\n"
                           "one context's KV cache (the Context set, else up to 4096 tokens), else as many as\n"
                           "fit so. 0: the CPU runs the model.")
                            .arg(nLayers > 0 ? QString::number(nLayers) : tr("(no model loaded)")));
    dialog.setInputMode(QInputDialog::IntInput);
    dialog.setIntRange(kGpuLayersThatFit, nLayers > 0 ? nLayers : 4096);
    dialog.setIntValue(m_settings.backend().gpuLayers);
    if (auto* spin = dialog.findChild<QSpinBox*>()) spin->setSpecialValueText(tr("Automatic"));
    if (dialog.exec() == QDialog::Accepted) setGpuLayers(dialog.intValue());
}

void MainWindow::askOpenModel() {
    const QString start = hasModel() ? QFileInfo(m_model.path).absolutePath() : QDir::homePath();
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Open model"), start, tr("GGUF models (*.gguf);;All files (*)"));
    if (!path.isEmpty()) openModel(path);
}

void MainWindow::onModelLoaded(const ModelInfo& info) {
    m_model = info;
    m_loadProgress->finish();
    m_settings.setModelPath(m_loadingPath);
    if (!m_loadingPath.isEmpty()) m_settings.addRecentModel(m_loadingPath);
    updateRecentMenu();
    updateRunOnMenu();
    m_banner->setVisible(info.synthetic);
    m_modelLabel->setText(tr("%1 · %2 params · %3 · %4").arg(info.name, humanCount(info.parameters), info.weightType,
                                                             humanSize(double(info.fileBytes))));
    m_modelLabel->setToolTip(tr("%1\narchitecture %2, context %3 tokens\nchat format: %4%5")
                                 .arg(info.path, info.architecture)
                                 .arg(info.contextLength)
                                 .arg(info.chatFormat, info.chatNote.isEmpty() ? QString() : " (" + info.chatNote + ")"));
    m_backendLabel->setText(info.backend);
    m_backendLabel->setToolTip(info.backendNote);
    m_optimizations->setHostKv(info.hostKv);
    m_stateLabel->setText(tr("Idle"));
    setWindowTitle(tr("Pagoda — %1").arg(info.name));
    if (m_compareView) {
        m_compareView->setModel(info);
        m_compareView->setDevices(info.cudaDevices);
    }
    Q_EMIT modelReady(info);
}

void MainWindow::onLoadFailed(const QString& message) {
    m_loadProgress->finish();
    const bool startup = !hasModel();
    if (!m_loadingPath.isEmpty()) m_settings.removeRecentModel(m_loadingPath);
    updateRecentMenu();
    QString text = tr("Could not open the model.\n\n%1").arg(message);
    if (hasModel()) {
        text += tr("\n\n%1 stays loaded.").arg(m_model.name);
    } else if (!m_loadingPath.isEmpty()) {
        text += tr("\n\nLoading the default synthetic model instead.");
    }
    m_stateLabel->setText(hasModel() ? tr("Idle") : tr("No model"));
    showError(tr("Cannot open model"), text);
    if (startup && !m_loadingPath.isEmpty()) openModel({});
}

void MainWindow::onModelUnloaded(const QString& why) {
    m_model = ModelInfo{};
    m_modelLabel->setText(tr("No model"));
    m_modelLabel->setToolTip(why);
    m_backendLabel->setText({});
    m_backendLabel->setToolTip({});
    m_banner->setVisible(false);
    setWindowTitle(QStringLiteral("Pagoda"));
    updateRunOnMenu();
    if (m_compareView) m_compareView->setModel(m_model);
    statusBar()->showMessage(why, 8000);
}

void MainWindow::onStats(const StatsUpdate& update) {
    m_profiler->addStats(update);
    const runtime::StatsSnapshot& s = update.snapshot;
    // The block map names each sequence after its chat tab.
    QHash<QString, QString> titles;
    for (int i = 0; i < m_tabs->count(); ++i) {
        if (const ChatTab* t = tab(i)) titles.insert(t->id(), t->title());
    }
    QHash<qint64, QString> owners;
    for (auto it = update.conversationBySequence.cbegin(); it != update.conversationBySequence.cend(); ++it) {
        owners.insert(it.key(), titles.value(it.value()));
    }
    m_kvCache->blockMap()->setOwnerNames(std::move(owners));
    m_kvCache->setStats(s);
    if (m_engine->loading()) return;
    if (s.running == 0 && s.waiting == 0) {
        m_stateLabel->setText(tr("Idle"));
    } else {
        m_stateLabel->setText(tr("Generating · %1 running · %2 waiting · %3 tok/s")
                                  .arg(s.running)
                                  .arg(s.waiting)
                                  .arg(QLocale::c().toString(s.generatedTokensPerSecond, 'f', 1)));
    }
}

void MainWindow::updateRecentMenu() {
    m_recentMenu->clear();
    const QStringList recent = m_settings.recentModels();
    for (const QString& path : recent) {
        QAction* action = m_recentMenu->addAction(QFileInfo(path).fileName(), this, [this, path] { openModel(path); });
        action->setToolTip(path);
        action->setStatusTip(path);
    }
    if (recent.isEmpty()) m_recentMenu->addAction(tr("(none yet)"))->setEnabled(false);
}

void MainWindow::updateRunOnMenu() {
    m_runOnMenu->clear();
    delete m_runOnGroup;
    m_runOnGroup = new QActionGroup(this);
    const auto add = [&](const QString& text, BackendChoice choice, int device, bool enabled, const QString& tip) {
        BackendOptions item = m_settings.backend();
        item.choice = choice;
        item.cudaDevice = device;
        QAction* action = m_runOnMenu->addAction(text);
        action->setCheckable(true);
        action->setEnabled(enabled);
        action->setChecked(sameBackendChoice(m_settings.backend(), item));
        action->setToolTip(tip);
        action->setStatusTip(tip);
        m_runOnGroup->addAction(action);
        connect(action, &QAction::triggered, this, [this, item] {
            if (!sameBackendChoice(m_settings.backend(), item)) setBackend(item);
        });
    };
    add(tr("&Automatic: the first usable GPU, else the CPU"), BackendChoice::Auto, kFirstUsableCudaDevice, true,
        tr("A GPU when the CUDA module, a driver and a usable device are present and the model fits"));
    add(tr("&CPU"), BackendChoice::Cpu, kFirstUsableCudaDevice, true, tr("The CPU backend, whatever GPUs there are"));
    m_runOnMenu->addSeparator();
    const CudaDeviceList& cuda = m_model.cudaDevices;
    if (cuda.devices.empty() && cuda.reason.empty()) {
        m_runOnMenu->addAction(tr("GPUs are listed once a model is loaded, or refreshed"))->setEnabled(false);
    } else if (cuda.devices.empty()) {
        QAction* none = m_runOnMenu->addAction(tr("No GPU: %1").arg(QString::fromStdString(cuda.reason)));
        none->setEnabled(false);
    }
    for (const PagodaCudaProbe& device : cuda.devices) {
        const QString text = device.available
                                 ? tr("GPU &%1: %2").arg(device.deviceIndex).arg(QString::fromStdString(describeCudaDevice(device)))
                                 : tr("GPU %1: unusable: %2").arg(device.deviceIndex).arg(QString::fromStdString(device.reason));
        add(text, BackendChoice::Auto, device.deviceIndex, device.available != 0,
            tr("Falls back to the CPU, saying why, when the model does not fit"));
    }
    QAction* refresh = m_runOnMenu->addAction(tr("&Refresh the GPU list"), m_engine, &EngineClient::refreshDevices);
    const QString refreshTip = tr("Lists the GPUs again, as the next load would (one added or changed since the last load)");
    refresh->setToolTip(refreshTip);
    refresh->setStatusTip(refreshTip);
    m_runOnMenu->addSeparator();
    const int gpuLayers = m_settings.backend().gpuLayers;
    QAction* layers = m_runOnMenu->addAction(
        gpuLayers == kGpuLayersThatFit ? tr("GPU &layers: automatic…") : tr("GPU &layers: %1…").arg(gpuLayers), this,
        [this] { askGpuLayers(); });
    const QString layersTip = tr("How many of the model's layers run on the GPU, the rest on the CPU");
    layers->setToolTip(layersTip);
    layers->setStatusTip(layersTip);
    QAction* copy = m_runOnMenu->addAction(tr("&Copy the weights into memory (CPU)"));
    copy->setCheckable(true);
    copy->setChecked(m_settings.backend().copyWeightsToMemory);
    connect(copy, &QAction::toggled, this, [this](bool on) {
        BackendOptions backend = m_settings.backend();
        backend.copyWeightsToMemory = on;
        setBackend(backend);
    });
    const QString copyTip = tr("Where the CPU runs layers, it reads the weights from a copy in memory (faster to "
                               "decode, more memory while loading) rather than from the file mapping; reloads the "
                               "model");
    copy->setToolTip(copyTip);
    copy->setStatusTip(copyTip);
}

void MainWindow::updateTabIcon(ChatTab* chat) {
    const int index = m_tabs->indexOf(chat);
    if (index < 0) return;
    m_tabs->setTabIcon(index, chat->isGenerating() ? QIcon(QStringLiteral(":/icons/generating.png")) : QIcon());
}

void MainWindow::exportCurrent(bool markdown) {
    ChatTab* chat = currentTab();
    if (!chat) return;
    const QString suffix = markdown ? QStringLiteral("md") : QStringLiteral("json");
    QString name = chat->title();
    name.replace(QRegularExpression(QStringLiteral("[^\\w\\- ]")), QStringLiteral("_"));
    const QString path = QFileDialog::getSaveFileName(
        this, markdown ? tr("Export as Markdown") : tr("Export as JSON"), QDir::home().filePath(name + '.' + suffix),
        markdown ? tr("Markdown (*.md)") : tr("JSON (*.json)"));
    if (path.isEmpty()) return;
    const QByteArray bytes = markdown ? chat->conversation().toMarkdown().toUtf8()
                                      : QJsonDocument(chat->conversation().toJson()).toJson(QJsonDocument::Indented);
    if (const QString error = writeFileAtomically(path, bytes); !error.isEmpty()) showError(tr("Export failed"), error);
}

void MainWindow::showEvent(QShowEvent* event) {
    QMainWindow::showEvent(event);
    if (m_docksPlaced) return;
    m_docksPlaced = true;
    // Docks get their share once the window has its final size.
    QTimer::singleShot(0, this, [this] {
        resizeDocks({m_profilerDock}, {std::max(m_profiler->sizeHint().width(), width() * 2 / 5)}, Qt::Horizontal);
        resizeDocks({m_kvDock}, {std::max(m_kvCache->sizeHint().height(), height() / 4)}, Qt::Vertical);
    });
}

void MainWindow::closeEvent(QCloseEvent* event) {
    saveAll();
    m_settings.setWindow(saveGeometry(), saveState());
    QMainWindow::closeEvent(event);
}

}  // namespace pagoda::ui

// The app end to end, offscreen, on a tiny synthetic model: concurrent tabs,
// stop, regenerate with prefix reuse, live reconfiguration, persistence,
// plots, a corrupt model file, and the choice of backend.

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QMenu>
#include <QPushButton>
#include <QScopeGuard>
#include <QFile>
#include <QLabel>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <QThread>

#include <algorithm>
#include <memory>

#include "engine/model/synthetic.h"
#include "ui/app_settings.h"
#include "ui/block_map_widget.h"
#include "ui/chat_tab.h"
#include "ui/compare_view.h"
#include "ui/engine_client.h"
#include "ui/kv_cache_view.h"
#include "ui/main_window.h"
#include "ui/optimization_panel.h"
#include "ui/operation_times_view.h"
#include "ui/profiler_view.h"
#include "ui/qcustomplot_include.h"

using namespace pagoda;
using namespace pagoda::ui;

namespace {

constexpr int kTimeoutMs = 10000;

// A backend note without what copyWeightsForTheCpu adds where the CPU runs
// layers ("; the cpu reads the weights from memory (…)").
QString noteBeforeWeights(const QString& note) {
    return note.left(note.indexOf(QStringLiteral("; the cpu reads the weights")));
}

ChatSettings testSettings(int maxNewTokens) {
    ChatSettings s;
    s.systemPrompt = QStringLiteral("You are a helpful assistant who answers every question in detail.");
    s.maxNewTokens = maxNewTokens;
    s.ignoreEos = true;
    return s;
}

const Message& lastMessage(const ChatTab* tab) { return tab->conversation().messages.back(); }

// The parts of DeepSeek-R1's and Qwen 3's chat templates that say what they
// do with reasoning (tests/chat has them whole).
constexpr const char* kDeepSeekR1Template =
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}"
    "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";
constexpr const char* kQwen3Template =
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and "
    "enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

QCheckBox* checkBox(QWidget* parent, const QString& accessibleName) {
    for (QCheckBox* box : parent->findChildren<QCheckBox*>()) {
        if (box->accessibleName() == accessibleName) return box;
    }
    return nullptr;
}

}  // namespace

class MainWindowTest : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_dir;
    QString m_modelPath;
    int m_windows = 0;
    runtime::StatsSnapshot m_last;  // the latest snapshot the current window received

    QString dataDir(int n) const { return m_dir.filePath(QStringLiteral("data%1").arg(n)); }

    // Small F32 pool by default: 512 blocks of the tiny model.
    std::unique_ptr<MainWindow> makeWindow(
        const QString& dataDir,
        const QString& optimization = QStringLiteral("optimized:kv-budget-mib=4:kv-type=f32:max-batch-tokens=128")) {
        const QString settingsPath = dataDir + QStringLiteral("/settings.ini");
        {
            QSettings settings(settingsPath, QSettings::IniFormat);
            settings.setValue("engine/optimization", optimization);
        }
        MainWindowOptions options;
        options.dataDir = dataDir;
        options.settingsPath = settingsPath;
        options.modelPath = m_modelPath;
        options.errorDialogs = false;
        auto window = std::make_unique<MainWindow>(options);
        connect(window->engine(), &EngineClient::statsUpdated, this,
                [this](const StatsUpdate& update) { m_last = update.snapshot; });
        window->show();
        return window;
    }

    static bool waitForModel(MainWindow& window) {
        return QTest::qWaitFor([&] { return window.hasModel(); }, kTimeoutMs);
    }

#ifdef PAGODA_TEST_FAKE_GPUS_MODULE
    // The fake module's GPUs while it lives, the usable one of 260 MiB. It
    // counts what each model holds: the tiny model's weights (f32, about
    // 0.5 MiB) with the upload's 256 MiB of headroom, then its 4 MiB KV
    // pool, fit once, not twice.
    struct FakeGpu {
        FakeGpu() {
            qputenv("PAGODA_CUDA_MODULE", PAGODA_TEST_FAKE_GPUS_MODULE);
            qputenv("PAGODA_FAKE_DEVICE_MIB", "260");
        }
        ~FakeGpu() {
            qunsetenv("PAGODA_CUDA_MODULE");
            qunsetenv("PAGODA_FAKE_DEVICE_MIB");
        }
    };

    // A window whose model runs on the fake GPU (in f16 KV, the CUDA
    // backend's); null, with the reason logged, when it does not.
    std::unique_ptr<MainWindow> windowOnTheFakeGpu() {
        auto window = makeWindow(dataDir(++m_windows), QStringLiteral("optimized:kv-budget-mib=4:max-batch-tokens=128"));
        if (!waitForModel(*window)) return nullptr;
        if (window->model().backendNote.endsWith(QStringLiteral("; using cuda"))) return window;
        qWarning("not on the fake GPU: %s", qPrintable(window->model().backendNote));
        return nullptr;
    }

    // The window's comparison, set to one short request under a 1 MiB KV
    // budget on both sides (the fake GPU runs nothing: the warm-up fails).
    static CompareView* openSmallComparison(MainWindow& window) {
        CompareView* view = window.openCompareView();
        runtime::Workload w;
        w.requests = 1;
        w.promptLength = 8;
        w.genLength = 2;
        w.concurrency = 1;
        view->setWorkload(w);
        for (int side = 0; side < 2; ++side) view->setConfigText(side, QStringLiteral("optimized:kv-budget-mib=1"));
        return view;
    }
#endif

    // The window's Run on item whose text starts with `prefix`; null when none does.
    static QAction* runOnItem(const MainWindow& window, const QString& prefix) {
        for (QAction* action : window.runOnMenu()->actions()) {
            if (action->text().startsWith(prefix)) return action;
        }
        return nullptr;
    }
    static QString runOnText(const MainWindow& window, const QString& prefix) {
        const QAction* item = runOnItem(window, prefix);
        return item != nullptr ? item->text() : QString();
    }

    // A copy of the test model, `name`, to load next; empty on failure.
    QString copyOfTheModel(const QString& name) const {
        const QString path = m_dir.filePath(name);
        QFile::remove(path);
        return QFile::copy(m_modelPath, path) ? path : QString();
    }
    static bool waitForReply(ChatTab* tab) {
        return QTest::qWaitFor([&] { return !tab->isGenerating() && lastMessage(tab).stats.has_value(); }, kTimeoutMs);
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        m_modelPath = m_dir.filePath("tiny.gguf");
        SyntheticSpec spec = *syntheticPreset("tiny");
        spec.contextLength = 1024;
        auto written = writeSyntheticModel(spec, m_modelPath.toStdString());
        QVERIFY2(written.has_value(), written ? "" : written.error().message.c_str());
    }

    void twoTabsStreamConcurrently() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* a = window->tab(0);
        ChatTab* b = window->newTab();
        QCOMPARE(window->tabCount(), 2);
        a->setSettings(testSettings(48));
        b->setSettings(testSettings(48));
        a->send(QStringLiteral("Tell me about pagodas."));
        b->send(QStringLiteral("Tell me about KV caches."));
        QVERIFY(a->isGenerating());
        QVERIFY(b->isGenerating());
        QVERIFY(waitForReply(a));
        QVERIFY(waitForReply(b));
        QCOMPARE(lastMessage(a).stats->generatedTokens, 48);
        QCOMPARE(lastMessage(b).stats->generatedTokens, 48);
        QCOMPARE(lastMessage(a).stats->finishReason, QStringLiteral("length"));
        QVERIFY(!lastMessage(a).text.isEmpty());
        QVERIFY(!lastMessage(b).text.isEmpty());
        QVERIFY(a->transcriptMarkdown().contains(lastMessage(a).text.left(8)));
        // Both were in the engine's running batch at once.
        QVERIFY(QTest::qWaitFor([&] { return m_last.counters.requestsFinished[size_t(runtime::FinishReason::Length)] >= 2; },
                                kTimeoutMs));
        QVERIFY2(m_last.counters.peakRunning >= 2, qPrintable(QString::number(m_last.counters.peakRunning)));
    }

    // The stats line under a finished reply wraps: the tab asks for little
    // more width than before it (a word's). Unwrapped, the line made the
    // tab 140 pixels wider here (468 -> 608 offscreen), and in the app it
    // squeezed the docks beside the chat.
    void finishedReplysStatusDoesNotWidenTheTab() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        QLabel* status = nullptr;
        for (QLabel* label : tab->findChildren<QLabel*>()) {
            if (label->accessibleName() == QStringLiteral("Generation status")) status = label;
        }
        QVERIFY(status != nullptr);
        const int before = tab->minimumSizeHint().width();
        tab->setSettings(testSettings(4));
        tab->send(QStringLiteral("How wide is this?"));
        QVERIFY(waitForReply(tab));
        const int textWidth = status->fontMetrics().horizontalAdvance(status->text());
        QVERIFY2(textWidth > 200, qPrintable(status->text()));
        const int after = tab->minimumSizeHint().width();
        QVERIFY2(after < before + textWidth / 4,
                 qPrintable(QStringLiteral("%1 -> %2 px for \"%3\"").arg(before).arg(after).arg(status->text())));
    }

    void messageSentWhileLoadingWaitsForTheModel() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(!window->hasModel());
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(4));
        tab->send(QStringLiteral("Are you there yet?"));
        QVERIFY(waitForReply(tab));
        QVERIFY(window->hasModel());
        QCOMPARE(lastMessage(tab).stats->generatedTokens, 4);
    }

    void stopEndsGenerationAtOnce() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(8192));
        tab->send(QStringLiteral("Go on forever."));
        QVERIFY(QTest::qWaitFor([&] { return !lastMessage(tab).text.isEmpty(); }, kTimeoutMs));
        tab->stop();
        QVERIFY(!tab->isGenerating());
        const QString shown = lastMessage(tab).text;
        QVERIFY(QTest::qWaitFor([&] { return lastMessage(tab).stats.has_value(); }, kTimeoutMs));
        QCOMPARE(lastMessage(tab).stats->finishReason, QStringLiteral("cancelled"));
        QVERIFY(lastMessage(tab).stats->generatedTokens < 8192);
        QCOMPARE(lastMessage(tab).text, shown);  // nothing was added after Stop
        QVERIFY(QTest::qWaitFor([&] { return m_last.running == 0 && m_last.waiting == 0; }, kTimeoutMs));
    }

    void regenerateReusesCachedPrompt() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(8));
        tab->send(QStringLiteral("Summarize the history of paged attention in detail."));
        QVERIFY(waitForReply(tab));
        const MessageStats first = *lastMessage(tab).stats;
        QVERIFY(first.promptTokens > 32);
        tab->regenerate();
        QVERIFY(tab->isGenerating());
        QCOMPARE(tab->conversation().messages.size(), 2);
        QVERIFY(waitForReply(tab));
        const MessageStats second = *lastMessage(tab).stats;
        QCOMPARE(second.promptTokens, first.promptTokens);
        QVERIFY2(second.reusedTokens > 0, qPrintable(formatStats(second)));
    }

    void editAndResendReplacesTheTurn() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(4));
        tab->send(QStringLiteral("first version"));
        QVERIFY(waitForReply(tab));
        tab->editLastUserMessage();
        QVERIFY(tab->conversation().messages.isEmpty());
        tab->send(QStringLiteral("second version"));
        QVERIFY(waitForReply(tab));
        QCOMPARE(tab->conversation().messages.size(), 2);
        QCOMPARE(tab->conversation().messages[0].text, QStringLiteral("second version"));
    }

    void kvViewShowsLocalLayerPools() {
        KvCacheView view;
        runtime::StatsSnapshot s;
        s.kv.blocks.blocksTotal = 600;
        view.setStats(s);
        QVERIFY(!view.summary().contains(QStringLiteral("local layers")));
        s.kv.localLayers = 5;
        s.kv.localBlocks.blocksTotal = 28;
        s.kv.localBlocks.blocksUsed = 9;
        s.kv.localBlocks.blocksCached = 4;
        s.kv.localBlocks.blocksFree = 15;
        view.setStats(s);
        QVERIFY2(view.summary().contains(QStringLiteral("5 local layers: 28 blocks each (windows), used 9, cached 4, "
                                                        "free 15")),
                 qPrintable(view.summary()));
    }

    void toggleReachesEngine() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        QVERIFY(QTest::qWaitFor([&] { return !window->profiler()->history().empty(); }, kTimeoutMs));
        QVERIFY(m_last.config.prefixCaching);
        window->optimizationPanel()->prefixCache()->setChecked(false);
        QVERIFY(QTest::qWaitFor([&] { return !m_last.config.prefixCaching; }, kTimeoutMs));
        window->optimizationPanel()->flashAttention()->setChecked(false);
        QVERIFY(QTest::qWaitFor([&] { return m_last.config.attention == cpu::AttentionAlgorithm::Naive; }, kTimeoutMs));
        QVERIFY(m_last.config.decodeGraphs);
        window->optimizationPanel()->decodeGraphs()->setChecked(false);
        QVERIFY(QTest::qWaitFor([&] { return !m_last.config.decodeGraphs; }, kTimeoutMs));
        QCOMPARE(m_last.config.int8Matmul, Int8Matmul::Cpu);
        QComboBox* int8 = window->optimizationPanel()->int8Matmul();
        int8->setCurrentIndex(int8->findData(int(Int8Matmul::Off)));
        QVERIFY(QTest::qWaitFor([&] { return m_last.config.int8Matmul == Int8Matmul::Off; }, kTimeoutMs));
        QVERIFY(m_last.config.localKvPools);
        window->optimizationPanel()->localKvPools()->setChecked(false);
        QVERIFY(QTest::qWaitFor([&] { return !m_last.config.localKvPools; }, kTimeoutMs));
        // The CPU backend has no device: the memory plot stays the host's.
        QVERIFY(!m_last.memory.device);
        QCOMPARE(window->profiler()->plot(PlotKind::Memory)->accessibleName(), QStringLiteral("Host memory (CPU backend)"));
        // Every plot marks where the configuration changed.
        QVERIFY(QTest::qWaitFor([&] { return window->profiler()->history().changes().size() >= 2; }, kTimeoutMs));
        QCOMPARE(window->profiler()->history().changes().front().label, QStringLiteral("prefix off"));
        QVERIFY(window->profiler()->plot(PlotKind::Memory)->itemCount() >= 2);
    }

    // The profiler's time by operation: switched on, a reply's steps are
    // timed and tabled by operation; switched off, the table stays, marked
    // stopped; the chat's output is the same either way.
    void profilerTimesEachOperation() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        OperationTimesView* ops = window->profiler()->operations();
        QVERIFY(!ops->isTiming());
        QVERIFY(ops->table()->isHidden());
        ChatTab* tab = window->tab(0);
        ChatSettings greedy = testSettings(6);
        greedy.sampling.temperature = 0;
        tab->setSettings(greedy);
        tab->send(QStringLiteral("Untimed, please."));
        QVERIFY(waitForReply(tab));
        const QString untimed = lastMessage(tab).text;

        ops->setTiming(true);
        QVERIFY(QTest::qWaitFor([&] { return m_last.operations.on; }, kTimeoutMs));
        tab->regenerate();
        QVERIFY(waitForReply(tab));
        QCOMPARE(lastMessage(tab).text, untimed);
        QVERIFY(QTest::qWaitFor([&] { return m_last.operations.steps >= 6; }, kTimeoutMs));
        QVERIFY(QTest::qWaitFor([&] { return ops->table()->rowCount() > 0; }, kTimeoutMs));
        QVERIFY(!ops->table()->isHidden());
        QStringList names;
        for (int row = 0; row < ops->table()->rowCount(); ++row) {
            names << ops->table()->item(row, OperationTimesView::ColOperation)->text();
        }
        QVERIFY2(names.contains(QStringLiteral("matmul_swiglu")) && names.contains(QStringLiteral("attention")),
                 qPrintable(names.join(", ")));
        QVERIFY2(ops->summary().contains(QStringLiteral(" ms per step")), qPrintable(ops->summary()));

        ops->setTiming(false);
        QVERIFY(QTest::qWaitFor([&] { return ops->summary().contains(QStringLiteral("(stopped)")); }, kTimeoutMs));
        QVERIFY(ops->table()->rowCount() > 0);
    }

    // The budget box goes from the saved 4 MiB to auto (0): the engine sizes
    // the pool itself, and the KV cache view says how.
    void kvBudgetAutoSizesThePool() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        QSpinBox* budget = window->optimizationPanel()->kvBudget();
        QCOMPARE(budget->value(), 4);
        QVERIFY(QTest::qWaitFor([&] { return window->kvCache()->summary().contains("KV budget set: 4.00 MiB"); },
                                kTimeoutMs));
        budget->setValue(0);
        QCOMPARE(budget->text(), QStringLiteral("auto"));
        QVERIFY(QTest::qWaitFor([&] { return m_last.config.kvBudgetBytes == runtime::kAutoKvBudget; }, kTimeoutMs));
        // tiny, f32: 2 (K, V) x 2 layers x 2 KV heads x 16 dims x 4 bytes per token, 4 x 1024 tokens
        QCOMPARE(m_last.memory.kvPoolBytes, uint64_t(4 * 1024) * 512);
        QVERIFY(QTest::qWaitFor(
            [&] { return window->kvCache()->summary().contains("KV budget auto: 4 contexts of 1024 tokens, 2.00 MiB"); },
            kTimeoutMs));
        QVERIFY(QTest::qWaitFor([&] { return window->profiler()->history().changes().size() >= 1; }, kTimeoutMs));
        QCOMPARE(window->profiler()->history().changes().back().label, QStringLiteral("KV auto"));
    }

    // The context box caps each conversation: the engine's limit, the
    // automatic pool and the KV cache view follow it; the presets keep it,
    // and it is saved.
    // Settings saved before the automatic KV budget hold its fixed default of
    // then (256 MiB) as though chosen: they read as automatic. Saved since,
    // a budget of 256 MiB is a choice and stays.
    void oldSettingsTakeTheAutomaticKvBudget() {
        const QString path = m_dir.filePath(QStringLiteral("old-settings.ini"));
        {
            QSettings old(path, QSettings::IniFormat);
            old.setValue("engine/optimization", "optimized:kv-budget-mib=256:kv-type=f32");
            old.setValue("engine/otherKey", 1);
        }
        AppSettings settings(path);
        runtime::OptimizationConfig config = settings.optimization();
        QCOMPARE(config.kvBudgetBytes, runtime::kAutoKvBudget);
        QCOMPARE(config.kvType, DType::F32);  // the rest as saved
        config.kvBudgetBytes = AppSettings::kFormerDefaultKvBudget;
        settings.setOptimization(config);
        QCOMPARE(settings.optimization().kvBudgetBytes, AppSettings::kFormerDefaultKvBudget);
        QCOMPARE(AppSettings(path).optimization().kvBudgetBytes, AppSettings::kFormerDefaultKvBudget);
    }

    // Int8 matmul was off in every config until it was made the CPU's
    // default (settings version 3): such a saved off reads as cpu, and on
    // stays on. Saved since, off is a choice and stays.
    void oldSettingsTakeTheCpusInt8Matmul() {
        const QString path = m_dir.filePath(QStringLiteral("version2-settings.ini"));
        for (const auto& [saved, read] : {std::pair{"off", Int8Matmul::Cpu}, std::pair{"on", Int8Matmul::On}}) {
            {
                QSettings old(path, QSettings::IniFormat);
                old.setValue("engine/optimization", QStringLiteral("optimized:int8-matmul=%1:kv-type=f32").arg(saved));
                old.setValue(AppSettings::kOptimizationVersionKey, 2);
            }
            QCOMPARE(AppSettings(path).optimization().int8Matmul, read);
            QCOMPARE(AppSettings(path).optimization().kvType, DType::F32);  // the rest as saved
        }
        AppSettings settings(path);
        runtime::OptimizationConfig config = settings.optimization();
        config.int8Matmul = Int8Matmul::Off;
        settings.setOptimization(config);
        QCOMPARE(AppSettings(path).optimization().int8Matmul, Int8Matmul::Off);
    }

    void contextSetCapsEachConversation() {
        const QString dir = dataDir(++m_windows);
        auto window = makeWindow(dir);
        QVERIFY(waitForModel(*window));
        OptimizationPanel* panel = window->optimizationPanel();
        QCOMPARE(panel->context()->text(), QStringLiteral("model's"));
        QVERIFY(QTest::qWaitFor([&] { return window->kvCache()->summary().contains("context 1024 tokens"); },
                                kTimeoutMs));
        panel->kvBudget()->setValue(0);
        panel->context()->setValue(256);
        QVERIFY(QTest::qWaitFor([&] { return m_last.config.contextLength == 256; }, kTimeoutMs));
        QCOMPARE(m_last.contextLimit, 256);
        // tiny, f32: 512 bytes per token, 4 x 256 tokens
        QCOMPARE(m_last.memory.kvPoolBytes, uint64_t(4 * 256) * 512);
        QVERIFY(QTest::qWaitFor(
            [&] {
                const QString summary = window->kvCache()->summary();
                return summary.contains("KV budget auto: 4 contexts of 256 tokens") &&
                       summary.contains("context 256 tokens");
            },
            kTimeoutMs));
        QPushButton* baseline = nullptr;
        for (QPushButton* button : panel->findChildren<QPushButton*>()) {
            if (button->text() == QStringLiteral("&Baseline")) baseline = button;
        }
        QVERIFY(baseline != nullptr);
        baseline->click();
        QVERIFY(QTest::qWaitFor([&] { return m_last.config.kvAllocation == KvAllocation::Contiguous; }, kTimeoutMs));
        QCOMPARE(m_last.config.contextLength, 256);
        QCOMPARE(m_last.contextLimit, 256);
        const QString saved = QSettings(dir + "/settings.ini", QSettings::IniFormat).value("engine/optimization").toString();
        QVERIFY2(saved.contains(":context=256"), qPrintable(saved));
    }

    // Run on ▸ Copy the weights into memory, switched off: the model loads
    // again and the CPU reads it from the file mapping; the choice is saved.
    // A reply's <think> block folds under a link in the transcript.
    void reasoningFoldsUnderALink() {
        auto window = makeWindow(dataDir(++m_windows));
        Conversation c = Conversation::create(QStringLiteral("sums"), {});
        c.messages.push_back({Role::User, QStringLiteral("2 + 2?"), QDateTime::currentDateTime(), {}, {}});
        c.messages.push_back({Role::Assistant, QStringLiteral("<think>\nAdd two and two.\n</think>\n\nIt is 4."),
                              QDateTime::currentDateTime(), {}, {}});
        ChatTab tab(window->engine(), c);
        const QString folded = tab.transcriptMarkdown();
        QVERIFY2(folded.contains(QStringLiteral("[▸ Show reasoning (4 words)](pagoda-reasoning:1)\n\nIt is 4.")),
                 qPrintable(folded));
        QVERIFY(!folded.contains(QStringLiteral("Add two")));
        QVERIFY(!folded.contains(QStringLiteral("think>")));
        // The link, clicked, shows it as a quote; clicked again, folds it.
        auto* transcript = tab.findChild<QTextBrowser*>();
        QVERIFY(transcript != nullptr);
        Q_EMIT transcript->anchorClicked(QUrl(QStringLiteral("pagoda-reasoning:1")));
        QVERIFY2(tab.transcriptMarkdown().contains(
                     QStringLiteral("[▾ Hide reasoning](pagoda-reasoning:1)\n\n> Add two and two.\n\nIt is 4.")),
                 qPrintable(tab.transcriptMarkdown()));
        Q_EMIT transcript->anchorClicked(QUrl(QStringLiteral("pagoda-reasoning:1")));
        QCOMPARE(tab.transcriptMarkdown(), folded);
    }

    // The time a reply spends in its <think> block is kept with it and shown
    // on its link. The reply's text arrives here as the engine would send
    // it, the UI thread sleeping between (no event is handled, so the turn
    // is still the tab's to stream, whatever the worker does meanwhile).
    void reasoningTimeIsKept() {
        auto window = makeWindow(dataDir(++m_windows));
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(4));
        tab->send(QStringLiteral("Hi"));
        QVERIFY(tab->isGenerating());
        Q_EMIT window->engine()->textReady(tab->ticket(), QStringLiteral("<think>\nGreet them back."));
        QThread::msleep(120);
        QVERIFY(!lastMessage(tab).thinkingSeconds);
        // The closing tag split between two pieces of text, as tokens may split it.
        Q_EMIT window->engine()->textReady(tab->ticket(), QStringLiteral("\n</thi"));
        QVERIFY(!lastMessage(tab).thinkingSeconds);
        Q_EMIT window->engine()->textReady(tab->ticket(), QStringLiteral("nk>\n\nHello!"));
        const std::optional<double> seconds = lastMessage(tab).thinkingSeconds;
        QVERIFY(seconds.has_value());
        QVERIFY2(*seconds >= 0.1 && *seconds < 60, qPrintable(QString::number(*seconds)));
        QVERIFY2(tab->transcriptMarkdown().contains(
                     QStringLiteral("[▸ Show reasoning (3 words, %1 s)]").arg(*seconds, 0, 'f', 1)),
                 qPrintable(tab->transcriptMarkdown()));
    }

    // DeepSeek-R1's prompt opens the <think> block: the reply shows with it,
    // and the Think box stays off for want of a switch. Qwen 3's template has
    // one: thinking off, the prompt closes an empty block before the reply.
    void reasoningModelsOpenTheBlockOrSwitchItOff() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        QCheckBox* think = checkBox(tab, QStringLiteral("Think before answering"));
        QVERIFY(think != nullptr);
        QVERIFY(!think->isEnabled());
        const auto load = [&](const QString& name, const char* chatTemplate) {
            SyntheticSpec spec = *syntheticPreset("tiny");
            spec.chatTemplate = chatTemplate;
            const QString path = m_dir.filePath(name);
            if (!writeSyntheticModel(spec, path.toStdString())) return false;
            QSignalSpy ready(window.get(), &MainWindow::modelReady);
            window->openModel(path);
            return ready.wait(kTimeoutMs);
        };
        QVERIFY(load(QStringLiteral("r1.gguf"), kDeepSeekR1Template));
        QCOMPARE(window->model().chatFormat, QStringLiteral("deepseek"));
        QVERIFY(!think->isEnabled());
        tab->setSettings(testSettings(4));
        tab->send(QStringLiteral("Why is the sky blue?"));
        QVERIFY(waitForReply(tab));
        QVERIFY2(lastMessage(tab).text.startsWith(QStringLiteral("<think>\n")), qPrintable(lastMessage(tab).text));
        // Four random tokens do not close it: all of the reply is reasoning, cut off.
        QVERIFY2(tab->transcriptMarkdown().contains(QStringLiteral("[▸ Show reasoning, cut off (")),
                 qPrintable(tab->transcriptMarkdown()));

        QVERIFY(load(QStringLiteral("qwen3-template.gguf"), kQwen3Template));
        QVERIFY(think->isEnabled());
        QSignalSpy accepted(window->engine(), &EngineClient::accepted);
        const auto promptTokens = [&](bool thinking) {
            ChatSettings settings = testSettings(2);
            settings.thinking = thinking;
            ChatTab* t = window->newTab();
            t->setSettings(settings);
            t->send(QStringLiteral("Hi"));
            return accepted.wait(kTimeoutMs) ? accepted.takeLast().at(1).toInt() : -1;
        };
        const int on = promptTokens(true);
        const int off = promptTokens(false);
        QVERIFY(on > 0);
        QVERIFY2(off > on, qPrintable(QStringLiteral("%1 tokens on, %2 off").arg(on).arg(off)));
    }

    void copyWeightsSwitchedOffKeepsTheMapping() {
        const QString dir = dataDir(++m_windows);
        auto window = makeWindow(dir);
        QVERIFY(waitForModel(*window));
        QAction* copy = runOnItem(*window, QStringLiteral("&Copy the weights into memory"));
        QVERIFY(copy != nullptr);
        QVERIFY(copy->isChecked());
        QVERIFY2(window->model().backendNote.contains(QStringLiteral("; the cpu reads the weights from memory (")),
                 qPrintable(window->model().backendNote));
        QSignalSpy ready(window.get(), &MainWindow::modelReady);
        copy->setChecked(false);
        QVERIFY(ready.wait(kTimeoutMs));
        QVERIFY2(window->model().backendNote.endsWith(
                     QStringLiteral("; the cpu reads the weights from the file mapping (as asked)")),
                 qPrintable(window->model().backendNote));
        QVERIFY(!runOnItem(*window, QStringLiteral("&Copy the weights into memory"))->isChecked());
        QCOMPARE(QSettings(dir + "/settings.ini", QSettings::IniFormat).value("engine/copyWeights").toBool(), false);
    }

    // A config valid when asked whose cache cannot be made when the engine
    // applies it (here: host memory for the automatic budget, capped by
    // PAGODA_KV_MEMORY_MIB, holds less than one contiguous sequence) comes
    // back as not applied: the panel shows the config in effect and why,
    // and that config is the one saved.
    void configThatFailsWhenAppliedIsReported() {
        qputenv("PAGODA_KV_MEMORY_MIB", "1");
        const auto restore = qScopeGuard([] { qunsetenv("PAGODA_KV_MEMORY_MIB"); });
        const QString dir = dataDir(++m_windows);
        auto window = makeWindow(dir);
        QVERIFY(waitForModel(*window));
        OptimizationPanel* panel = window->optimizationPanel();
        panel->kvBudget()->setValue(0);  // paged: 1 MiB holds part of a context, which is enough
        QVERIFY(QTest::qWaitFor([&] { return m_last.config.kvBudgetBytes == runtime::kAutoKvBudget; }, kTimeoutMs));
        QVERIFY(QTest::qWaitFor([&] { return m_last.kv.budget.find("what memory allows") != std::string::npos; },
                                kTimeoutMs));
        QVERIFY(m_last.contextLimit < 1024);
        panel->pagedKv()->setChecked(false);  // contiguous: one whole context or nothing
        QLabel* status = panel->status();
        QVERIFY(QTest::qWaitFor([&] { return status->text().contains("Not applied"); }, kTimeoutMs));
        QVERIFY2(status->text().contains("cannot hold one sequence"), qPrintable(status->text()));
        QVERIFY(panel->pagedKv()->isChecked());
        QCOMPARE(m_last.counters.configFailures, 1);
        QCOMPARE(m_last.config.kvAllocation, KvAllocation::Paged);
        const QString saved = QSettings(dir + "/settings.ini", QSettings::IniFormat).value("engine/optimization").toString();
        QVERIFY2(saved.contains(":kv=paged:") && saved.contains(":kv-budget-mib=auto:"), qPrintable(saved));
    }

    void conversationsPersistAcrossRestart() {
        const QString dir = dataDir(++m_windows);
        QStringList ids, titles;
        QVector<Message> messages;
        {
            auto window = makeWindow(dir);
            QVERIFY(waitForModel(*window));
            ChatTab* tab = window->tab(0);
            tab->setSettings(testSettings(6));
            tab->send(QStringLiteral("Remember me."));
            QVERIFY(waitForReply(tab));
            window->newTab();
            window->renameTab(1, QStringLiteral("Renamed"));
            for (int i = 0; i < window->tabCount(); ++i) {
                ids << window->tab(i)->id();
                titles << window->tab(i)->title();
            }
            messages = tab->conversation().messages;
        }
        auto window = makeWindow(dir);
        QCOMPARE(window->tabCount(), ids.size());
        for (int i = 0; i < window->tabCount(); ++i) {
            QCOMPARE(window->tab(i)->id(), ids[i]);
            QCOMPARE(window->tab(i)->title(), titles[i]);
        }
        QCOMPARE(titles[1], QStringLiteral("Renamed"));
        const QVector<Message>& restored = window->tab(0)->conversation().messages;
        QCOMPARE(restored.size(), messages.size());
        QCOMPARE(restored.back().text, messages.back().text);
        QCOMPARE(restored.back().stats, messages.back().stats);
        QCOMPARE(window->tab(0)->conversation().settings.maxNewTokens, 6);
        QVERIFY(waitForModel(*window));
    }

    void plotsReceivePoints() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(32));
        tab->send(QStringLiteral("Fill the plots."));
        QVERIFY(waitForReply(tab));
        ProfilerView* profiler = window->profiler();
        QVERIFY(QTest::qWaitFor([&] { return profiler->history().samples().size() >= 5; }, kTimeoutMs));
        for (int k = 0; k < kPlotKinds; ++k) {
            QCustomPlot* plot = profiler->plot(PlotKind(k));
            QVERIFY(plot->graphCount() > 0);
            QVERIFY2(plot->graph(0)->dataCount() > 0, qPrintable(QString::number(k)));
        }
        // One throughput line per tab besides the total and prompt lines.
        QVERIFY(profiler->plot(PlotKind::Throughput)->graphCount() >= 3);
        QVERIFY(!window->kvCache()->blockMap()->blocks().empty());
        QTemporaryDir out;
        QVERIFY(profiler->exportCsv(out.filePath("p.csv")).isEmpty());
        QVERIFY(profiler->exportPng(out.filePath("p.png")).isEmpty());
        QVERIFY(QFile(out.filePath("p.png")).size() > 0);
    }

    void blockMapNamesSequencesAfterTheirTabs() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        ChatTab* tab = window->tab(0);
        // Long enough (the app keeps a window past the context) to be seen
        // running by the 10 Hz stats however fast the machine; stopped below.
        tab->setSettings(testSettings(1000000));
        tab->send(QStringLiteral("Whose blocks are these?"));
        const BlockMapWidget* map = window->kvCache()->blockMap();
        QVERIFY(QTest::qWaitFor([&] { return map->ownerNames().values().contains(tab->title()); }, kTimeoutMs));
        // The named sequence holds blocks of the map.
        const qint64 seq = map->ownerNames().key(tab->title());
        QVERIFY(std::ranges::any_of(map->blocks(), [&](const BlockMapEntry& b) { return b.owner == seq; }));
        tab->stop();
        QVERIFY(QTest::qWaitFor([&] { return !tab->isGenerating(); }, kTimeoutMs));
    }

    // The Run on menu: Automatic (the default), the CPU, then the GPUs the
    // load listed, or one line saying why there are none, then GPU layers. Choosing the CPU
    // saves the choice and loads the model again there; chats go on.
    void runOnMenuMovesTheModelToTheChosenBackend() {
        const QString dir = dataDir(++m_windows);
        {
            auto window = makeWindow(dir);
            QVERIFY(waitForModel(*window));
            QList<QAction*> actions = window->runOnMenu()->actions();
            QVERIFY(actions.size() >= 8);
            QVERIFY(actions[0]->isChecked());
            QVERIFY(!actions[1]->isChecked());
            QVERIFY(actions[2]->isSeparator());
            const CudaDeviceList& cuda = window->model().cudaDevices;
            if (cuda.devices.empty()) {
                QCOMPARE(actions.size(), 8);
                QVERIFY(!actions[3]->isEnabled());
                QCOMPARE(actions[3]->text(), QStringLiteral("No GPU: ") + QString::fromStdString(cuda.reason));
            } else {
                QCOMPARE(actions.size(), 7 + int(cuda.devices.size()));
            }
            QCOMPARE(actions[actions.size() - 4]->text(), QStringLiteral("&Refresh the GPU list"));
            QVERIFY(actions[actions.size() - 3]->isSeparator());
            QCOMPARE(actions[actions.size() - 2]->text(), QStringLiteral("GPU &layers: automatic…"));
            QCOMPARE(actions.back()->text(), QStringLiteral("&Copy the weights into memory (CPU)"));
            QVERIFY(actions.back()->isChecked());
            QVERIFY2(window->model().backendNote.startsWith("cuda"), qPrintable(window->model().backendNote));

            QSignalSpy ready(window.get(), &MainWindow::modelReady);
            actions[1]->trigger();
            QVERIFY(ready.wait(kTimeoutMs));
            // The weights copied into memory for the CPU, which the note says.
            QVERIFY2(window->model().backendNote.startsWith(
                         QStringLiteral("cpu: chosen; the cpu reads the weights from memory (")),
                     qPrintable(window->model().backendNote));
            QVERIFY(window->model().backend.startsWith("cpu: "));
            actions = window->runOnMenu()->actions();
            QVERIFY(actions[1]->isChecked());
            QVERIFY(!actions[0]->isChecked());
            ChatTab* tab = window->tab(0);
            tab->setSettings(testSettings(4));
            tab->send(QStringLiteral("Still there, on the CPU?"));
            QVERIFY(waitForReply(tab));
            QCOMPARE(lastMessage(tab).stats->generatedTokens, 4);
        }
        // The choice outlives the window.
        auto again = makeWindow(dir);
        QVERIFY(waitForModel(*again));
        QCOMPARE(noteBeforeWeights(again->model().backendNote), QStringLiteral("cpu: chosen"));
    }

    // The same menu with two GPUs (a fake CUDA module): the first unusable
    // and greyed out with its reason, the second listed; choosing it tries
    // the device, whose memory cannot hold the model, so the model runs on
    // the CPU and the status bar's note says why.
    void runOnMenuListsEachGpu() {
#ifndef PAGODA_TEST_FAKE_GPUS_MODULE
        QSKIP("built without CUDA: no fake CUDA module to list GPUs from");
#else
        qputenv("PAGODA_CUDA_MODULE", PAGODA_TEST_FAKE_GPUS_MODULE);
        const auto restore = qScopeGuard([] { qunsetenv("PAGODA_CUDA_MODULE"); });
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        // Automatic takes the first usable device, the second.
        QVERIFY2(window->model().backendNote.startsWith(
                     QStringLiteral("cuda:1: out of device memory: Fake GPU has 1.00 MiB; using cpu; the cpu reads the "
                                    "weights from memory (")),
                 qPrintable(window->model().backendNote));
        QList<QAction*> actions = window->runOnMenu()->actions();
        QCOMPARE(actions.size(), 9);
        QCOMPARE(actions[3]->text(), QStringLiteral("GPU 0: unusable: compute capability 7.5 < 8.0 (Fake old GPU)"));
        QVERIFY(!actions[3]->isEnabled());
        QVERIFY2(actions[4]->text().startsWith(QStringLiteral("GPU &1: Fake GPU (compute 9.0")), qPrintable(actions[4]->text()));
        QVERIFY(actions[4]->isEnabled());
        QVERIFY(!actions[4]->isChecked());

        QSignalSpy ready(window.get(), &MainWindow::modelReady);
        actions[4]->trigger();
        QVERIFY(ready.wait(kTimeoutMs));
        QCOMPARE(noteBeforeWeights(window->model().backendNote),
                 QStringLiteral("cuda:1: out of device memory: Fake GPU has 1.00 MiB; using cpu"));
        actions = window->runOnMenu()->actions();
        QVERIFY(actions[4]->isChecked());
        QVERIFY(!actions[0]->isChecked());
#endif
    }

    // A model on a GPU that cannot hold the next one beside it is unloaded
    // before the next loads, which then runs on that GPU, not on the CPU.
    void nextModelMakesRoomOnTheGpu() {
#ifndef PAGODA_TEST_FAKE_GPUS_MODULE
        QSKIP("built without CUDA: no fake CUDA module to load onto");
#else
        const FakeGpu gpu;
        const QString next = copyOfTheModel(QStringLiteral("tiny-next.gguf"));
        QVERIFY(!next.isEmpty());
        auto window = windowOnTheFakeGpu();
        QVERIFY(window);

        QSignalSpy unloaded(window->engine(), &EngineClient::modelUnloaded);
        QSignalSpy ready(window.get(), &MainWindow::modelReady);
        window->openModel(next);
        QVERIFY(ready.wait(kTimeoutMs));
        QCOMPARE(unloaded.count(), 1);
        QCOMPARE(unloaded[0][0].toString(),
                 QStringLiteral("The current model was unloaded to make room on the GPU for tiny-next.gguf"));
        QCOMPARE(window->model().path, next);
        QVERIFY2(window->model().backendNote.startsWith(QStringLiteral("cuda:1: Fake GPU")) &&
                     window->model().backendNote.endsWith(QStringLiteral("; using cuda")),
                 qPrintable(window->model().backendNote));
        // The GPU keeps no F32 KV and no local-layer pools: not on offer.
        QVERIFY(!window->model().hostKv);
        OptimizationPanel* panel = window->optimizationPanel();
        const auto* items = qobject_cast<const QStandardItemModel*>(panel->kvPrecision()->model());
        QVERIFY(!items->item(panel->kvPrecision()->findData(int(DType::F32)))->isEnabled());
        QVERIFY(items->item(panel->kvPrecision()->findData(int(DType::Q8_0)))->isEnabled());
        QVERIFY(!panel->localKvPools()->isEnabled());
#endif
    }

    // Run on > Refresh the GPU list lists the devices again: here the fake
    // GPU's size, changed after the load, shows in the menu.
    void refreshListsTheGpusAgain() {
#ifndef PAGODA_TEST_FAKE_GPUS_MODULE
        QSKIP("built without CUDA: no fake CUDA module to list GPUs from");
#else
        const FakeGpu gpu;
        auto window = windowOnTheFakeGpu();
        QVERIFY(window);
        auto gpuItem = [&] { return runOnText(*window, QStringLiteral("GPU &1: ")); };
        QVERIFY2(gpuItem().contains(QStringLiteral("0.25 GiB")), qPrintable(gpuItem()));
        qputenv("PAGODA_FAKE_DEVICE_MIB", "1024");
        QAction* refresh = runOnItem(*window, QStringLiteral("&Refresh the GPU list"));
        QVERIFY(refresh);
        refresh->trigger();
        QVERIFY2(QTest::qWaitFor([&] { return gpuItem().contains(QStringLiteral("1.00 GiB")); }, kTimeoutMs),
                 qPrintable(gpuItem()));
#endif
    }

    // GPU layers (Run on > GPU layers): the model's last layers on the GPU,
    // the others on the CPU, kept in the settings; 0 runs it on the CPU.
    void gpuLayersSplitTheModelBetweenTheGpuAndTheCpu() {
#ifndef PAGODA_TEST_FAKE_GPUS_MODULE
        QSKIP("built without CUDA: no fake CUDA module to load onto");
#else
        const FakeGpu gpu;
        auto window = windowOnTheFakeGpu();
        QVERIFY(window);
        auto layersAction = [&] { return runOnText(*window, QStringLiteral("GPU &layers")); };
        QCOMPARE(layersAction(), QStringLiteral("GPU &layers: automatic…"));

        QSignalSpy ready(window.get(), &MainWindow::modelReady);
        window->setGpuLayers(1);
        QVERIFY(ready.wait(kTimeoutMs));
        QVERIFY2(window->model().backendNote.contains(
                     QStringLiteral("; using cuda; layer 1 on cuda:1, layer 0 on the cpu; the cpu reads the weights "
                                    "from memory (")),
                 qPrintable(window->model().backendNote));
        QVERIFY2(window->model().backend.contains(QStringLiteral("; layer 1 of 2 (layer 0 on cpu: ")),
                 qPrintable(window->model().backend));
        QCOMPARE(layersAction(), QStringLiteral("GPU &layers: 1…"));
        window->saveAll();
        QCOMPARE(QSettings(dataDir(m_windows) + QStringLiteral("/settings.ini"), QSettings::IniFormat)
                     .value("engine/gpuLayers")
                     .toInt(),
                 1);

        window->setGpuLayers(0);
        QVERIFY(ready.wait(kTimeoutMs));
        QCOMPARE(noteBeforeWeights(window->model().backendNote),
                 QStringLiteral("cuda:1: 0 GPU layers asked for; using cpu"));

        window->setGpuLayers(kGpuLayersThatFit);
        QVERIFY(ready.wait(kTimeoutMs));
        QVERIFY2(window->model().backendNote.endsWith(QStringLiteral("; using cuda")), qPrintable(window->model().backendNote));
        QCOMPARE(layersAction(), QStringLiteral("GPU &layers: automatic…"));
#endif
    }

    // A comparison on the chats' GPU runs on the chats' weights there, and
    // holds them only while it runs: the next model still finds the room.
    void comparisonRunsOnTheChatsWeightsOnTheirGpu() {
#ifndef PAGODA_TEST_FAKE_GPUS_MODULE
        QSKIP("built without CUDA: no fake CUDA module to load onto");
#else
        // The GPU holds the model once: a copy of the comparison's own
        // would go to the CPU.
        const FakeGpu gpu;
        const QString next = copyOfTheModel(QStringLiteral("tiny-after-compare.gguf"));
        QVERIFY(!next.isEmpty());
        auto window = windowOnTheFakeGpu();
        QVERIFY(window);
        QVERIFY(!window->model().gpuWeights.expired());

        CompareView* view = openSmallComparison(*window);
        QSignalSpy runningOn(view, &CompareView::runningOn);
        QSignalSpy failed(view, &CompareView::failed);
        view->run();
        QVERIFY(runningOn.wait(kTimeoutMs));
        const QString backend = runningOn[0][0].toString();
        QVERIFY2(backend.startsWith(QStringLiteral("cuda: Fake GPU")) &&
                     backend.endsWith(QStringLiteral(", weights shared with another engine")),
                 qPrintable(backend));
        QCOMPARE(runningOn[0][1].toString(), backend);
        // The fake GPU runs nothing: the warm-up then fails there.
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, kTimeoutMs);
        QVERIFY2(failed[0][0].toString().startsWith(QStringLiteral("config A, warming up: ")) &&
                     failed[0][0].toString().contains(QStringLiteral("the fake device runs nothing")),
                 qPrintable(failed[0][0].toString()));

        QSignalSpy ready(window.get(), &MainWindow::modelReady);
        window->openModel(next);
        QVERIFY(ready.wait(kTimeoutMs));
        QCOMPARE(window->model().path, next);
        QVERIFY2(window->model().backendNote.endsWith(QStringLiteral("; using cuda")), qPrintable(window->model().backendNote));
#endif
    }

    // A comparison side can run its own count of GPU layers: B splits the
    // model (its own weights), A runs as the chats on theirs.
    void comparisonSideRunsItsOwnGpuLayers() {
#ifndef PAGODA_TEST_FAKE_GPUS_MODULE
        QSKIP("built without CUDA: no fake CUDA module to load onto");
#else
        const FakeGpu gpu;
        qputenv("PAGODA_FAKE_DEVICE_MIB", "600");  // room for B's own upload beside the chats'
        auto window = windowOnTheFakeGpu();
        QVERIFY(window);
        CompareView* view = openSmallComparison(*window);
        view->setGpuLayers(1, 1);
        QSignalSpy runningOn(view, &CompareView::runningOn);
        QSignalSpy failed(view, &CompareView::failed);
        view->run();
        QVERIFY(runningOn.wait(kTimeoutMs));
        const QString a = runningOn[0][0].toString();
        const QString b = runningOn[0][1].toString();
        QVERIFY2(a.endsWith(QStringLiteral(", weights shared with another engine")), qPrintable(a));
        QVERIFY2(b.startsWith(QStringLiteral("cuda: Fake GPU")) &&
                     b.contains(QStringLiteral("; layer 1 of 2 (layer 0 on cpu: ")),
                 qPrintable(b));
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, kTimeoutMs);  // the fake GPU runs nothing
#endif
    }

    void corruptModelGivesErrorAndAppStaysUsable() {
        auto window = makeWindow(dataDir(++m_windows));
        QVERIFY(waitForModel(*window));
        const QString loaded = window->model().path;
        const QString corrupt = m_dir.filePath("corrupt.gguf");
        QFile file(corrupt);
        QVERIFY(file.open(QIODevice::WriteOnly));
        // A GGUF v3 header cut short, then junk.
        file.write(QByteArray("GGUF\x03\x00\x00\x00", 8) + QByteArray(" definitely not a model"));
        file.close();
        QSignalSpy errors(window.get(), &MainWindow::errorOccurred);
        window->openModel(corrupt);
        QVERIFY(errors.wait(kTimeoutMs));
        QVERIFY2(errors.front().front().toString().contains("corrupt.gguf"), qPrintable(errors.front().front().toString()));
        QCOMPARE(window->model().path, loaded);
        ChatTab* tab = window->tab(0);
        tab->setSettings(testSettings(4));
        tab->send(QStringLiteral("Still there?"));
        QVERIFY(waitForReply(tab));
        QCOMPARE(lastMessage(tab).stats->generatedTokens, 4);
    }
};

int runMainWindowTests(int argc, char** argv) {
    MainWindowTest test;
    return QTest::qExec(&test, argc, argv);
}

#include "main_window_test.moc"

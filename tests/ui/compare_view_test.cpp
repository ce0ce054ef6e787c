// Tools ▸ Compare configurations… on a tiny synthetic model, offscreen: a
// tiny workload under baseline and optimized fills the table and the chart
// and exports; the two on different backends; cancel; chats keep working
// while it runs.

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>

#include <memory>

#include "engine/model/synthetic.h"
#include "ui/chat_tab.h"
#include "ui/compare_view.h"
#include "ui/main_window.h"
#include "ui/qcustomplot_include.h"

using namespace pagoda;
using namespace pagoda::ui;

namespace {

constexpr int kTimeoutMs = 20000;
// F32 KV: baseline (naive attention) and optimized (flash) then agree token for token.
const QString kConfigA = QStringLiteral("baseline:kv-budget-mib=4:kv-type=f32");
const QString kConfigB = QStringLiteral("optimized:kv-budget-mib=4:kv-type=f32");

QString formatted(const QString& spec) {
    return QString::fromStdString(
        runtime::formatOptimizationConfig(*runtime::parseOptimizationConfig(spec.toStdString())));
}

}  // namespace

class CompareViewTest : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_dir;
    QString m_modelPath;
    std::unique_ptr<MainWindow> m_window;

    // A workload of `requests` short requests from two clients.
    static runtime::Workload shortWorkload(int requests) {
        runtime::Workload w;
        w.requests = requests;
        w.promptLength = 8;
        w.genLength = 4;
        w.concurrency = 2;
        return w;
    }

    // Runs the view's comparison to its end; false (and the status in the
    // log) unless it finished.
    static bool runToTheEnd(CompareView* view) {
        QSignalSpy finished(view, &CompareView::finished);
        QSignalSpy failed(view, &CompareView::failed);
        view->run();
        if (!view->isRunning()) return false;
        const bool ended = QTest::qWaitFor([&] { return !finished.isEmpty() || !failed.isEmpty(); }, kTimeoutMs);
        if (!ended || !failed.isEmpty()) qWarning("%s", qPrintable(view->statusText()));
        return ended && failed.isEmpty() && !view->isRunning();
    }

    CompareView* openView(const runtime::Workload& workload) {
        CompareView* view = m_window->openCompareView();
        view->setWorkload(workload);
        view->setConfigText(0, kConfigA);
        view->setConfigText(1, kConfigB);
        return view;
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        m_modelPath = m_dir.filePath("tiny.gguf");
        SyntheticSpec spec = *syntheticPreset("tiny");
        spec.contextLength = 512;
        auto written = writeSyntheticModel(spec, m_modelPath.toStdString());
        QVERIFY2(written.has_value(), written ? "" : written.error().message.c_str());
        const QString settingsPath = m_dir.filePath("settings.ini");
        {
            QSettings settings(settingsPath, QSettings::IniFormat);
            settings.setValue("engine/optimization", "optimized:kv-budget-mib=4:kv-type=f32:max-batch-tokens=128");
        }
        MainWindowOptions options;
        options.dataDir = m_dir.filePath("data");
        options.settingsPath = settingsPath;
        options.modelPath = m_modelPath;
        options.errorDialogs = false;
        m_window = std::make_unique<MainWindow>(options);
        m_window->show();
        QVERIFY(QTest::qWaitFor([&] { return m_window->hasModel(); }, kTimeoutMs));
    }

    void cleanupTestCase() { m_window.reset(); }

    void comparesTwoConfigs() {
        CompareView* view = openView(shortWorkload(4));
        QVERIFY(view->isVisible());
        QVERIFY(!view->isModal());
        QVERIFY(runToTheEnd(view));

        const QTableWidget* table = view->table();
        QCOMPARE(table->rowCount(), 3);
        QCOMPARE(table->item(0, CompareView::ColConfig)->text(), formatted(kConfigA));
        QCOMPARE(table->item(1, CompareView::ColConfig)->text(), formatted(kConfigB));
        for (int row = 0; row < 2; ++row) {
            QVERIFY(table->item(row, CompareView::ColTokPerSec)->text().toDouble() > 0);
            QCOMPARE(table->item(row, CompareView::ColSameOutput)->text(), QStringLiteral("yes"));
        }
        QVERIFY(table->item(2, CompareView::ColTokPerSec)->text().endsWith(QLatin1Char('x')));
        const CompareOutcome& outcome = *view->outcome();
        QCOMPARE(outcome.sameOutputs, 4);
        QCOMPARE(outcome.results[0].generatedTokens, 16);
        QCOMPARE(outcome.results[1].generatedTokens, 16);
        QCOMPARE(view->chart()->plottableCount(), 4);
        QVERIFY(static_cast<QCPBars*>(view->chart()->plottable(1))->data()->at(0)->value > 0);

        const QString csv = m_dir.filePath("compare.csv");
        const QString json = m_dir.filePath("compare.json");
        QCOMPARE(view->exportCsv(csv), QString());
        QCOMPARE(view->exportJson(json), QString());
        QFile csvFile(csv);
        QVERIFY(csvFile.open(QIODevice::ReadOnly));
        const QList<QByteArray> lines = csvFile.readAll().split('\n');
        QVERIFY(lines.size() >= 4);
        QVERIFY(lines[0].startsWith("row,config,backend,tok_s"));
        QVERIFY(lines[1].startsWith("A," + formatted(kConfigA).toUtf8() + ","));
        QFile jsonFile(json);
        QVERIFY(jsonFile.open(QIODevice::ReadOnly));
        const QByteArray jsonText = jsonFile.readAll();
        QVERIFY(jsonText.contains("\"same_outputs\": 4"));
        QVERIFY(jsonText.contains("\"name\": \"B\""));
        // Both ran where the chats run (no GPU here: the CPU).
        QCOMPARE(outcome.backends[0], outcome.backends[1]);
        QCOMPARE(table->item(0, CompareView::ColBackend)->text(), outcome.backends[0]);
        QVERIFY(jsonText.contains("\"backends\": [\"" + outcome.backends[0].toUtf8() + "\", \""));
    }

    // With "Time each operation", A and B run once more each through
    // TimedOps: a table of µs per generated token by operation, in the JSON
    // too; without it, no table.
    void breaksTimeDownByOperation() {
        CompareView* view = openView(shortWorkload(2));
        view->setTimeOperations(true);
        QVERIFY(runToTheEnd(view));
        const CompareOutcome& outcome = *view->outcome();
        for (const auto& side : outcome.opTimes) {
            for (const char* op : {"attention", "matmul", "matmuls", "matmul_swiglu", "embed"}) {
                const auto found = std::ranges::find_if(
                    side, [&](const TimedOps::OpTime& t) { return TimedOps::opName(t.op) == op; });
                QVERIFY2(found != side.end(), op);
                QVERIFY2(found->calls > 0 && found->seconds > 0, op);
            }
        }
        const QTableWidget* ops = view->operationTable();
        QVERIFY(!ops->isHidden());
        QCOMPARE(ops->rowCount(), int(outcome.opTimes[0].size()) + 1);
        QCOMPARE(ops->item(ops->rowCount() - 1, 0)->text(), QStringLiteral("total"));
        QList<QTableWidgetItem*> attention = ops->findItems(QStringLiteral("attention"), Qt::MatchExactly);
        QCOMPARE(attention.size(), 1);
        QVERIFY(ops->item(attention[0]->row(), 1)->text().toDouble() > 0);
        QVERIFY(ops->item(attention[0]->row(), 2)->text().toDouble() > 0);

        const QString json = m_dir.filePath("compare-ops.json");
        QCOMPARE(view->exportJson(json), QString());
        QFile jsonFile(json);
        QVERIFY(jsonFile.open(QIODevice::ReadOnly));
        QJsonParseError error;
        const QJsonDocument doc = QJsonDocument::fromJson(jsonFile.readAll(), &error);
        QVERIFY2(doc.isObject(), qPrintable(error.errorString()));
        const QJsonObject opTimes = doc.object().value("op_times").toObject();
        for (const char* side : {"A", "B"}) {
            const QJsonArray times = opTimes.value(QLatin1String(side)).toArray();
            QCOMPARE(times.size(), qsizetype(outcome.opTimes[side[0] == 'A' ? 0 : 1].size()));
            QVERIFY(times.at(0).toObject().value("us_per_token").toDouble() > 0);
        }

        view->setTimeOperations(false);
        QVERIFY(runToTheEnd(view));
        QVERIFY(view->outcome()->opTimes[0].empty());
        QVERIFY(ops->isHidden());
    }

    // A and B on backends of their own: the chats' choice and the CPU. With
    // no usable GPU the first falls back to the CPU too, so the outputs
    // agree; each side's backend is named in its row.
    void comparesTwoBackends() {
        CompareView* view = openView(shortWorkload(2));
        view->setConfigText(1, kConfigA);
        view->setRunOn(0, CompareView::kRunAsTheChats);
        view->setRunOn(1, CompareView::kRunOnCpu);
        QSignalSpy runningOn(view, &CompareView::runningOn);
        QVERIFY(runToTheEnd(view));
        const CompareOutcome& outcome = *view->outcome();
        QCOMPARE(runningOn.count(), 1);
        QCOMPARE(runningOn[0][0].toString(), outcome.backends[0]);
        QCOMPARE(runningOn[0][1].toString(), outcome.backends[1]);
        QVERIFY2(outcome.backends[1].startsWith(QStringLiteral("cpu: ")), qPrintable(outcome.backends[1]));
        QCOMPARE(outcome.backendNotes[1], QStringLiteral("cpu: chosen"));
        QVERIFY2(outcome.backendNotes[0].startsWith(QStringLiteral("cuda")), qPrintable(outcome.backendNotes[0]));
        QCOMPARE(view->table()->item(1, CompareView::ColBackend)->toolTip(), outcome.backendNotes[1]);
        QCOMPARE(view->table()->item(1, CompareView::ColPeakKv)->toolTip(),
                 QStringLiteral("pool 4.0 MiB, KV budget set: 4.00 MiB"));
        QCOMPARE(view->table()->item(1, CompareView::ColBackend)->text(), outcome.backends[1]);
        QCOMPARE(outcome.results[1].generatedTokens, 8);
        if (m_window->model().cudaDevices.devices.empty()) {
            QCOMPARE(outcome.backends[0], outcome.backends[1]);
            QCOMPARE(outcome.sameOutputs, 2);
        }
        view->setRunOn(1, CompareView::kRunAsTheChats);
    }

    void cancelStopsTheRunAndChatsKeepWorking() {
        runtime::Workload w;
        w.requests = 1000;
        w.promptLength = 64;
        w.genLength = 400;
        w.concurrency = 4;
        CompareView* view = openView(w);
        QSignalSpy failed(view, &CompareView::failed);
        view->run();
        QVERIFY(view->isRunning());
        // A chat turn is served by the chat engine while the comparison runs.
        ChatTab* tab = m_window->tab(0);
        ChatSettings settings;
        settings.maxNewTokens = 4;
        settings.ignoreEos = true;
        tab->setSettings(settings);
        tab->send(QStringLiteral("Still answering?"));
        QVERIFY(QTest::qWaitFor(
            [&] { return !tab->isGenerating() && tab->conversation().messages.back().stats.has_value(); }, kTimeoutMs));
        QCOMPARE(tab->conversation().messages.back().stats->generatedTokens, 4);
        QVERIFY(view->isRunning());
        view->cancel();
        QVERIFY(QTest::qWaitFor([&] { return !failed.isEmpty(); }, 5000));
        QCOMPARE(failed.first().first().toString(), QStringLiteral("cancelled"));
        QVERIFY(!view->isRunning());
        QCOMPARE(view->statusText(), QStringLiteral("Cancelled."));
        // The previous results stay.
        QVERIFY(view->outcome().has_value());
    }
};

int runCompareViewTests(int argc, char** argv) {
    CompareViewTest test;
    return QTest::qExec(&test, argc, argv);
}

#include "compare_view_test.moc"

// Conversations, their store and the profiler's history: plain values and
// files, no engine.

#include <QFile>
#include <QJsonDocument>
#include <QTemporaryDir>
#include <QTest>

#include "ui/conversation_store.h"
#include "ui/profiler_plots.h"
#include "ui/qcustomplot_include.h"
#include "ui/stats_history.h"

using namespace pagoda;
using namespace pagoda::ui;

namespace {

Conversation sampleConversation() {
    ChatSettings settings;
    settings.systemPrompt = QStringLiteral("Be brief.");
    settings.sampling.temperature = 0.5f;
    settings.sampling.seed = 1234567890123ull;
    settings.maxNewTokens = 77;
    settings.ignoreEos = true;
    settings.thinking = false;
    Conversation c = Conversation::create(QStringLiteral("Pagodas & rain"), settings);
    c.messages.push_back({Role::User, QStringLiteral("Hello, **world**"), QDateTime::currentDateTime(), {}, {}});
    MessageStats stats{120, 96, 42, 1, 0.25, 18.5, 2.5, QStringLiteral("length")};
    c.messages.push_back({Role::Assistant, QStringLiteral("<think>\nGreet back.\n</think>\n\nHi — ünïcödé ✓"),
                          QDateTime::currentDateTime(), stats, {}, 1.5});
    c.messages.push_back({Role::User, QStringLiteral("again"), QDateTime::currentDateTime(), {}, {}});
    c.messages.push_back({Role::Assistant, QString(), QDateTime::currentDateTime(), {}, QStringLiteral("overloaded")});
    return c;
}

StatsUpdate update(double seconds, int64_t lruEvictions, qint64 tokens, const runtime::OptimizationConfig& config) {
    StatsUpdate u;
    u.seconds = seconds;
    u.snapshot.config = config;
    u.snapshot.counters.evictions[size_t(EvictionCause::Lru)] = lruEvictions;
    u.snapshot.kv.blocks.blocksUsed = 3;
    u.snapshot.kv.blocks.blocksFree = 5;
    u.tokensByConversation[QStringLiteral("a")] = tokens;
    return u;
}

}  // namespace

class ConversationTest : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void jsonRoundTrip() {
        const Conversation c = sampleConversation();
        const QByteArray bytes = QJsonDocument(c.toJson()).toJson();
        QString error;
        const auto back = Conversation::fromJson(QJsonDocument::fromJson(bytes).object(), &error);
        QVERIFY2(back.has_value(), qPrintable(error));
        QCOMPARE(back->id, c.id);
        QCOMPARE(back->title, c.title);
        QVERIFY(back->settings == c.settings);
        QCOMPARE(back->messages.size(), c.messages.size());
        for (qsizetype i = 0; i < c.messages.size(); ++i) {
            QCOMPARE(back->messages[i].text, c.messages[i].text);
            QCOMPARE(back->messages[i].stats, c.messages[i].stats);
            QCOMPARE(back->messages[i].error, c.messages[i].error);
            QCOMPARE(back->messages[i].thinkingSeconds, c.messages[i].thinkingSeconds);
        }
    }

    void fromJsonNamesWhatIsWrong() {
        QString error;
        QVERIFY(!Conversation::fromJson(QJsonObject{{"format", "other"}}, &error));
        QVERIFY2(error.contains("format"), qPrintable(error));
        QJsonObject json = sampleConversation().toJson();
        json["id"] = "../../etc/passwd";
        QVERIFY(!Conversation::fromJson(json, &error));
        QVERIFY2(error.contains("id"), qPrintable(error));
    }

    void promptHasSystemThenTurns() {
        const QVector<PromptMessage> prompt = sampleConversation().promptMessages();
        QCOMPARE(prompt.size(), 4);  // the failed empty reply is left out
        QCOMPARE(prompt[0].role, Role::System);
        QCOMPARE(prompt[1].role, Role::User);
        QCOMPARE(prompt[2].role, Role::Assistant);
        QCOMPARE(prompt[3].content, QStringLiteral("again"));
    }

    void markdownExportHasEveryMessage() {
        const QString md = sampleConversation().toMarkdown();
        QVERIFY(md.startsWith("# Pagodas & rain"));
        QVERIFY(md.contains("Hello, **world**"));
        QVERIFY(md.contains("42 tokens"));
        QVERIFY(md.contains("96 reused"));
        QVERIFY(md.contains("**Error:** overloaded"));
        QVERIFY2(md.contains("<details><summary>Reasoning (1.5 s)</summary>\n\nGreet back.\n\n</details>\n\nHi — "),
                 qPrintable(md));
    }

    // A reasoning model's <think> block goes into a <details> block.
    void markdownExportFoldsReasoning() {
        Conversation c = Conversation::create(QStringLiteral("sums"), {});
        c.messages.push_back({Role::User, QStringLiteral("2 + 2?"), QDateTime::currentDateTime(), {}, {}});
        c.messages.push_back({Role::Assistant, QStringLiteral("<think>\nAdd them.\n</think>\n\nIt is 4."),
                              QDateTime::currentDateTime(), {}, {}});
        QVERIFY2(c.toMarkdown().contains(
                     "## Assistant\n\n<details><summary>Reasoning</summary>\n\nAdd them.\n\n</details>\n\n"
                     "It is 4.\n\n"),
                 qPrintable(c.toMarkdown()));
        QVERIFY(!c.toMarkdown().contains("think>"));
    }

    void storeRestoresOrderAndReopensClosed() {
        QTemporaryDir dir;
        ConversationStore store(dir.path());
        Conversation a = sampleConversation();
        Conversation b = Conversation::create(QStringLiteral("second"), {});
        QVERIFY(store.save(a).isEmpty());
        QVERIFY(store.save(b).isEmpty());
        QVERIFY(store.saveSession({b.id, a.id}, 1).isEmpty());
        ConversationStore::Session session = store.load();
        QVERIFY(session.errors.isEmpty());
        QCOMPARE(session.open.size(), 2);
        QCOMPARE(session.open[0].id, b.id);
        QCOMPARE(session.open[1].id, a.id);
        QCOMPARE(session.current, 1);

        QVERIFY(store.close(a.id).isEmpty());
        QCOMPARE(store.load().open.size(), 1);
        const auto reopened = store.reopenLastClosed();
        QVERIFY(reopened.has_value());
        QCOMPARE(reopened->id, a.id);
        QCOMPARE(store.load().open.size(), 2);
        QVERIFY(!store.reopenLastClosed().has_value());
    }

    void storeReportsUnreadableFiles() {
        QTemporaryDir dir;
        ConversationStore store(dir.path());
        QVERIFY(store.save(sampleConversation()).isEmpty());
        QDir().mkpath(dir.filePath("conversations"));
        QFile broken(dir.filePath("conversations/0badf00d.json"));
        QVERIFY(broken.open(QIODevice::WriteOnly));
        broken.write("{ not json");
        broken.close();
        const ConversationStore::Session session = store.load();
        QCOMPARE(session.open.size(), 1);
        QCOMPARE(session.errors.size(), 1);
        QVERIFY2(session.errors[0].contains("0badf00d.json"), qPrintable(session.errors[0]));
    }

    void historyTurnsCountersIntoRates() {
        StatsHistory history;
        const auto config = runtime::OptimizationConfig::optimized();
        history.add(update(1.0, 0, 0, config));
        const Sample& s = history.add(update(1.5, 10, 20, config));
        QCOMPARE(s.evictionsPerSecond[size_t(EvictionCause::Lru)], 20.0);
        QCOMPARE(s.generatedPerSecondByConversation.value("a"), 40.0);
        QVERIFY(history.changes().empty());

        auto changed = config;
        changed.prefixCaching = false;
        changed.blockSize = 32;
        history.add(update(2.0, 10, 20, changed));
        QCOMPARE(history.changes().size(), size_t(1));
        QCOMPARE(history.changes().front().label, QStringLiteral("prefix off, block 32"));
        const QStringList lines = history.toCsv().split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 4);
        QVERIFY(lines[0].startsWith("t_s,generated_tok_s"));
        QVERIFY(lines[0].endsWith("tok_s_a"));
    }

    void localLayerPoolsJoinTheOccupancyPlotAndTheCsv() {
        StatsHistory history;
        const auto config = runtime::OptimizationConfig::optimized();
        const Sample plain = history.add(update(1.0, 0, 0, config));
        QVERIFY(!plain.localBlocks.has_value());
        StatsUpdate gemma = update(2.0, 0, 0, config);
        gemma.snapshot.kv.localLayers = 22;
        gemma.snapshot.kv.localBlocks.blocksUsed = 7;
        gemma.snapshot.kv.localBlocks.blocksCached = 2;
        gemma.snapshot.kv.localBlocks.blocksFree = 19;
        const Sample local = history.add(gemma);
        QVERIFY(local.localBlocks.has_value());
        const QStringList lines = history.toCsv().split('\n');
        QVERIFY(lines[0].contains("local_blocks_used,local_blocks_cached,local_blocks_free"));
        QVERIFY(lines[1].contains(",,,"));
        QVERIFY2(lines[2].contains(",7,2,19"), qPrintable(lines[2]));

        QCustomPlot plot;
        setupPlot(PlotKind::KvOccupancy, &plot);
        QCOMPARE(plot.graphCount(), 4);
        addSample(PlotKind::KvOccupancy, &plot, plain, {});
        QCOMPARE(plot.graphCount(), 4);
        addSample(PlotKind::KvOccupancy, &plot, local, {});
        QCOMPARE(plot.graphCount(), 5);
        QCOMPARE(plot.graph(4)->data()->at(0)->value, 7.0);
    }

    void historyAndMemoryPlotFollowTheDevice() {
        constexpr uint64_t kMiB = 1 << 20;
        StatsHistory history;
        const auto config = runtime::OptimizationConfig::optimized();
        StatsUpdate gpu = update(1.0, 0, 0, config);
        gpu.snapshot.memory.device = DeviceMemoryStats{100 * kMiB, 50 * kMiB, 6 * kMiB, 2 * kMiB,
                                                       200 * kMiB, 700 * kMiB, 1000 * kMiB};
        const Sample device = history.add(gpu);
        QVERIFY(device.device.has_value());
        QCOMPARE(device.device->weightsMiB, 100.0);
        QCOMPARE(device.device->kvCacheMiB, 50.0);
        QCOMPARE(device.device->activationsMiB, 8.0);
        QCOMPARE(device.device->usedMiB, 300.0);
        QCOMPARE(device.device->totalMiB, 1000.0);
        const Sample host = history.add(update(2.0, 0, 0, config));
        QVERIFY(!host.device.has_value());
        const QStringList lines = history.toCsv().split('\n');
        QVERIFY(lines[0].contains("gpu_weights_mib,gpu_kv_cache_mib,gpu_activations_mib,gpu_used_mib,gpu_total_mib"));
        QVERIFY(lines[1].contains(",100,50,8,300,1000,"));
        QVERIFY(lines[2].contains(",,,,,"));

        QCustomPlot plot;
        setupMemoryPlot(&plot);
        QCOMPARE(plot.accessibleName(), QStringLiteral("Host memory (CPU backend)"));
        QCOMPARE(plot.graphCount(), 4);
        addSample(PlotKind::Memory, &plot, device, {});
        QCOMPARE(plot.accessibleName(), QStringLiteral("GPU memory"));
        QCOMPARE(plot.graphCount(), 5);
        QCOMPARE(plot.graph(0)->data()->at(0)->value, 300.0);
        QCOMPARE(plot.graph(1)->data()->at(0)->value, 1000.0);
        addSample(PlotKind::Memory, &plot, host, {});
        QCOMPARE(plot.accessibleName(), QStringLiteral("Host memory (CPU backend)"));
        QCOMPARE(plot.graphCount(), 4);
        QCOMPARE(plot.graph(0)->dataCount(), 1);
    }

    void configChangesNameDecodeGraphs() {
        auto changed = runtime::OptimizationConfig::optimized();
        changed.decodeGraphs = false;
        QCOMPARE(describeConfigChange(runtime::OptimizationConfig::optimized(), changed), QStringLiteral("CUDA graphs off"));
    }

    void historyKeepsTenMinutes() {
        StatsHistory history;
        const auto config = runtime::OptimizationConfig::optimized();
        for (int i = 0; i <= 700; ++i) history.add(update(i, 0, 0, config));
        QCOMPARE(history.samples().front().t, 100.0);
    }
};

int runConversationTests(int argc, char** argv) {
    ConversationTest test;
    return QTest::qExec(&test, argc, argv);
}

#include "conversation_test.moc"

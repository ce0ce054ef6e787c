#include "ui/compare_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QThread>
#include <QVBoxLayout>

#include <algorithm>

#include <fmt/format.h>

#include "engine/runtime/optimization_config.h"
#include "ui/conversation_store.h"
#include "ui/qcustomplot_include.h"

namespace pagoda::ui {
namespace {

const QColor kColorA(0x1f, 0x77, 0xb4);
const QColor kColorB(0xff, 0x7f, 0x0e);
constexpr double kTokKey = 1;   // the chart's tok/s group, on the left axis
constexpr double kTtftKey = 2;  // its TTFT p50 group, on the right axis

enum class Preset { Baseline, Optimized, Current };

double mib(uint64_t bytes) { return double(bytes) / double(1 << 20); }

// The metrics of a table row, in column order from ColTokPerSec to ColPrefixHits.
std::array<double, CompareView::ColSameOutput - CompareView::ColTokPerSec> metrics(const runtime::WorkloadResult& r) {
    return {r.tokensPerSecond, r.ttftP50 * 1e3,         r.ttftP95 * 1e3,   r.itlP50 * 1e3,
            r.itlP95 * 1e3,    mib(r.peakKvBytes),      mib(r.peakRssBytes), double(r.maxConcurrent),
            double(r.preemptions), 100 * r.prefixHitRate};
}

const char* const kHeaders[] = {"config",        "backend",       "tok/s",          "TTFT p50 (ms)",
                                "TTFT p95 (ms)", "ITL p50 (ms)",  "ITL p95 (ms)",   "peak KV (MiB)",
                                "peak RSS (MiB)", "max concurrent", "preemptions", "prefix hits (%)",
                                "same output"};
const char* const kCsvHeaders[] = {"row",          "config",         "backend",     "tok_s",
                                   "ttft_p50_ms",  "ttft_p95_ms",    "itl_p50_ms",  "itl_p95_ms",
                                   "peak_kv_mib",  "peak_rss_mib",   "max_concurrent", "preemptions",
                                   "prefix_hit_pct", "same_output"};
static_assert(std::size(kHeaders) == CompareView::kColumns);
static_assert(std::size(kCsvHeaders) == CompareView::kColumns + 1);

QString ratioText(double b, double a) { return a > 0 ? QStringLiteral("%1x").arg(b / a, 0, 'f', 2) : QStringLiteral("-"); }

// tok/s on the left axis, TTFT p50 on the right, A and B side by side.
void setupCompareChart(QCustomPlot* plot) {
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->addTick(kTokKey, QObject::tr("tok/s"));
    ticker->addTick(kTtftKey, QObject::tr("TTFT p50 (ms)"));
    plot->xAxis->setTicker(ticker);
    plot->xAxis->setRange(0.4, 2.6);
    plot->yAxis->setLabel(QObject::tr("tok/s"));
    plot->yAxis2->setLabel(QObject::tr("ms"));
    plot->yAxis2->setVisible(true);
    plot->legend->setVisible(true);
    plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignHCenter);
    for (const auto& [key, valueAxis] : {std::pair{kTokKey, plot->yAxis}, std::pair{kTtftKey, plot->yAxis2}}) {
        auto* group = new QCPBarsGroup(plot);
        for (int side = 0; side < 2; ++side) {
            auto* bars = new QCPBars(plot->xAxis, valueAxis);
            bars->setName(side == 0 ? QStringLiteral("A") : QStringLiteral("B"));
            bars->setWidth(0.3);
            bars->setPen(Qt::NoPen);
            bars->setBrush(side == 0 ? kColorA : kColorB);
            bars->setBarsGroup(group);
            if (key == kTtftKey) bars->removeFromLegend();
        }
    }
    plot->setMinimumHeight(180);
}

// Plottables in setupCompareChart's order: tok/s A, B, then TTFT A, B.
void updateCompareChart(QCustomPlot* plot, const CompareOutcome& outcome) {
    double tokMax = 0, ttftMax = 0;
    for (int side = 0; side < 2; ++side) {
        const runtime::WorkloadResult& r = outcome.results[size_t(side)];
        static_cast<QCPBars*>(plot->plottable(side))->setData({kTokKey}, {r.tokensPerSecond});
        static_cast<QCPBars*>(plot->plottable(2 + side))->setData({kTtftKey}, {r.ttftP50 * 1e3});
        tokMax = std::max(tokMax, r.tokensPerSecond);
        ttftMax = std::max(ttftMax, r.ttftP50 * 1e3);
    }
    plot->yAxis->setRange(0, tokMax > 0 ? tokMax * 1.15 : 1);
    plot->yAxis2->setRange(0, ttftMax > 0 ? ttftMax * 1.15 : 1);
    plot->replot(QCustomPlot::rpQueuedReplot);
}

QString cancelledMessage() {
    return QString::fromLatin1(runtime::kWorkloadCancelled.data(), qsizetype(runtime::kWorkloadCancelled.size()));
}

QString csvField(const QString& text) {
    if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"'))) return text;
    return QLatin1Char('"') + QString(text).replace(QLatin1Char('"'), QStringLiteral("\"\"")) + QLatin1Char('"');
}

}  // namespace

CompareView::CompareView(QWidget* parent)
    : QDialog(parent), m_thread(new QThread(this)), m_worker(new CompareWorker(m_cancel)) {
    qRegisterMetaType<CompareOutcome>();
    setWindowTitle(tr("Compare configurations"));
    setModal(false);
    m_thread->setObjectName(QStringLiteral("pagoda-compare"));
    m_worker->moveToThread(m_thread);
    connect(m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &CompareWorker::backendsReady, this, [this](const QString& a, const QString& b) {
        if (m_cancel->load()) return;
        m_status->setText(a == b ? tr("Warming up, then running A, then B, on %1…").arg(a)
                                 : tr("Warming up, then running A on %1, then B on %2…").arg(a, b));
        Q_EMIT runningOn(a, b);
    }, Qt::QueuedConnection);
    connect(m_worker, &CompareWorker::progress, this, [this](int done, int total) {
        m_progress->setRange(0, total);
        m_progress->setValue(done);
    }, Qt::QueuedConnection);
    connect(m_worker, &CompareWorker::finished, this, &CompareView::showOutcome, Qt::QueuedConnection);
    connect(m_worker, &CompareWorker::failed, this, &CompareView::showFailure, Qt::QueuedConnection);
    connect(m_worker, &CompareWorker::cancelled, this,
            [this] { showFailure(cancelledMessage()); }, Qt::QueuedConnection);
    m_thread->start();

    auto* layout = new QVBoxLayout(this);
    m_modelLabel = new QLabel(this);
    layout->addWidget(m_modelLabel);
    auto* note = new QLabel(tr("The comparison runs its own engine on the same CPU cores (or GPU) as the chats: "
                               "for numbers you can trust, leave the chats idle while it runs."),
                            this);
    note->setWordWrap(true);
    layout->addWidget(note);

    auto* configs = new QGroupBox(tr("Configurations"), this);
    auto* configForm = new QFormLayout(configs);
    for (int side = 0; side < 2; ++side) {
        ConfigPicker& picker = m_pickers[size_t(side)];
        picker.preset = new QComboBox(configs);
        picker.preset->addItems({tr("baseline"), tr("optimized"), tr("current (the chats' config)")});
        picker.text = new QLineEdit(configs);
        picker.text->setToolTip(tr("preset[:key=value]…, as in the settings file and pagoda-bench compare --configs; "
                                   "for example optimized:batching=static:prefix=off"));
        picker.runOn = new QComboBox(configs);
        picker.runOn->setToolTip(tr("Where this configuration runs: as the chats (File ▸ Run on), on the CPU, or on "
                                    "a GPU; A and B on different backends measure one against the other"));
        picker.gpuLayers = new QSpinBox(configs);
        picker.gpuLayers->setRange(kGpuLayersThatFit, 4096);
        picker.gpuLayers->setValue(kGpuLayersThatFit);
        picker.gpuLayers->setPrefix(tr("GPU layers: "));
        picker.gpuLayers->setSpecialValueText(tr("GPU layers: default"));
        picker.gpuLayers->setToolTip(tr("How many of the model's layers run on the GPU, the rest on the CPU; default: "
                                        "the chats' count when run as the chats, else as many as fit"));
        auto* row = new QHBoxLayout;
        row->addWidget(picker.preset);
        row->addWidget(picker.text, 1);
        row->addWidget(picker.runOn);
        row->addWidget(picker.gpuLayers);
        connect(picker.runOn, &QComboBox::currentIndexChanged, this, [this, side] {
            ConfigPicker& p = m_pickers[size_t(side)];
            p.gpuLayers->setEnabled(p.runOn->currentData().toInt() != kRunOnCpu);
        });
        configForm->addRow(side == 0 ? tr("A") : tr("B"), row);
        connect(picker.preset, &QComboBox::activated, this, [this, side] { applyPreset(side); });
    }
    setDevices({});
    m_pickers[0].preset->setCurrentIndex(int(Preset::Baseline));
    m_pickers[1].preset->setCurrentIndex(int(Preset::Current));
    applyPreset(0);
    applyPreset(1);
    layout->addWidget(configs);

    // Defaults small enough to finish in seconds on the default model.
    auto* workload = new QGroupBox(tr("Workload (greedy, clients in a closed loop)"), this);
    auto* workloadForm = new QFormLayout(workload);
    const auto spin = [workload](int low, int high, int value) {
        auto* box = new QSpinBox(workload);
        box->setRange(low, high);
        box->setValue(value);
        return box;
    };
    m_requests = spin(1, 10000, 8);
    m_promptLength = spin(2, 1 << 20, 32);
    m_genLength = spin(1, 1 << 20, 16);
    m_concurrency = spin(1, 4096, 4);
    m_sharedPrefix = new QDoubleSpinBox(workload);
    m_sharedPrefix->setRange(0, 1);
    m_sharedPrefix->setSingleStep(0.1);
    m_sharedPrefix->setValue(0.5);
    workloadForm->addRow(tr("Requests"), m_requests);
    workloadForm->addRow(tr("Prompt tokens"), m_promptLength);
    workloadForm->addRow(tr("Generated tokens"), m_genLength);
    workloadForm->addRow(tr("Concurrent clients"), m_concurrency);
    workloadForm->addRow(tr("Shared prefix (fraction of the prompt)"), m_sharedPrefix);
    layout->addWidget(workload);

    auto* buttons = new QHBoxLayout;
    m_runButton = new QPushButton(tr("Run"), this);
    m_cancelButton = new QPushButton(tr("Cancel"), this);
    m_csvButton = new QPushButton(tr("Export CSV…"), this);
    m_jsonButton = new QPushButton(tr("Export JSON…"), this);
    m_progress = new QProgressBar(this);
    m_timeOperations = new QCheckBox(tr("Time each operation"), this);
    m_timeOperations->setToolTip(tr("Then run A and B once more each, timing every operation of the forward pass "
                                    "alone (on a GPU each waits for the device): where one configuration spends "
                                    "its time and the other saves it. The table's numbers come from the runs "
                                    "before, not these."));
    buttons->addWidget(m_runButton);
    buttons->addWidget(m_cancelButton);
    buttons->addWidget(m_timeOperations);
    buttons->addWidget(m_progress, 1);
    buttons->addWidget(m_csvButton);
    buttons->addWidget(m_jsonButton);
    layout->addLayout(buttons);
    connect(m_runButton, &QPushButton::clicked, this, &CompareView::run);
    connect(m_cancelButton, &QPushButton::clicked, this, &CompareView::cancel);
    connect(m_csvButton, &QPushButton::clicked, this, [this] { askExport(false); });
    connect(m_jsonButton, &QPushButton::clicked, this, [this] { askExport(true); });
    m_status = new QLabel(this);
    m_status->setWordWrap(true);
    layout->addWidget(m_status);

    m_table = new QTableWidget(3, kColumns, this);
    for (int c = 0; c < kColumns; ++c) m_table->setHorizontalHeaderItem(c, new QTableWidgetItem(tr(kHeaders[c])));
    m_table->setVerticalHeaderLabels({tr("A"), tr("B"), tr("B/A")});
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    layout->addWidget(m_table);

    m_chart = new QCustomPlot(this);
    setupCompareChart(m_chart);
    layout->addWidget(m_chart, 1);

    m_opTable = new QTableWidget(0, 4, this);
    m_opTable->setHorizontalHeaderLabels({tr("operation"), tr("A µs/token"), tr("B µs/token"), tr("B/A")});
    m_opTable->verticalHeader()->setVisible(false);
    m_opTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_opTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_opTable->setToolTip(tr("Time per generated token by operation (prompts included), each call timed alone in "
                             "one more run of A and of B"));
    m_opTable->setVisible(false);
    layout->addWidget(m_opTable);

    setModel(ModelInfo{});
    setRunning(false);
    resize(900, 720);
}

CompareView::~CompareView() {
    // The worker's run returns within one engine step of the flag.
    m_cancel->store(true);
    m_thread->quit();
    m_thread->wait();
}

void CompareView::setModel(const ModelInfo& info) {
    m_model = info.model;
    m_modelName = info.name;
    m_gpuWeights = info.gpuWeights;
    m_modelLabel->setText(m_model ? tr("Model: %1 (each run uses the model loaded when it starts)").arg(info.name)
                                  : tr("No model is loaded."));
    setRunning(m_running);
}

void CompareView::setCurrentConfig(const runtime::OptimizationConfig& config) {
    m_current = config;
    for (int side = 0; side < 2; ++side) {
        if (m_pickers[size_t(side)].preset->currentIndex() == int(Preset::Current)) applyPreset(side);
    }
}

void CompareView::setDevices(const CudaDeviceList& devices) {
    for (ConfigPicker& picker : m_pickers) {
        const int chosen = picker.runOn->count() > 0 ? picker.runOn->currentData().toInt() : kRunAsTheChats;
        picker.runOn->clear();
        picker.runOn->addItem(tr("as the chats"), kRunAsTheChats);
        picker.runOn->addItem(tr("CPU"), kRunOnCpu);
        for (const PagodaCudaProbe& device : devices.devices) {
            if (device.available) picker.runOn->addItem(tr("GPU %1: %2").arg(device.deviceIndex).arg(device.deviceName),
                                                        device.deviceIndex);
        }
        // A GPU that is no longer listed: as the chats.
        picker.runOn->setCurrentIndex(std::max(0, picker.runOn->findData(chosen)));
    }
}

void CompareView::setRunOn(int side, int where) {
    QComboBox* runOn = m_pickers[size_t(side)].runOn;
    runOn->setCurrentIndex(std::max(0, runOn->findData(where)));
}

void CompareView::setGpuLayers(int side, int layers) { m_pickers[size_t(side)].gpuLayers->setValue(layers); }

BackendOptions CompareView::sideBackend(int side) const {
    const ConfigPicker& picker = m_pickers[size_t(side)];
    const int where = picker.runOn->currentData().toInt();
    const int layers = picker.gpuLayers->value();
    BackendOptions options;
    if (where == kRunAsTheChats) {
        options = m_backend;
    } else if (where == kRunOnCpu) {
        options.choice = BackendChoice::Cpu;
    } else {
        options.cudaDevice = where;
    }
    if (layers != kGpuLayersThatFit) options.gpuLayers = layers;
    return options;
}

void CompareView::applyPreset(int side) {
    ConfigPicker& picker = m_pickers[size_t(side)];
    runtime::OptimizationConfig config = m_current;
    switch (Preset(picker.preset->currentIndex())) {
    case Preset::Baseline:
        config = runtime::OptimizationConfig::baseline();
        break;
    case Preset::Optimized:
        config = runtime::OptimizationConfig::optimized();
        break;
    case Preset::Current:
        break;
    }
    picker.text->setText(QString::fromStdString(runtime::formatOptimizationConfig(config)));
}

void CompareView::setWorkload(const runtime::Workload& w) {
    m_requests->setValue(w.requests);
    m_promptLength->setValue(w.promptLength);
    m_genLength->setValue(w.genLength);
    m_concurrency->setValue(w.concurrency);
    m_sharedPrefix->setValue(w.sharedPrefix);
}

runtime::Workload CompareView::workload() const {
    runtime::Workload w;
    w.requests = m_requests->value();
    w.promptLength = m_promptLength->value();
    w.genLength = m_genLength->value();
    w.concurrency = m_concurrency->value();
    w.sharedPrefix = m_sharedPrefix->value();
    return w;
}

void CompareView::setConfigText(int side, const QString& text) { m_pickers[size_t(side)].text->setText(text); }

QString CompareView::statusText() const { return m_status->text(); }

void CompareView::run() {
    if (m_running || !m_model) return;
    CompareRequest request;
    request.model = m_model;
    request.modelName = m_modelName;
    request.gpuWeights = m_gpuWeights;
    request.opTimes = m_timeOperations->isChecked();
    request.workload = workload();
    for (int side = 0; side < 2; ++side) {
        request.backends[size_t(side)] = sideBackend(side);
        auto config = runtime::parseOptimizationConfig(m_pickers[size_t(side)].text->text().toStdString());
        if (!config) {
            showFailure(tr("config %1: %2").arg(side == 0 ? QStringLiteral("A") : QStringLiteral("B"),
                                                QString::fromStdString(config.error().message)));
            return;
        }
        request.configs[size_t(side)] = *config;
    }
    m_cancel->store(false);
    m_progress->setRange(0, (request.opTimes ? 4 : 2) * request.workload.requests);
    m_progress->setValue(0);
    m_status->setText(tr("Warming up, then running A, then B…"));
    setRunning(true);
    QMetaObject::invokeMethod(m_worker, [w = m_worker, request] { w->run(request); }, Qt::QueuedConnection);
}

void CompareView::cancel() {
    if (!m_running) return;
    m_cancel->store(true);
    m_status->setText(tr("Cancelling…"));
}

void CompareView::setRunning(bool running) {
    m_running = running;
    m_runButton->setEnabled(!running && m_model != nullptr);
    m_cancelButton->setEnabled(running);
    m_csvButton->setEnabled(!running && m_outcome.has_value());
    m_jsonButton->setEnabled(!running && m_outcome.has_value());
}

void CompareView::showOutcome(const CompareOutcome& outcome) {
    m_outcome = outcome;
    const int n = outcome.workload.requests;
    const bool same = outcome.sameOutputs == n;
    const QString sameText = same ? tr("yes") : tr("no (%1/%2)").arg(outcome.sameOutputs).arg(n);
    const auto set = [this](int row, int column, const QString& text) {
        auto* item = new QTableWidgetItem(text);
        if (column != ColConfig) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        m_table->setItem(row, column, item);
    };
    const auto a = metrics(outcome.results[0]);
    const auto b = metrics(outcome.results[1]);
    for (int side = 0; side < 2; ++side) {
        set(side, ColConfig, QString::fromStdString(formatOptimizationConfig(outcome.results[size_t(side)].config)));
        set(side, ColBackend, outcome.backends[size_t(side)]);
        m_table->item(side, ColBackend)->setToolTip(outcome.backendNotes[size_t(side)]);
        const auto& values = side == 0 ? a : b;
        for (size_t m = 0; m < values.size(); ++m) {
            const int column = ColTokPerSec + int(m);
            const bool integral = column == ColConcurrent || column == ColPreemptions;
            set(side, column, QString::number(values[m], 'f', integral ? 0 : 1));
        }
        m_table->item(side, ColPeakKv)
            ->setToolTip(tr("pool %1 MiB, KV budget %2")
                             .arg(mib(outcome.results[size_t(side)].kvPoolBytes), 0, 'f', 1)
                             .arg(QString::fromStdString(outcome.results[size_t(side)].kvBudget)));
        set(side, ColSameOutput, sameText);
    }
    set(2, ColConfig, tr("B / A"));
    set(2, ColBackend, {});
    for (size_t m = 0; m < a.size(); ++m) set(2, ColTokPerSec + int(m), ratioText(b[m], a[m]));
    set(2, ColSameOutput, {});
    updateCompareChart(m_chart, outcome);
    showOperationTimes(outcome);
    m_progress->setValue(m_progress->maximum());
    const QString where = outcome.backends[0] == outcome.backends[1]
                              ? outcome.backends[0]
                              : tr("%1 (A) and %2 (B)").arg(outcome.backends[0], outcome.backends[1]);
    m_status->setText(tr("%1 on %2: %3 requests, %4 prompt + %5 generated tokens, %6 clients. B/A tok/s %7%8")
                          .arg(outcome.modelName, where)
                          .arg(n)
                          .arg(outcome.workload.promptLength)
                          .arg(outcome.workload.genLength)
                          .arg(outcome.workload.concurrency)
                          .arg(ratioText(b[0], a[0]),
                               same ? QString()
                                    : tr("; the outputs differ (KV precision, attention order or backend arithmetic)")));
    setRunning(false);
    Q_EMIT finished();
}

void CompareView::showOperationTimes(const CompareOutcome& outcome) {
    // A's operations, the longest first, then any only B ran.
    std::vector<TimedOps::Op> order;
    for (const auto& side : outcome.opTimes) {
        for (const TimedOps::OpTime& t : side) {
            if (std::ranges::find(order, t.op) == order.end()) order.push_back(t.op);
        }
    }
    const double tokens = std::max(1, outcome.workload.requests * outcome.workload.genLength);
    const auto micros = [&](size_t side, TimedOps::Op op) {
        const auto& times = outcome.opTimes[side];
        const auto found = std::ranges::find(times, op, &TimedOps::OpTime::op);
        return found == times.end() ? 0.0 : 1e6 * found->seconds / tokens;
    };
    m_opTable->setRowCount(int(order.size()) + (order.empty() ? 0 : 1));
    const auto set = [this](int row, int column, const QString& text) {
        auto* item = new QTableWidgetItem(text);
        if (column != 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        m_opTable->setItem(row, column, item);
    };
    double totals[2] = {0, 0};
    for (int row = 0; row < int(order.size()); ++row) {
        const double a = micros(0, order[size_t(row)]);
        const double b = micros(1, order[size_t(row)]);
        totals[0] += a;
        totals[1] += b;
        const std::string_view name = TimedOps::opName(order[size_t(row)]);
        set(row, 0, QString::fromUtf8(name.data(), qsizetype(name.size())));
        set(row, 1, QString::number(a, 'f', 1));
        set(row, 2, QString::number(b, 'f', 1));
        set(row, 3, ratioText(b, a));
    }
    if (!order.empty()) {
        const int row = int(order.size());
        set(row, 0, tr("total"));
        set(row, 1, QString::number(totals[0], 'f', 1));
        set(row, 2, QString::number(totals[1], 'f', 1));
        set(row, 3, ratioText(totals[1], totals[0]));
    }
    m_opTable->setVisible(!order.empty());
}

void CompareView::setTimeOperations(bool on) { m_timeOperations->setChecked(on); }

void CompareView::showFailure(const QString& message) {
    m_status->setText(message == cancelledMessage() ? tr("Cancelled.") : tr("Failed: %1").arg(message));
    setRunning(false);
    Q_EMIT failed(message);
}

QString CompareView::exportCsv(const QString& path) const {
    if (!m_outcome) return tr("no results to export");
    QString csv;
    for (size_t c = 0; c < std::size(kCsvHeaders); ++c) csv += (c ? QStringLiteral(",") : QString()) + kCsvHeaders[c];
    csv += QLatin1Char('\n');
    for (int row = 0; row < 3; ++row) {
        csv += m_table->verticalHeaderItem(row)->text();
        for (int c = 0; c < kColumns; ++c) {
            const QTableWidgetItem* item = m_table->item(row, c);
            csv += QLatin1Char(',') + csvField(item ? item->text() : QString());
        }
        csv += QLatin1Char('\n');
    }
    return writeFileAtomically(path, csv.toUtf8());
}

QString CompareView::exportJson(const QString& path) const {
    if (!m_outcome) return tr("no results to export");
    const CompareOutcome& o = *m_outcome;
    const runtime::Workload& w = o.workload;
    // "op_times": per generated token, A's and B's, when the run timed them.
    std::string opTimes;
    if (!o.opTimes[0].empty()) {
        const int tokens = w.requests * w.genLength;
        opTimes = fmt::format(",\n \"op_times\": {{\"A\": {}, \"B\": {}}}",
                              TimedOps::json(o.opTimes[0], tokens, "token"),
                              TimedOps::json(o.opTimes[1], tokens, "token"));
    }
    const std::string json = fmt::format(
        R"({{"model": "{}", "backends": ["{}", "{}"], "requests": {}, "prompt_len": {}, "gen_len": {}, "concurrency": {},
 "shared_prefix": {:.3f}, "same_outputs": {},
 "configs": [
  {},
  {}
 ]{}}}
)",
        o.modelName.toStdString(), o.backends[0].toStdString(), o.backends[1].toStdString(), w.requests,
        w.promptLength, w.genLength, w.concurrency, w.sharedPrefix, o.sameOutputs,
        runtime::workloadResultJson("A", o.results[0]), runtime::workloadResultJson("B", o.results[1]), opTimes);
    return writeFileAtomically(path, QByteArray::fromStdString(json));
}

void CompareView::askExport(bool json) {
    const QString path =
        json ? QFileDialog::getSaveFileName(this, tr("Export comparison"), QStringLiteral("pagoda-compare.json"),
                                            tr("JSON files (*.json)"))
             : QFileDialog::getSaveFileName(this, tr("Export comparison"), QStringLiteral("pagoda-compare.csv"),
                                            tr("CSV files (*.csv)"));
    if (path.isEmpty()) return;
    const QString error = json ? exportJson(path) : exportCsv(path);
    m_status->setText(error.isEmpty() ? tr("Exported to %1").arg(path) : tr("Export failed: %1").arg(error));
}

}  // namespace pagoda::ui

#include "ui/profiler_plots.h"

#include "ui/qcustomplot_include.h"

#include <algorithm>

namespace pagoda::ui {
namespace {

const QColor kBlue(0x1f, 0x77, 0xb4);
const QColor kOrange(0xff, 0x7f, 0x0e);
const QColor kGreen(0x2c, 0xa0, 0x2c);
const QColor kRed(0xd6, 0x27, 0x28);
const QColor kPurple(0x94, 0x67, 0xbd);
const QColor kGray(0x7f, 0x7f, 0x7f);
const QColor kMarker(0xc0, 0x39, 0x2b);

QColor conversationColor(int index) {
    static const QColor palette[] = {QColor(0x17, 0xbe, 0xcf), QColor(0xbc, 0xbd, 0x22), QColor(0xe3, 0x77, 0xc2),
                                     QColor(0x8c, 0x56, 0x4b), kPurple, kGreen};
    return palette[index % int(std::size(palette))];
}

// Tab titles shortened to keep the legends to a line or two.
QString legendName(const QString& title) {
    constexpr int kMaxLength = 16;
    return title.size() <= kMaxLength ? title : title.left(kMaxLength - 1) + QChar(0x2026);
}

void setupCommon(QCustomPlot* plot, const QString& title, const QString& valueLabel) {
    plot->plotLayout()->insertRow(0);
    auto* heading = new QCPTextElement(plot, title, QFont(plot->font().family(), 9, QFont::Bold));
    plot->plotLayout()->addElement(0, 0, heading);
    plot->setAccessibleName(title);
    QSharedPointer<QCPAxisTickerTime> ticker(new QCPAxisTickerTime);
    ticker->setTimeFormat(QStringLiteral("%m:%s"));
    ticker->setTickCount(3);
    ticker->setTickStepStrategy(QCPAxisTicker::tssMeetTickCount);
    plot->xAxis->setTicker(ticker);
    plot->yAxis->setLabel(valueLabel);
    plot->yAxis->setRange(0, 1);
    // The legend goes under the plot, where it hides no data.
    plot->legend->setVisible(true);
    plot->legend->setFont(QFont(plot->font().family(), 7));
    plot->legend->setBorderPen(Qt::NoPen);
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot->legend->setWrap(2);
    plot->legend->setRowSpacing(0);
    plot->legend->setColumnSpacing(6);
    plot->axisRect()->insetLayout()->take(plot->legend);
    plot->plotLayout()->addElement(2, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(2, 0.001);
    plot->setNoAntialiasingOnDrag(true);
    plot->setMinimumSize(260, 190);
}

QCPGraph* addGraph(QCustomPlot* plot, const QString& name, const QColor& color, qreal width = 1.5,
                   Qt::PenStyle style = Qt::SolidLine, QCPAxis* valueAxis = nullptr) {
    QCPGraph* graph = plot->addGraph(plot->xAxis, valueAxis ? valueAxis : plot->yAxis);
    graph->setName(name);
    graph->setPen(QPen(color, width, style));
    return graph;
}

// Whether the memory plot shows a device's memory (a bool property of the
// plot), so that it can follow the samples when the backend changes.
constexpr char kShowsDeviceMemory[] = "pagodaShowsDeviceMemory";

QString memoryTitle(bool device) {
    return device ? QObject::tr("GPU memory") : QObject::tr("Host memory (CPU backend)");
}

void addMemoryGraphs(QCustomPlot* plot, bool device) {
    plot->setProperty(kShowsDeviceMemory, device);
    if (device) {
        addGraph(plot, QObject::tr("device used"), kBlue, 2);
        addGraph(plot, QObject::tr("device total"), kGray, 1.2, Qt::DashLine);
        addGraph(plot, QObject::tr("weights"), kOrange);
        addGraph(plot, QObject::tr("KV cache"), kGreen);
        addGraph(plot, QObject::tr("activations + workspace"), kPurple);
    } else {
        addGraph(plot, QObject::tr("process RSS"), kBlue, 2);
        addGraph(plot, QObject::tr("weights (mapped)"), kOrange);
        addGraph(plot, QObject::tr("KV pool"), kGreen);
        addGraph(plot, QObject::tr("workspace"), kPurple);
    }
}

// Another model may load on another backend: the plot drops its points and
// shows the other memory.
void switchMemoryPlot(QCustomPlot* plot, bool device) {
    const QString title = memoryTitle(device);
    static_cast<QCPTextElement*>(plot->plotLayout()->element(0, 0))->setText(title);
    plot->setAccessibleName(title);
    plot->clearGraphs();
    addMemoryGraphs(plot, device);
}

// The graph given objectName `name`; null when there is none yet.
QCPGraph* graphNamed(QCustomPlot* plot, const QString& name) {
    for (int i = 0; i < plot->graphCount(); ++i) {
        if (plot->graph(i)->objectName() == name) return plot->graph(i);
    }
    return nullptr;
}

QCPGraph* conversationGraph(QCustomPlot* plot, const QString& id, const QString& title) {
    if (QCPGraph* graph = graphNamed(plot, id)) return graph;
    QCPGraph* graph = addGraph(plot, legendName(title.isEmpty() ? id : title), conversationColor(plot->graphCount() - 2));
    graph->setObjectName(id);
    return graph;
}

// The occupancy plot's line of each local layer's own pool's used blocks,
// added with the first sample that has them.
QCPGraph* localBlocksGraph(QCustomPlot* plot) {
    const QString name = QStringLiteral("kv-local-pools");
    if (QCPGraph* graph = graphNamed(plot, name)) return graph;
    QCPGraph* graph = addGraph(plot, QObject::tr("used, each local layer's pool"), kBlue, 1.5, Qt::DashLine);
    graph->setObjectName(name);
    return graph;
}

}  // namespace

void setupThroughputPlot(QCustomPlot* plot) {
    setupCommon(plot, QObject::tr("Throughput"), QObject::tr("tokens/s"));
    addGraph(plot, QObject::tr("all tabs"), kBlue, 2.5);
    addGraph(plot, QObject::tr("prompt"), kGray, 1.2, Qt::DashLine);
}

void setupKvOccupancyPlot(QCustomPlot* plot) {
    setupCommon(plot, QObject::tr("KV cache occupancy"), QObject::tr("blocks"));
    // Stacked: each graph is the running total, filled down to the one below.
    QCPGraph* used = addGraph(plot, QObject::tr("used"), kBlue);
    used->setBrush(QColor(0x1f, 0x77, 0xb4, 150));
    QCPGraph* cached = addGraph(plot, QObject::tr("cached"), kOrange);
    cached->setBrush(QColor(0xff, 0x7f, 0x0e, 120));
    cached->setChannelFillGraph(used);
    QCPGraph* free = addGraph(plot, QObject::tr("free"), kGray);
    free->setBrush(QColor(0xbb, 0xbb, 0xbb, 80));
    free->setChannelFillGraph(cached);
    plot->yAxis2->setVisible(true);
    plot->yAxis2->setLabel(QObject::tr("slot utilization %"));
    plot->yAxis2->setRange(0, 105);
    addGraph(plot, QObject::tr("slot utilization"), kGreen, 1.5, Qt::DotLine, plot->yAxis2);
}

void setupEvictionsPlot(QCustomPlot* plot) {
    setupCommon(plot, QObject::tr("Block evictions by cause"), QObject::tr("blocks/s"));
    addGraph(plot, QObject::tr("LRU"), kBlue);
    addGraph(plot, QObject::tr("FIFO"), kOrange);
    addGraph(plot, QObject::tr("window"), kGreen);
    addGraph(plot, QObject::tr("preemption"), kRed);
}

void setupMemoryPlot(QCustomPlot* plot) {
    setupCommon(plot, memoryTitle(false), QObject::tr("MiB"));
    addMemoryGraphs(plot, false);
}

void setupBatchPlot(QCustomPlot* plot) {
    setupCommon(plot, QObject::tr("Batch"), QObject::tr("sequences"));
    addGraph(plot, QObject::tr("batch size (running)"), kBlue, 2)->setLineStyle(QCPGraph::lsStepLeft);
    addGraph(plot, QObject::tr("waiting queue"), kRed)->setLineStyle(QCPGraph::lsStepLeft);
}

void setupStepLatencyPlot(QCustomPlot* plot) {
    setupCommon(plot, QObject::tr("Step latency (forward pass)"), QObject::tr("ms per step"));
    addGraph(plot, QObject::tr("prefill"), kOrange, 2);
    addGraph(plot, QObject::tr("decode"), kBlue, 2);
}

void setupPlot(PlotKind kind, QCustomPlot* plot) {
    switch (kind) {
    case PlotKind::Throughput:
        return setupThroughputPlot(plot);
    case PlotKind::KvOccupancy:
        return setupKvOccupancyPlot(plot);
    case PlotKind::Evictions:
        return setupEvictionsPlot(plot);
    case PlotKind::Memory:
        return setupMemoryPlot(plot);
    case PlotKind::Batch:
        return setupBatchPlot(plot);
    case PlotKind::StepLatency:
        return setupStepLatencyPlot(plot);
    }
}

void addSample(PlotKind kind, QCustomPlot* plot, const Sample& s, const QHash<QString, QString>& titles) {
    const double t = s.t;
    switch (kind) {
    case PlotKind::Throughput:
        plot->graph(0)->addData(t, s.generatedPerSecond);
        plot->graph(1)->addData(t, s.promptPerSecond);
        for (auto it = s.generatedPerSecondByConversation.begin(); it != s.generatedPerSecondByConversation.end(); ++it) {
            conversationGraph(plot, it.key(), titles.value(it.key()))->addData(t, it.value());
        }
        break;
    case PlotKind::KvOccupancy:
        plot->graph(0)->addData(t, s.blocksUsed);
        plot->graph(1)->addData(t, s.blocksUsed + s.blocksCached);
        plot->graph(2)->addData(t, s.blocksUsed + s.blocksCached + s.blocksFree);
        plot->graph(3)->addData(t, s.slotUtilization * 100);
        if (s.localBlocks) localBlocksGraph(plot)->addData(t, (*s.localBlocks)[0]);
        break;
    case PlotKind::Evictions:
        for (int c = 0; c < kEvictionCauses; ++c) plot->graph(c)->addData(t, s.evictionsPerSecond[size_t(c)]);
        break;
    case PlotKind::Memory:
        if (s.device.has_value() != plot->property(kShowsDeviceMemory).toBool()) {
            switchMemoryPlot(plot, s.device.has_value());
        }
        if (s.device) {
            plot->graph(0)->addData(t, s.device->usedMiB);
            plot->graph(1)->addData(t, s.device->totalMiB);
            plot->graph(2)->addData(t, s.device->weightsMiB);
            plot->graph(3)->addData(t, s.device->kvCacheMiB);
            plot->graph(4)->addData(t, s.device->activationsMiB);
        } else {
            plot->graph(0)->addData(t, s.hostRssMiB);
            plot->graph(1)->addData(t, s.weightsMiB);
            plot->graph(2)->addData(t, s.kvPoolMiB);
            plot->graph(3)->addData(t, s.workspaceMiB);
        }
        break;
    case PlotKind::Batch:
        plot->graph(0)->addData(t, s.running);
        plot->graph(1)->addData(t, s.waiting);
        break;
    case PlotKind::StepLatency:
        plot->graph(0)->addData(t, s.prefillMsPerStep);
        plot->graph(1)->addData(t, s.decodeMsPerStep);
        break;
    }
}

void scrollPlot(QCustomPlot* plot, double from, double to, const std::deque<ConfigChange>& changes) {
    double top = 0;
    for (int i = 0; i < plot->graphCount(); ++i) {
        QCPGraph* graph = plot->graph(i);
        graph->data()->removeBefore(from);
        if (graph->valueAxis() != plot->yAxis) continue;
        bool found = false;
        const QCPRange range = graph->getValueRange(found, QCP::sdBoth, QCPRange(from, to));
        if (found) top = std::max(top, range.upper);
    }
    plot->xAxis->setRange(from, std::max(to, from + 1));
    plot->yAxis->setRange(0, top > 0 ? top * 1.15 : 1);

    plot->clearItems();
    for (const ConfigChange& change : changes) {
        if (change.t < from) continue;
        auto* line = new QCPItemStraightLine(plot);
        line->setPen(QPen(kMarker, 1, Qt::DashLine));
        line->point1->setCoords(change.t, 0);
        line->point2->setCoords(change.t, 1);
        auto* label = new QCPItemText(plot);
        label->setText(change.label);
        label->setColor(kMarker);
        label->setFont(QFont(plot->font().family(), 7));
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
        label->position->setTypeX(QCPItemPosition::ptPlotCoords);
        label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
        label->position->setCoords(change.t, 0.02);
        label->setPadding(QMargins(3, 0, 0, 0));
    }
    plot->replot(QCustomPlot::rpQueuedReplot);
}

void renameConversation(QCustomPlot* plot, const QString& conversationId, const QString& title) {
    for (int i = 0; i < plot->graphCount(); ++i) {
        if (plot->graph(i)->objectName() == conversationId) plot->graph(i)->setName(legendName(title));
    }
}

}  // namespace pagoda::ui

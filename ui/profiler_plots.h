#pragma once
// The profiler's plots, one setupXxxPlot(QCustomPlot*) each (axes, graphs,
// legend), fed with the same three steps: addSample (addData per graph),
// then scrollPlot (drop points before the window, set the ranges, draw the
// configuration-change markers, queued replot).

#include <QHash>
#include <QString>

#include <deque>

#include "ui/stats_history.h"

class QCustomPlot;

namespace pagoda::ui {

enum class PlotKind { Throughput, KvOccupancy, Evictions, Memory, Batch, StepLatency };
inline constexpr int kPlotKinds = 6;

void setupThroughputPlot(QCustomPlot* plot);
void setupKvOccupancyPlot(QCustomPlot* plot);
void setupEvictionsPlot(QCustomPlot* plot);
void setupMemoryPlot(QCustomPlot* plot);
void setupBatchPlot(QCustomPlot* plot);
void setupStepLatencyPlot(QCustomPlot* plot);
void setupPlot(PlotKind kind, QCustomPlot* plot);

// Appends the sample's points. conversationTitles names the per-tab
// throughput lines (conversation id -> tab title). The memory plot shows
// the device's memory for samples that have it, the host's otherwise,
// switching (and dropping its points) when that changes.
void addSample(PlotKind kind, QCustomPlot* plot, const Sample& sample,
               const QHash<QString, QString>& conversationTitles);
// Drops points before `from`, shows [from, to], fits the value axis from 0,
// draws a labelled vertical line at each config change in the window, and
// queues a replot.
void scrollPlot(QCustomPlot* plot, double from, double to, const std::deque<ConfigChange>& changes);
// Renames the per-tab throughput line of `conversationId`.
void renameConversation(QCustomPlot* plot, const QString& conversationId, const QString& title);

}  // namespace pagoda::ui

#pragma once
// The profiler dock's contents: six live plots (throughput, KV occupancy,
// evictions, memory — the GPU's on a device backend, else the host's —,
// batch, step latency) over a rolling window of 30 s, 2 min or 10 min, with
// pause and PNG / CSV export; below them, the time by operation
// (OperationTimesView), switched on there.

#include <QHash>
#include <QWidget>

#include <array>

#include "ui/profiler_plots.h"
#include "ui/stats_history.h"

class QComboBox;
class QGridLayout;
class QCustomPlot;
class QToolButton;

namespace pagoda::ui {

class OperationTimesView;

class ProfilerView : public QWidget {
    Q_OBJECT
public:
    explicit ProfilerView(QWidget* parent = nullptr);

    QSize sizeHint() const override { return {640, 720}; }

    QCustomPlot* plot(PlotKind kind) const { return m_plots[size_t(kind)]; }
    OperationTimesView* operations() const { return m_operations; }
    const StatsHistory& history() const { return m_history; }
    double windowSeconds() const;
    void setWindowSeconds(double seconds);
    bool isPaused() const;
    void setPaused(bool paused);

    // Error message, empty on success.
    QString exportPng(const QString& path) const;
    QString exportCsv(const QString& path) const;

public Q_SLOTS:
    void addStats(const pagoda::ui::StatsUpdate& update);
    void setConversationTitle(const QString& conversationId, const QString& title);

Q_SIGNALS:
    void windowChanged(double seconds);
    void exportFailed(const QString& message);
    // The time by operation's switch (Engine::timeOperations).
    void operationTimingToggled(bool on);

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    // The plots in as many columns (1 to 3) as the width allows.
    void arrangePlots(int columns);
    void rebuild();
    void scrollAll();
    void askExportPng();
    void askExportCsv();

    StatsHistory m_history;
    QHash<QString, QString> m_titles;
    std::array<QCustomPlot*, kPlotKinds> m_plots{};
    QWidget* m_grid;
    int m_columns = 0;
    QComboBox* m_window;
    QToolButton* m_pause;
    OperationTimesView* m_operations;
};

}  // namespace pagoda::ui

#pragma once
// The profiler's time by operation: a switch that has the engine time every
// call of its forward passes (Engine::timeOperations), and a table of the
// result (StatsSnapshot::operations): each operation's calls per step,
// microseconds per token carried and share of the timed total.

#include <QWidget>

#include "engine/runtime/metrics.h"

class QCheckBox;
class QLabel;
class QTableWidget;

namespace pagoda::ui {

class OperationTimesView : public QWidget {
    Q_OBJECT
public:
    enum Column { ColOperation, ColCallsPerStep, ColUsPerToken, ColShare, kColumns };

    explicit OperationTimesView(QWidget* parent = nullptr);

    bool isTiming() const;
    void setTiming(bool on);
    const QTableWidget* table() const { return m_table; }
    QString summary() const;

public Q_SLOTS:
    void setOperations(const pagoda::runtime::OperationTimes& operations);

Q_SIGNALS:
    void timingToggled(bool on);

private:
    QCheckBox* m_timing;
    QLabel* m_summary;
    QTableWidget* m_table;
};

}  // namespace pagoda::ui

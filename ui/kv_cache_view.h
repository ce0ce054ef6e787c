#pragma once
// The KV cache dock: a summary line (layout, occupancy, slot utilization,
// prefix hit rate, how the budget was sized), the block map, and its legend.

#include <QWidget>

#include "engine/runtime/metrics.h"

class QLabel;

namespace pagoda::ui {

class BlockMapWidget;

class KvCacheView : public QWidget {
    Q_OBJECT
public:
    explicit KvCacheView(QWidget* parent = nullptr);

    QSize sizeHint() const override { return {600, 230}; }

    BlockMapWidget* blockMap() const { return m_map; }
    QString summary() const;

public Q_SLOTS:
    void setStats(const pagoda::runtime::StatsSnapshot& snapshot);

private:
    QLabel* m_summary;
    BlockMapWidget* m_map;
};

}  // namespace pagoda::ui

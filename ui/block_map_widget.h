#pragma once
// The KV cache, block by block: one cell per physical block, colored by
// state (free, cached prefix, used) and, when used, by the sequence that
// owns it; shared blocks (more than one reference) carry a dark dot. When
// the pool has more blocks than the widget has room for at 3 px a cell,
// one cell stands for several neighbouring blocks (used wins over cached
// over free). Hover a cell for its details.

#include <QHash>
#include <QString>
#include <QWidget>

#include <vector>

#include "engine/cache/block_stats.h"

namespace pagoda::ui {

class BlockMapWidget : public QWidget {
    Q_OBJECT
public:
    explicit BlockMapWidget(QWidget* parent = nullptr);

    void setBlocks(std::vector<BlockMapEntry> blocks);
    // What the tooltip calls a sequence ("Chat 2"); sequences without one go by number.
    void setOwnerNames(QHash<qint64, QString> names) { m_ownerNames = std::move(names); }
    const QHash<qint64, QString>& ownerNames() const { return m_ownerNames; }
    const std::vector<BlockMapEntry>& blocks() const { return m_blocks; }

    static QColor freeColor();
    static QColor cachedColor();
    static QColor ownerColor(SeqId owner);

    QSize sizeHint() const override { return {320, 200}; }
    QSize minimumSizeHint() const override { return {120, 60}; }

protected:
    void paintEvent(QPaintEvent* event) override;
    bool event(QEvent* event) override;

private:
    struct Geometry {
        int cell = 0;       // pixels per side
        int columns = 0;
        int perCell = 1;    // blocks a cell stands for
        int cells = 0;
    };
    Geometry geometry() const;
    // The block a cell shows (the first used one, else cached, else its first).
    const BlockMapEntry& representative(int cell, const Geometry& g) const;

    std::vector<BlockMapEntry> m_blocks;
    QHash<qint64, QString> m_ownerNames;
};

}  // namespace pagoda::ui

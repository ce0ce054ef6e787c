#include "ui/block_map_widget.h"

#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace pagoda::ui {
namespace {

constexpr int kMinCell = 3;
constexpr int kMaxCell = 24;

int stateRank(BlockState state) {
    switch (state) {
    case BlockState::Used:
        return 2;
    case BlockState::Cached:
        return 1;
    case BlockState::Free:
        return 0;
    }
    return 0;
}

}  // namespace

BlockMapWidget::BlockMapWidget(QWidget* parent) : QWidget(parent) {
    setAccessibleName(tr("KV block map"));
    setAccessibleDescription(tr("One cell per KV cache block, colored by state and owning sequence"));
    setMouseTracking(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

QColor BlockMapWidget::freeColor() { return {0xe4, 0xe4, 0xe4}; }
QColor BlockMapWidget::cachedColor() { return {0x9e, 0xa7, 0xb3}; }

QColor BlockMapWidget::ownerColor(SeqId owner) {
    // Golden-ratio hue steps keep neighbouring sequence ids apart.
    const double hue = std::fmod(0.07 + double(owner) * 0.618033988749895, 1.0);
    return QColor::fromHsvF(float(hue), 0.65f, 0.88f);
}

void BlockMapWidget::setBlocks(std::vector<BlockMapEntry> blocks) {
    m_blocks = std::move(blocks);
    update();
}

BlockMapWidget::Geometry BlockMapWidget::geometry() const {
    Geometry g;
    const int n = int(m_blocks.size());
    if (n == 0 || width() < kMinCell || height() < kMinCell) return g;
    const double area = double(width()) * double(height());
    g.cell = std::clamp(int(std::sqrt(area / n)), kMinCell, kMaxCell);
    const auto rowsFor = [&](int cell, int cells) { return (cells + width() / cell - 1) / (width() / cell); };
    while (g.cell > kMinCell && rowsFor(g.cell, n) * g.cell > height()) --g.cell;
    g.columns = std::max(1, width() / g.cell);
    const int capacity = g.columns * std::max(1, height() / g.cell);
    g.perCell = std::max(1, (n + capacity - 1) / capacity);
    g.cells = (n + g.perCell - 1) / g.perCell;
    return g;
}

const BlockMapEntry& BlockMapWidget::representative(int cell, const Geometry& g) const {
    const size_t first = size_t(cell) * size_t(g.perCell);
    const size_t last = std::min(m_blocks.size(), first + size_t(g.perCell));
    size_t best = first;
    for (size_t i = first; i < last; ++i) {
        if (stateRank(m_blocks[i].state) > stateRank(m_blocks[best].state)) best = i;
    }
    return m_blocks[best];
}

void BlockMapWidget::paintEvent(QPaintEvent*) {
    QPainter painter(this);
    painter.fillRect(rect(), palette().base());
    const Geometry g = geometry();
    if (g.cells == 0) {
        painter.setPen(palette().color(QPalette::PlaceholderText));
        painter.drawText(rect(), Qt::AlignCenter, tr("No KV cache yet"));
        return;
    }
    const int gap = g.cell >= 6 ? 1 : 0;
    for (int c = 0; c < g.cells; ++c) {
        const BlockMapEntry& b = representative(c, g);
        const QRect r((c % g.columns) * g.cell, (c / g.columns) * g.cell, g.cell - gap, g.cell - gap);
        const QColor color = b.state == BlockState::Used     ? ownerColor(b.owner)
                             : b.state == BlockState::Cached ? cachedColor()
                                                             : freeColor();
        painter.fillRect(r, color);
        if (b.state == BlockState::Used && b.refs > 1 && g.cell >= 6) {
            const int d = std::max(2, g.cell / 3);
            painter.fillRect(QRect(r.center() - QPoint(d / 2, d / 2), QSize(d, d)), QColor(0x20, 0x20, 0x20));
        }
    }
}

bool BlockMapWidget::event(QEvent* event) {
    if (event->type() != QEvent::ToolTip) return QWidget::event(event);
    const auto* help = static_cast<QHelpEvent*>(event);
    const Geometry g = geometry();
    if (g.cells == 0 || help->pos().x() >= g.columns * g.cell) {
        QToolTip::hideText();
        return true;
    }
    const int cell = (help->pos().y() / g.cell) * g.columns + help->pos().x() / g.cell;
    if (cell >= g.cells) {
        QToolTip::hideText();
        return true;
    }
    const BlockMapEntry& b = representative(cell, g);
    const int first = cell * g.perCell;
    const int last = std::min(int(m_blocks.size()), first + g.perCell) - 1;
    QString where = first == last ? tr("Block %1").arg(first) : tr("Blocks %1–%2").arg(first).arg(last);
    QString what;
    switch (b.state) {
    case BlockState::Free:
        what = tr("free");
        break;
    case BlockState::Cached:
        what = tr("cached prefix (unreferenced, evictable)");
        break;
    case BlockState::Used: {
        const QString name = m_ownerNames.value(b.owner);
        const QString owner = name.isEmpty() ? tr("sequence %1").arg(b.owner) : tr("“%1” (sequence %2)").arg(name).arg(b.owner);
        what = b.refs > 1 ? tr("used by %1 and %2 more (shared prefix)").arg(owner).arg(b.refs - 1)
                          : tr("used by %1").arg(owner);
        break;
    }
    }
    QToolTip::showText(help->globalPos(), where + QStringLiteral(": ") + what, this);
    return true;
}

}  // namespace pagoda::ui

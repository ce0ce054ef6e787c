#include "ui/kv_cache_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QVBoxLayout>

#include "ui/block_map_widget.h"

namespace pagoda::ui {
namespace {

QWidget* legendItem(const QColor& color, const QString& text) {
    auto* item = new QLabel(QStringLiteral("<span style=\"color:%1\">■</span> %2").arg(color.name(), text));
    item->setTextFormat(Qt::RichText);
    return item;
}

}  // namespace

KvCacheView::KvCacheView(QWidget* parent) : QWidget(parent), m_summary(new QLabel), m_map(new BlockMapWidget) {
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_summary->setAccessibleName(tr("KV cache summary"));
    auto* legend = new QHBoxLayout;
    legend->addWidget(legendItem(BlockMapWidget::freeColor(), tr("free")));
    legend->addWidget(legendItem(BlockMapWidget::cachedColor(), tr("cached prefix")));
    legend->addWidget(legendItem(BlockMapWidget::ownerColor(1), tr("used (color = sequence)")));
    legend->addWidget(legendItem(QColor(0x20, 0x20, 0x20), tr("dot: shared")));
    legend->addStretch(1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_summary);
    layout->addWidget(m_map, 1);
    layout->addLayout(legend);
    m_summary->setText(tr("No model loaded"));
}

QString KvCacheView::summary() const { return m_summary->text(); }

void KvCacheView::setStats(const runtime::StatsSnapshot& s) {
    const BlockStats& b = s.kv.blocks;
    const QLocale c = QLocale::c();
    const bool paged = s.kv.allocation == KvAllocation::Paged;
    m_summary->setText(tr("%1 KV · %2 blocks × %3 tokens (%4 KiB each) · used %5, cached %6, free %7 · "
                          "%8 sequences · slot utilization %9% · prefix hits %10% · KV budget %11 · context %12 "
                          "tokens")
                           .arg(paged ? tr("Paged") : tr("Contiguous"))
                           .arg(b.blocksTotal)
                           .arg(s.kv.blockSize)
                           .arg(s.kv.bytesPerBlock >> 10)
                           .arg(b.blocksUsed)
                           .arg(b.blocksCached)
                           .arg(b.blocksFree)
                           .arg(b.sequences)
                           .arg(c.toString(b.slotUtilization() * 100, 'f', 0))
                           .arg(c.toString(b.prefixHitRate() * 100, 'f', 0))
                           .arg(QString::fromStdString(s.kv.budget))
                           .arg(s.contextLimit));
    if (s.kv.localLayers > 0) {
        const BlockStats& l = s.kv.localBlocks;
        m_summary->setText(m_summary->text() +
                           tr(" · the map: the global layers · %1 local layers: %2 blocks each (windows), used %3, "
                              "cached %4, free %5")
                               .arg(s.kv.localLayers)
                               .arg(l.blocksTotal)
                               .arg(l.blocksUsed)
                               .arg(l.blocksCached)
                               .arg(l.blocksFree));
    }
    m_map->setBlocks(s.kv.blockMap);
}

}  // namespace pagoda::ui

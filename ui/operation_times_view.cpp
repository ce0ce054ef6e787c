#include "ui/operation_times_view.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QSignalBlocker>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <string_view>

namespace pagoda::ui {
namespace {

QTableWidgetItem* cell(const QString& text, bool number) {
    auto* item = new QTableWidgetItem(text);
    if (number) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

QString fixed(double value, int decimals) { return QLocale::c().toString(value, 'f', decimals); }

}  // namespace

OperationTimesView::OperationTimesView(QWidget* parent)
    : QWidget(parent),
      m_timing(new QCheckBox(tr("Time each &operation"))),
      m_summary(new QLabel),
      m_table(new QTableWidget(0, kColumns)) {
    m_timing->setToolTip(
        tr("Times every call of the engine's forward passes. Each call then waits for the backend and decode "
           "steps run without CUDA graphs, so the engine is slower while this is on; the outputs are the same."));
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_table->setHorizontalHeaderLabels({tr("Operation"), tr("Calls/step"), tr("µs/token"), tr("Share")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->hide();
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionMode(QAbstractItemView::NoSelection);
    m_table->setAccessibleName(tr("Time by operation"));
    // Room for about eight operations; the plots keep the rest.
    m_table->setMaximumHeight(m_table->verticalHeader()->defaultSectionSize() * 9 + 4);
    m_table->hide();

    auto* bar = new QHBoxLayout;
    bar->addWidget(m_timing);
    bar->addWidget(m_summary, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(m_table);

    connect(m_timing, &QCheckBox::toggled, this, &OperationTimesView::timingToggled);
}

bool OperationTimesView::isTiming() const { return m_timing->isChecked(); }

void OperationTimesView::setTiming(bool on) { m_timing->setChecked(on); }

QString OperationTimesView::summary() const { return m_summary->text(); }

void OperationTimesView::setOperations(const runtime::OperationTimes& operations) {
    {
        const QSignalBlocker quiet(m_timing);
        m_timing->setChecked(operations.on);
    }
    m_table->setVisible(!operations.times.empty());
    if (operations.times.empty()) {
        m_summary->setText(operations.on ? tr("waiting for a step") : QString());
        m_table->setRowCount(0);
        return;
    }
    double total = 0;
    for (const TimedOps::OpTime& t : operations.times) total += t.seconds;
    const double steps = double(std::max<int64_t>(operations.steps, 1));
    const double tokens = double(std::max<int64_t>(operations.tokens, 1));
    QStringList parts;  // a model split by layer: each backend's share
    for (const TimedOps::PartTime& part : operations.parts) {
        parts << tr("%1 %2%").arg(QString::fromStdString(part.backend), fixed(total > 0 ? 100 * part.seconds / total : 0, 1));
    }
    m_summary->setText(tr("%1 steps, %2 tokens%3: %4 ms per step%5")
                           .arg(operations.steps)
                           .arg(operations.tokens)
                           .arg(operations.on ? QString() : tr(" (stopped)"))
                           .arg(fixed(1e3 * total / steps, 2))
                           .arg(parts.isEmpty() ? QString() : tr(" (%1)").arg(parts.join(QStringLiteral(", ")))));
    m_table->setRowCount(int(operations.times.size()));
    for (int row = 0; row < int(operations.times.size()); ++row) {
        const TimedOps::OpTime& t = operations.times[size_t(row)];
        const std::string_view name = TimedOps::opName(t.op);
        m_table->setItem(row, ColOperation, cell(QString::fromUtf8(name.data(), qsizetype(name.size())), false));
        m_table->setItem(row, ColCallsPerStep, cell(fixed(double(t.calls) / steps, 1), true));
        m_table->setItem(row, ColUsPerToken, cell(fixed(1e6 * t.seconds / tokens, 1), true));
        m_table->setItem(row, ColShare, cell(fixed(total > 0 ? 100 * t.seconds / total : 0, 1) + "%", true));
    }
}

}  // namespace pagoda::ui

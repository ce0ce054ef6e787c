#include "ui/profiler_view.h"

#include "ui/qcustomplot_include.h"

#include <QComboBox>
#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QScrollArea>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/conversation_store.h"
#include "ui/operation_times_view.h"

namespace pagoda::ui {
namespace {

constexpr int kPlotMinWidth = 300;

QToolButton* toolButton(const QString& text, const QString& icon, const QString& tip) {
    auto* b = new QToolButton;
    b->setText(text);
    b->setIcon(QIcon(icon));
    b->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    b->setToolTip(tip);
    b->setAccessibleName(QString(text).remove('&'));
    return b;
}

}  // namespace

ProfilerView::ProfilerView(QWidget* parent)
    : QWidget(parent),
      m_grid(new QWidget),
      m_window(new QComboBox),
      m_pause(nullptr),
      m_operations(new OperationTimesView) {
    m_window->addItem(tr("30 s"), 30.0);
    m_window->addItem(tr("2 min"), 120.0);
    m_window->addItem(tr("10 min"), 600.0);
    m_window->setCurrentIndex(1);
    m_window->setToolTip(tr("How much history the plots show"));
    m_window->setAccessibleName(tr("Plot window"));
    m_pause = toolButton(tr("&Pause"), QStringLiteral(":/icons/pause.png"),
                         tr("Freeze the plots to inspect them; statistics keep being recorded"));
    m_pause->setCheckable(true);
    auto* png = toolButton(tr("Export PN&G…"), QStringLiteral(":/icons/export.png"), tr("Save the plots as one image"));
    auto* csv = toolButton(tr("Export &CSV…"), QStringLiteral(":/icons/export.png"),
                           tr("Save every recorded sample (up to 10 minutes) as CSV"));
    auto* windowLabel = new QLabel(tr("&Window:"));
    windowLabel->setBuddy(m_window);

    auto* bar = new QHBoxLayout;
    bar->addWidget(windowLabel);
    bar->addWidget(m_window);
    bar->addWidget(m_pause);
    bar->addStretch(1);
    bar->addWidget(png);
    bar->addWidget(csv);

    auto* grid = new QGridLayout(m_grid);
    grid->setContentsMargins(0, 0, 0, 0);
    grid->setSpacing(2);
    for (int k = 0; k < kPlotKinds; ++k) {
        auto* plot = new QCustomPlot;
        setupPlot(PlotKind(k), plot);
        m_plots[size_t(k)] = plot;
    }
    arrangePlots(3);
    auto* scroll = new QScrollArea;
    scroll->setWidget(m_grid);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(2, 2, 2, 2);
    layout->addLayout(bar);
    layout->addWidget(scroll, 1);
    layout->addWidget(m_operations);

    connect(m_window, &QComboBox::currentIndexChanged, this, [this] {
        rebuild();
        Q_EMIT windowChanged(windowSeconds());
    });
    connect(m_pause, &QToolButton::toggled, this, [this](bool paused) {
        m_pause->setText(paused ? tr("&Resume") : tr("&Pause"));
        if (!paused) rebuild();
    });
    connect(m_operations, &OperationTimesView::timingToggled, this, &ProfilerView::operationTimingToggled);
    connect(png, &QToolButton::clicked, this, &ProfilerView::askExportPng);
    connect(csv, &QToolButton::clicked, this, &ProfilerView::askExportCsv);
}

void ProfilerView::resizeEvent(QResizeEvent* event) {
    QWidget::resizeEvent(event);
    arrangePlots(std::clamp(width() / kPlotMinWidth, 1, 3));
}

void ProfilerView::arrangePlots(int columns) {
    if (columns == m_columns) return;
    m_columns = columns;
    auto* grid = static_cast<QGridLayout*>(m_grid->layout());
    for (QCustomPlot* plot : m_plots) grid->removeWidget(plot);
    for (int k = 0; k < kPlotKinds; ++k) grid->addWidget(m_plots[size_t(k)], k / columns, k % columns);
}

double ProfilerView::windowSeconds() const { return m_window->currentData().toDouble(); }

void ProfilerView::setWindowSeconds(double seconds) {
    for (int i = 0; i < m_window->count(); ++i) {
        if (m_window->itemData(i).toDouble() == seconds) m_window->setCurrentIndex(i);
    }
}

bool ProfilerView::isPaused() const { return m_pause->isChecked(); }
void ProfilerView::setPaused(bool paused) { m_pause->setChecked(paused); }

void ProfilerView::addStats(const StatsUpdate& update) {
    const Sample& sample = m_history.add(update);
    if (isPaused()) return;
    m_operations->setOperations(update.snapshot.operations);
    for (int k = 0; k < kPlotKinds; ++k) addSample(PlotKind(k), m_plots[size_t(k)], sample, m_titles);
    scrollAll();
}

void ProfilerView::setConversationTitle(const QString& conversationId, const QString& title) {
    m_titles[conversationId] = title;
    renameConversation(plot(PlotKind::Throughput), conversationId, title);
}

// The window's right edge is the latest sample; until a whole window has
// passed, the plots fill from the left.
void ProfilerView::scrollAll() {
    const double to = std::max(m_history.latest(), windowSeconds());
    const double from = to - windowSeconds();
    for (QCustomPlot* plot : m_plots) scrollPlot(plot, from, to, m_history.changes());
}

// Refills every graph from the history (after a pause or a wider window).
void ProfilerView::rebuild() {
    for (QCustomPlot* plot : m_plots) {
        for (int i = 0; i < plot->graphCount(); ++i) plot->graph(i)->data()->clear();
    }
    const double from = std::max(m_history.latest(), windowSeconds()) - windowSeconds();
    for (const Sample& sample : m_history.samples()) {
        if (sample.t < from) continue;
        for (int k = 0; k < kPlotKinds; ++k) addSample(PlotKind(k), m_plots[size_t(k)], sample, m_titles);
    }
    scrollAll();
}

QString ProfilerView::exportPng(const QString& path) const {
    if (!m_grid->grab().save(path, "PNG")) return tr("%1: cannot write the image").arg(path);
    return {};
}

QString ProfilerView::exportCsv(const QString& path) const {
    return writeFileAtomically(path, m_history.toCsv().toUtf8());
}

void ProfilerView::askExportPng() {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export plots"), QStringLiteral("pagoda-profile.png"),
                                                      tr("PNG images (*.png)"));
    if (path.isEmpty()) return;
    if (const QString error = exportPng(path); !error.isEmpty()) Q_EMIT exportFailed(error);
}

void ProfilerView::askExportCsv() {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export samples"), QStringLiteral("pagoda-profile.csv"),
                                                      tr("CSV files (*.csv)"));
    if (path.isEmpty()) return;
    if (const QString error = exportCsv(path); !error.isEmpty()) Q_EMIT exportFailed(error);
}

}  // namespace pagoda::ui

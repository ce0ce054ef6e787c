#include "ui/load_progress.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QToolButton>

namespace pagoda::ui {

LoadProgress::LoadProgress(QWidget* parent) : QWidget(parent), m_label(new QLabel), m_bar(new QProgressBar) {
    m_bar->setMaximumWidth(220);
    m_bar->setAccessibleName(tr("Model loading progress"));
    auto* cancel = new QToolButton;
    cancel->setText(tr("Cancel"));
    cancel->setToolTip(tr("Stop loading; the current model stays"));
    cancel->setAccessibleName(tr("Cancel model loading"));
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_label);
    layout->addWidget(m_bar);
    layout->addWidget(cancel);
    connect(cancel, &QToolButton::clicked, this, &LoadProgress::cancelRequested);
    hide();
}

void LoadProgress::start(const QString& what) {
    m_label->setText(what + QStringLiteral("…"));
    m_bar->setRange(0, 0);
    show();
}

void LoadProgress::setProgress(qint64 done, qint64 total) {
    if (total <= 0) return;
    m_bar->setRange(0, 1000);
    m_bar->setValue(int(done * 1000 / total));
}

void LoadProgress::finish() { hide(); }

}  // namespace pagoda::ui

#include "ui/synthetic_banner.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QToolButton>

namespace pagoda::ui {

SyntheticBanner::SyntheticBanner(QWidget* parent) : QFrame(parent) {
    setObjectName(QStringLiteral("syntheticBanner"));
    setStyleSheet(QStringLiteral("#syntheticBanner { background: #fff4d6; border: 1px solid #e0c060; border-radius: 4px; }"
                                 "#syntheticBanner QLabel { color: #4a3b00; }"));
    auto* text = new QLabel(
        tr("<b>This is a synthetic model: its weights are random, so it writes random text.</b> It is here so that "
           "chatting and profiling work with no download. To chat for real, open a GGUF model with "
           "<b>File ▸ Open model…</b> (Ctrl+O); models you open are kept in <b>File ▸ Recent models</b>."));
    text->setWordWrap(true);
    text->setTextFormat(Qt::RichText);
    auto* open = new QPushButton(QIcon(QStringLiteral(":/icons/open.png")), tr("Open model…"));
    open->setAccessibleName(tr("Open a GGUF model"));
    auto* close = new QToolButton;
    close->setText(QStringLiteral("✕"));
    close->setAutoRaise(true);
    close->setToolTip(tr("Hide this notice"));
    close->setAccessibleName(tr("Hide the synthetic model notice"));
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(8, 4, 4, 4);
    layout->addWidget(text, 1);
    layout->addWidget(open);
    layout->addWidget(close, 0, Qt::AlignTop);
    setAccessibleName(tr("Synthetic model notice"));
    connect(open, &QPushButton::clicked, this, &SyntheticBanner::openModelRequested);
    connect(close, &QToolButton::clicked, this, &QWidget::hide);
}

}  // namespace pagoda::ui

#pragma once
// Model loading in the status bar: what is loading, a progress bar (busy
// when the size is unknown) and Cancel.

#include <QWidget>

class QLabel;
class QProgressBar;

namespace pagoda::ui {

class LoadProgress : public QWidget {
    Q_OBJECT
public:
    explicit LoadProgress(QWidget* parent = nullptr);

public Q_SLOTS:
    void start(const QString& what);
    void setProgress(qint64 done, qint64 total);
    void finish();

Q_SIGNALS:
    void cancelRequested();

private:
    QLabel* m_label;
    QProgressBar* m_bar;
};

}  // namespace pagoda::ui

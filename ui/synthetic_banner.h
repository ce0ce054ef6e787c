#pragma once
// The notice shown while a synthetic model is loaded: it writes random
// text, and this is how to open a real one.

#include <QFrame>

namespace pagoda::ui {

class SyntheticBanner : public QFrame {
    Q_OBJECT
public:
    explicit SyntheticBanner(QWidget* parent = nullptr);

Q_SIGNALS:
    void openModelRequested();
};

}  // namespace pagoda::ui

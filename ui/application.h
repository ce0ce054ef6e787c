#pragma once
// Process-wide setup every program and test that shows Pagoda widgets
// calls once, after constructing the QApplication: application names (they
// place settings and conversations), the embedded resources, the window
// icon, and the meta-types that cross threads.

namespace pagoda::ui {

void initApplication();

}  // namespace pagoda::ui

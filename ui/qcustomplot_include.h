#pragma once
// <qcustomplot.h> for code built with QT_NO_KEYWORDS (the UI is: engine
// headers use `slots` as a name). QCustomPlot's header still spells Qt's
// keywords, so they are mapped to their Q_ forms around it.

#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef slots
#undef emit
#undef foreach

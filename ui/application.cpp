#include "ui/application.h"

#include <QApplication>
#include <QIcon>

#include "ui/engine_types.h"

// Outside any namespace, as Q_INIT_RESOURCE requires; referencing it keeps
// the resources of this static library in the link.
static void initPagodaResources() { Q_INIT_RESOURCE(pagoda); }

namespace pagoda::ui {

void initApplication() {
    initPagodaResources();
    QApplication::setOrganizationName(QStringLiteral("pagoda"));
    QApplication::setApplicationName(QStringLiteral("pagoda"));
    QApplication::setApplicationDisplayName(QStringLiteral("Pagoda"));
    QApplication::setApplicationVersion(QStringLiteral(PAGODA_VERSION));
    QApplication::setDesktopFileName(QStringLiteral("io.pagoda.Pagoda"));
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/pagoda.png")));
    registerEngineTypes();
}

}  // namespace pagoda::ui

// Runs every Qt Test class of the app in one offscreen QApplication.

#include <QApplication>

#include "ui/application.h"

int runCompareViewTests(int argc, char** argv);
int runConversationTests(int argc, char** argv);
int runMainWindowTests(int argc, char** argv);

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    pagoda::ui::initApplication();
    int failures = 0;
    failures += runConversationTests(argc, argv);
    failures += runMainWindowTests(argc, argv);
    failures += runCompareViewTests(argc, argv);
    return failures == 0 ? 0 : 1;
}

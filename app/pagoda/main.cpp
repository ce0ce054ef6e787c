// pagoda: the desktop app. Opens the last model (on first start the
// embedded default synthetic model, created with a progress bar) and the
// chats of the last session.

#include <QApplication>
#include <QCommandLineParser>

#include "engine/core/log.h"
#include "ui/application.h"
#include "ui/chat_tab.h"
#include "ui/main_window.h"

namespace {

// --demo: three chats generate long replies at once, so the profiler and
// the block map have something to show (used by tools/screenshot.sh).
void startDemo(pagoda::ui::MainWindow& window) {
    constexpr int kDemoTokens = 1500;
    const QStringList prompts = {
        QStringLiteral("Write a short poem about a pagoda in the rain."),
        QStringLiteral("Explain in three sentences what a KV cache is and why paging it helps."),
        QStringLiteral("List five things to check when a local LLM runs slowly."),
    };
    while (window.tabCount() < prompts.size()) window.newTab();
    for (int i = 0; i < prompts.size(); ++i) {
        pagoda::ui::ChatTab* tab = window.tab(i);
        pagoda::ui::ChatSettings settings = tab->conversation().settings;
        settings.maxNewTokens = kDemoTokens;
        settings.ignoreEos = true;
        tab->setSettings(settings);
        tab->send(prompts[i]);
    }
}

}  // namespace

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    pagoda::ui::initApplication();

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Chat with local LLMs and see how the inference engine underneath spends its time and memory."));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption model(QStringLiteral("model"), QStringLiteral("GGUF model to open."), QStringLiteral("path"));
    const QCommandLineOption dataDir(QStringLiteral("data-dir"),
                                     QStringLiteral("Folder for conversations (default: the platform's app data)."),
                                     QStringLiteral("dir"));
    const QCommandLineOption settings(QStringLiteral("settings"),
                                      QStringLiteral("INI file for settings (default: the platform's settings)."),
                                      QStringLiteral("file"));
    const QCommandLineOption demo(QStringLiteral("demo"),
                                  QStringLiteral("Send sample prompts in two tabs once the model is loaded."));
    const QCommandLineOption logLevel(QStringLiteral("log-level"), QStringLiteral("trace, debug, info, warn, error, off."),
                                      QStringLiteral("level"), QStringLiteral("warn"));
    parser.addOptions({model, dataDir, settings, demo, logLevel});
    parser.addPositionalArgument(QStringLiteral("model.gguf"), QStringLiteral("GGUF model to open (same as --model)."),
                                 QStringLiteral("[model.gguf]"));
    parser.process(app);
    pagoda::setupLogging(parser.value(logLevel).toStdString());

    pagoda::ui::MainWindowOptions options;
    options.modelPath = parser.positionalArguments().value(0, parser.value(model));
    options.dataDir = parser.value(dataDir);
    options.settingsPath = parser.value(settings);
    pagoda::ui::MainWindow window(options);
    if (parser.isSet(demo)) {
        QObject::connect(&window, &pagoda::ui::MainWindow::modelReady, &window, [&window] { startDemo(window); },
                         Qt::SingleShotConnection);
    }
    window.show();
    return app.exec();
}

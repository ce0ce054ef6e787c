#pragma once
// Tools ▸ Compare configurations…: one workload measured under two
// optimization configs (A and B) over the loaded model, as `pagoda-bench
// compare` does, each on the chats' backend, the CPU or a GPU of its own
// choosing (so the CPU can be measured against a GPU), with a results table
// (A, B and B/A for every metric), a bar chart of throughput and time to
// first token, and CSV/JSON export.
// A non-modal window; the run happens on a CompareWorker thread while the
// chats keep working.

#include <QDialog>

#include <array>
#include <atomic>
#include <memory>
#include <optional>

#include "engine/runtime/workload.h"
#include "ui/compare_worker.h"
#include "ui/engine_types.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QThread;

namespace pagoda::ui {

class CompareView : public QDialog {
    Q_OBJECT
public:
    // Columns of the results table.
    enum Column { ColConfig, ColBackend, ColTokPerSec, ColTtftP50, ColTtftP95, ColItlP50, ColItlP95, ColPeakKv, ColPeakRss,
                  ColConcurrent, ColPreemptions, ColPrefixHits, ColSameOutput, kColumns };

    explicit CompareView(QWidget* parent = nullptr);
    ~CompareView() override;

    // The model to measure (none: Run is off), its name, and its weights
    // on the chats' GPU, which a side on that GPU runs on.
    void setModel(const ModelInfo& info);
    // What the "current" preset stands for: the chat engine's config.
    void setCurrentConfig(const runtime::OptimizationConfig& config);
    // The chats' backend (File ▸ Run on): where a side set to "as the chats"
    // runs.
    void setBackend(const BackendOptions& backend) { m_backend = backend; }
    // The GPUs a side may be put on (the last load's listing).
    void setDevices(const CudaDeviceList& devices);
    // Where side 0 (A) or 1 (B) runs: kRunAsTheChats, kRunOnCpu, or a CUDA
    // device's index (one setDevices listed as usable).
    static constexpr int kRunAsTheChats = -3;
    static constexpr int kRunOnCpu = -2;
    void setRunOn(int side, int where);
    // How many of the model's layers a side on a GPU runs there
    // (BackendOptions::gpuLayers); kGpuLayersThatFit, the default: the
    // chats' count for a side run as the chats, else automatic.
    void setGpuLayers(int side, int layers);

    // For tests and the menu: the fields as the user would set them.
    void setWorkload(const runtime::Workload& workload);
    runtime::Workload workload() const;
    // side 0 is A, 1 is B; the parseOptimizationConfig syntax.
    void setConfigText(int side, const QString& text);
    // Whether a run then times each config by operation (one more run each).
    void setTimeOperations(bool on);

    void run();
    void cancel();
    bool isRunning() const { return m_running; }
    const std::optional<CompareOutcome>& outcome() const { return m_outcome; }
    QTableWidget* table() const { return m_table; }
    // Operation, A's and B's µs per generated token, B/A; hidden until a
    // run timed its operations.
    QTableWidget* operationTable() const { return m_opTable; }
    QCustomPlot* chart() const { return m_chart; }
    QString statusText() const;

    // An error message, or empty on success.
    QString exportCsv(const QString& path) const;
    QString exportJson(const QString& path) const;

Q_SIGNALS:
    // A run's backends are ready: Ops::description() of A's and B's.
    void runningOn(const QString& a, const QString& b);
    void finished();
    void failed(const QString& message);  // "cancelled" when cancelled

private:
    struct ConfigPicker {
        QComboBox* preset;
        QLineEdit* text;
        QComboBox* runOn;  // item data: kRunAsTheChats, kRunOnCpu or a device index
        QSpinBox* gpuLayers;  // -1 (kGpuLayersThatFit): as the chats, or automatic
    };

    // The backend options of a side's Run on choice.
    BackendOptions sideBackend(int side) const;

    void applyPreset(int side);
    void setRunning(bool running);
    void showOutcome(const CompareOutcome& outcome);
    void showFailure(const QString& message);
    // The operation table of the outcome's op times (hidden without them).
    void showOperationTimes(const CompareOutcome& outcome);
    void askExport(bool json);

    std::shared_ptr<const Model> m_model;
    QString m_modelName;
    std::weak_ptr<const SharedCudaWeights> m_gpuWeights;
    runtime::OptimizationConfig m_current;
    BackendOptions m_backend;
    std::optional<CompareOutcome> m_outcome;
    bool m_running = false;

    // Before the worker, which is made with it.
    std::shared_ptr<std::atomic<bool>> m_cancel = std::make_shared<std::atomic<bool>>(false);
    QThread* m_thread;
    CompareWorker* m_worker;  // lives on m_thread; deleted there when it finishes

    std::array<ConfigPicker, 2> m_pickers{};
    QSpinBox* m_requests;
    QSpinBox* m_promptLength;
    QSpinBox* m_genLength;
    QSpinBox* m_concurrency;
    QDoubleSpinBox* m_sharedPrefix;
    QLabel* m_modelLabel;
    QPushButton* m_runButton;
    QPushButton* m_cancelButton;
    QPushButton* m_csvButton;
    QPushButton* m_jsonButton;
    QCheckBox* m_timeOperations;
    QTableWidget* m_opTable;
    QProgressBar* m_progress;
    QLabel* m_status;
    QTableWidget* m_table;
    QCustomPlot* m_chart;
};

}  // namespace pagoda::ui

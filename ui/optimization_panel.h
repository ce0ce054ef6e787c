#pragma once
// A control per engine optimization, applied live: every edit sends the
// whole config to Engine::reconfigure (through the worker), which applies
// it at the next step boundary. Changes that need a new KV cache (layout,
// budget, block size, prefix caching, eviction, window) preempt the running
// sequences, which recompute in the new cache. Each control's tooltip says
// what it does and what it costs.

#include <QWidget>

#include "engine/runtime/optimization_config.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QSpinBox;

namespace pagoda::ui {

class OptimizationPanel : public QWidget {
    Q_OBJECT
public:
    explicit OptimizationPanel(QWidget* parent = nullptr);

    runtime::OptimizationConfig config() const;

    // Widgets by role, for tests and keyboard users.
    QCheckBox* pagedKv() const { return m_paged; }
    QCheckBox* flashAttention() const { return m_flash; }
    QCheckBox* groupedKv() const { return m_grouped; }
    QCheckBox* prefixCache() const { return m_prefix; }
    QCheckBox* decodeGraphs() const { return m_graphs; }
    QComboBox* int8Matmul() const { return m_int8; }
    QCheckBox* localKvPools() const { return m_localKv; }
    QComboBox* kvPrecision() const { return m_kvType; }
    // Whether the model runs with its KV pools in host memory (the CPU
    // backend): else F32 KV precision and local-layer pools are disabled,
    // saying why.
    void setHostKv(bool host);
    QCheckBox* dependentLaunch() const { return m_dependent; }
    QComboBox* batching() const { return m_batching; }
    QSpinBox* kvBudget() const { return m_budget; }  // MiB; 0 shows "auto"
    QSpinBox* context() const { return m_context; }  // tokens; 0 shows "model's"
    QLabel* status() const { return m_status; }      // applied, or not and why

public Q_SLOTS:
    // Shows `config` without emitting configRequested.
    void setConfig(const pagoda::runtime::OptimizationConfig& config);
    void showApplied(const pagoda::runtime::OptimizationConfig& config);
    void showRejected(const QString& message, const pagoda::runtime::OptimizationConfig& current);

Q_SIGNALS:
    void configRequested(const pagoda::runtime::OptimizationConfig& config);

private:
    void changed();
    void updateDependencies();
    // The presets change optimizations only: the KV budget and the context
    // stay as set.
    void keepSizes(runtime::OptimizationConfig& preset) const;

    runtime::OptimizationConfig m_shown;  // what the controls were last set to
    QCheckBox* m_paged;
    QCheckBox* m_flash;
    QCheckBox* m_grouped;
    QCheckBox* m_prefix;
    QCheckBox* m_graphs;
    QComboBox* m_int8;
    QCheckBox* m_localKv;
    QCheckBox* m_dependent;
    QComboBox* m_batching;
    QComboBox* m_eviction;
    QSpinBox* m_window;
    QComboBox* m_blockSize;
    QSpinBox* m_maxBatch;
    QSpinBox* m_batchTokens;
    QSpinBox* m_budget;
    QComboBox* m_kvType;
    bool m_hostKv = true;  // setHostKv
    QSpinBox* m_context;
    QLabel* m_status;
    bool m_updating = false;
};

}  // namespace pagoda::ui

#include "ui/optimization_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>

namespace pagoda::ui {
namespace {

template <class W>
W* describe(W* widget, const QString& name, const QString& tip) {
    widget->setAccessibleName(name);
    widget->setAccessibleDescription(tip);
    widget->setToolTip(QStringLiteral("<p>%1</p>").arg(tip));
    return widget;
}

QSpinBox* spin(int min, int max, const QString& suffix = {}) {
    auto* s = new QSpinBox;
    s->setRange(min, max);
    s->setSuffix(suffix);
    s->setKeyboardTracking(false);
    return s;
}

}  // namespace

OptimizationPanel::OptimizationPanel(QWidget* parent)
    : QWidget(parent),
      m_paged(new QCheckBox(tr("&Paged KV cache"))),
      m_flash(new QCheckBox(tr("&Flash attention"))),
      m_grouped(new QCheckBox(tr("&Grouped KV heads (GQA)"))),
      m_prefix(new QCheckBox(tr("Prefi&x cache"))),
      m_graphs(new QCheckBox(tr("CUD&A graphs (decode)"))),
      m_int8(new QComboBox),
      m_localKv(new QCheckBox(tr("Local-la&yer KV pools (Gemma)"))),
      m_dependent(new QCheckBox(tr("Dependent &launch (GPU, sm_90+)"))),
      m_batching(new QComboBox),
      m_eviction(new QComboBox),
      m_window(spin(-1, 1 << 20, tr(" tokens"))),
      m_blockSize(new QComboBox),
      m_maxBatch(spin(1, 256)),
      m_batchTokens(spin(1, 8192)),
      m_budget(spin(0, 1 << 20, tr(" MiB"))),
      m_kvType(new QComboBox),
      m_context(spin(0, 1 << 24, tr(" tokens"))),
      m_status(new QLabel) {
    describe(m_paged, tr("Paged KV cache"),
             tr("Stores each sequence's keys and values in fixed-size blocks taken from a shared pool as it grows. "
                "<b>Off</b> (contiguous): every sequence reserves the model's whole context up front, so far fewer "
                "fit in the same memory. Switching rebuilds the cache: running sequences recompute."));
    describe(m_flash, tr("Flash attention"),
             tr("Computes attention block by block with an online softmax, never building the score matrix. "
                "<b>Off</b> (naive): materializes every query×key score first: more memory traffic and a "
                "workspace that grows with the context."));
    describe(m_grouped, tr("Grouped KV heads"),
             tr("Grouped-query attention reads each KV head once for its whole group of query heads. "
                "<b>Off</b>: K/V are expanded to one head per query head, multiplying the attention reads "
                "(models with as many KV heads as query heads see no difference)."));
    describe(m_prefix, tr("Prefix cache"),
             tr("Keeps full KV blocks after a request ends and reuses them when a later prompt starts with the "
                "same tokens: resending a conversation skips the prefill of everything already seen. Costs "
                "hashing per block and cached blocks that occupy the pool until evicted. Needs paged KV."));
    describe(m_graphs, tr("CUDA graphs for decode"),
             tr("Records a decode step's kernel launches once per batch size (rounded up to a bucket) and then "
                "replays them as one CUDA graph: far less launch overhead per token. Only affects the GPU "
                "backend; on the CPU it changes nothing."));
    describe(m_int8, tr("Int8 matmul"),
             tr("Products with quantized weights (Q8_0, Q4_x, Q5_x, K-quants) round each matmul's input to 8 bits "
                "and multiply with integer dot products, as llama.cpp's CPU always does: on the CPU (two threads, "
                "AVX-512) decode ran 1.0–1.9× as fast and prompts 0.7–1.35× (docs/KERNELS.md). The logits move "
                "by a few percent against the float products. On the CPU it covers prompts and decode alike, so "
                "batching changes a reply no more than with the float products. <b>CPU only</b> (optimized): "
                "the GPU keeps its float products. <b>CPU and GPU</b>: the GPU's decode too (not yet measured "
                "on a device). <b>Off</b> (baseline): float products everywhere. No effect on F16/F32 weights."));
    describe(m_localKv, tr("Local-layer KV pools"),
             tr("Gemma 2 and 3 have local layers that only look at the last few thousand (Gemma 2) or few hundred "
                "(Gemma 3) positions. With this on, those layers keep their keys and values in pools of their own "
                "that hold about one window per running sequence, instead of the whole context: the same replies, "
                "and the KV budget then holds several times more context. <b>Off</b>: every layer keeps every "
                "position. Needs paged KV; CPU backend only for now; no effect on other models. Switching "
                "rebuilds the cache."));
    describe(m_dependent, tr("Dependent launch"),
             tr("Starts each decode-step kernel while the one before it is finishing (CUDA programmatic dependent "
                "launch), so the gaps between a step's few hundred kernels shrink. The same results. Needs a GPU "
                "of compute capability 9.0 or newer (H100, H200, Blackwell); elsewhere, and on the CPU, it "
                "changes nothing. Off by default until measured on a device."));
    describe(m_batching, tr("Batching"),
             tr("<b>Continuous</b>: sequences join and leave the running batch at every step, so all tabs "
                "progress together. <b>Static</b>: a batch is formed and runs to its end before the next one "
                "starts. <b>Sequential</b>: one request at a time; the others wait."));
    describe(m_eviction, tr("Eviction policy"),
             tr("Which cached prefix block is dropped when the pool needs space: the least recently used "
                "(<b>LRU</b>) or the oldest (<b>FIFO</b>). Changing it rebuilds the cache."));
    describe(m_window, tr("Sliding window"),
             tr("Attend only to the last N positions and release KV blocks that fall outside (counted as window "
                "evictions). −1 uses the model's own window, 0 attends to everything. Changes the model's output "
                "when smaller than the context. Rebuilds the cache."));
    describe(m_blockSize, tr("Block size"),
             tr("Tokens per KV block. Smaller blocks waste less of a sequence's last block and share prefixes "
                "at a finer grain; larger blocks mean fewer table entries and longer contiguous reads. Rebuilds "
                "the cache."));
    describe(m_maxBatch, tr("Max batch"),
             tr("Most sequences in the running batch. More raises total throughput (weights are read once per "
                "step for all of them) at the cost of per-sequence latency and KV memory."));
    describe(m_batchTokens, tr("Tokens per step"),
             tr("Most tokens one step computes: decode tokens plus prefill chunks. A long prompt is split into "
                "chunks of at most this size so decoding tabs keep moving. At least the max batch. Raising it "
                "with the KV budget on auto rebuilds the cache, which makes room for the larger activations."));
    describe(m_budget, tr("KV budget"),
             tr("Memory for the keys and values of every layer. More holds more and longer sequences and keeps "
                "more prefixes cached; it is allocated up front. <b>auto</b> (0, the default) sizes it when the "
                "cache is made: room for 4 sequences at the model's full context, or what memory allows when that "
                "is less (half the host's available memory, or on a GPU 90% of its free memory less 1 GiB, less "
                "the activations for the tokens per step). The KV cache view shows the size chosen. Rebuilds the "
                "cache."));
    describe(m_kvType, tr("KV precision"),
             tr("F16 halves KV memory at a tiny precision cost; F32 (the CPU only) is exact; Q8_0 (head dims "
                "that are a multiple of 32) takes 1.06 bytes an element, about half of F16, at the precision of "
                "8-bit blocks. Rebuilds the cache."));
    describe(m_context, tr("Context"),
             tr("The most tokens one conversation holds: its prompt, history and reply. <b>model's</b> (0, the "
                "default) is the model's own context; a smaller one makes each sequence's worst case smaller, so "
                "the automatic KV budget and, on a GPU, the automatic GPU layers plan for it (a conversation that "
                "reaches it keeps its recent window or stops, as at the model's). More than the model's is the "
                "model's. Rebuilds the cache."));

    m_batching->addItem(tr("Continuous"), int(runtime::BatchingMode::Continuous));
    m_batching->addItem(tr("Static"), int(runtime::BatchingMode::Static));
    m_batching->addItem(tr("Sequential"), int(runtime::BatchingMode::Sequential));
    m_eviction->addItem(tr("LRU"), int(EvictionPolicyKind::Lru));
    m_eviction->addItem(tr("FIFO"), int(EvictionPolicyKind::Fifo));
    for (int size : {8, 16, 32}) m_blockSize->addItem(tr("%1 tokens").arg(size), size);
    m_int8->addItem(tr("Off"), int(Int8Matmul::Off));
    m_int8->addItem(tr("CPU only"), int(Int8Matmul::Cpu));
    m_int8->addItem(tr("CPU and GPU (decode)"), int(Int8Matmul::On));
    m_kvType->addItem(QStringLiteral("F16"), int(DType::F16));
    m_kvType->addItem(QStringLiteral("F32"), int(DType::F32));
    m_kvType->addItem(QStringLiteral("Q8_0"), int(DType::Q8_0));
    m_window->setSpecialValueText(tr("model's"));
    m_budget->setSpecialValueText(tr("auto"));
    m_context->setSpecialValueText(tr("model's"));
    m_context->setSingleStep(1024);

    auto* baseline = new QPushButton(tr("&Baseline"));
    describe(baseline, tr("Baseline preset"),
             tr("Every optimization off, the way engines without them run: sequential batching, contiguous KV, "
                "naive attention, expanded KV heads, no prefix cache, no CUDA graphs, float products."));
    auto* optimized = new QPushButton(tr("&Optimized"));
    describe(optimized, tr("Optimized preset"),
             tr("Every optimization on: continuous batching, paged KV, flash attention, grouped KV, prefix cache, "
                "CUDA graphs, int8 matmul on the CPU. Dependent launch and the GPU's int8 matmul stay off until "
                "measured on a device."));
    auto* presets = new QHBoxLayout;
    presets->addWidget(baseline);
    presets->addWidget(optimized);
    presets->addStretch(1);

    m_status->setWordWrap(true);
    m_status->setAccessibleName(tr("Configuration status"));

    auto* form = new QFormLayout(this);
    form->addRow(presets);
    form->addRow(m_paged);
    form->addRow(m_flash);
    form->addRow(m_grouped);
    form->addRow(m_prefix);
    form->addRow(m_graphs);
    form->addRow(m_localKv);
    form->addRow(m_dependent);
    const auto row = [form](const QString& label, QWidget* field) {
        auto* l = new QLabel(label);
        l->setBuddy(field);
        form->addRow(l, field);
    };
    row(tr("&Int8 matmul:"), m_int8);
    row(tr("Batc&hing:"), m_batching);
    row(tr("&Eviction:"), m_eviction);
    row(tr("Sliding &window:"), m_window);
    row(tr("Bloc&k size:"), m_blockSize);
    row(tr("&Max batch:"), m_maxBatch);
    row(tr("&Tokens per step:"), m_batchTokens);
    row(tr("KV b&udget:"), m_budget);
    row(tr("KV pre&cision:"), m_kvType);
    row(tr("Conte&xt:"), m_context);
    form->addRow(m_status);

    for (QCheckBox* box : {m_paged, m_flash, m_grouped, m_prefix, m_graphs, m_localKv, m_dependent}) {
        connect(box, &QCheckBox::toggled, this, &OptimizationPanel::changed);
    }
    for (QComboBox* box : {m_int8, m_batching, m_eviction, m_blockSize, m_kvType}) {
        connect(box, &QComboBox::currentIndexChanged, this, &OptimizationPanel::changed);
    }
    for (QSpinBox* box : {m_window, m_maxBatch, m_batchTokens, m_budget, m_context}) {
        connect(box, &QSpinBox::valueChanged, this, &OptimizationPanel::changed);
    }
    connect(baseline, &QPushButton::clicked, this, [this] {
        runtime::OptimizationConfig c = runtime::OptimizationConfig::baseline();
        keepSizes(c);
        setConfig(c);
        Q_EMIT configRequested(c);
    });
    connect(optimized, &QPushButton::clicked, this, [this] {
        runtime::OptimizationConfig c = runtime::OptimizationConfig::optimized();
        keepSizes(c);
        setConfig(c);
        Q_EMIT configRequested(c);
    });
    setConfig(runtime::OptimizationConfig::optimized());
}

runtime::OptimizationConfig OptimizationPanel::config() const {
    runtime::OptimizationConfig c = m_shown;
    c.kvAllocation = m_paged->isChecked() ? KvAllocation::Paged : KvAllocation::Contiguous;
    c.attention = m_flash->isChecked() ? cpu::AttentionAlgorithm::Flash : cpu::AttentionAlgorithm::Naive;
    c.groupedKv = m_grouped->isChecked();
    c.prefixCaching = m_prefix->isChecked() && m_paged->isChecked();
    c.decodeGraphs = m_graphs->isChecked();
    c.int8Matmul = Int8Matmul(m_int8->currentData().toInt());
    c.localKvPools = m_localKv->isChecked() && m_paged->isChecked();
    c.dependentLaunch = m_dependent->isChecked();
    c.batching = runtime::BatchingMode(m_batching->currentData().toInt());
    c.eviction = EvictionPolicyKind(m_eviction->currentData().toInt());
    c.slidingWindow = m_window->value();
    c.blockSize = m_blockSize->currentData().toInt();
    c.maxBatch = m_maxBatch->value();
    c.maxBatchTokens = std::max(m_batchTokens->value(), c.maxBatch);
    c.kvBudgetBytes = uint64_t(m_budget->value()) << 20;
    c.kvType = DType(m_kvType->currentData().toInt());
    c.contextLength = m_context->value();
    return c;
}

void OptimizationPanel::setConfig(const runtime::OptimizationConfig& c) {
    m_updating = true;
    m_shown = c;
    m_paged->setChecked(c.kvAllocation == KvAllocation::Paged);
    m_flash->setChecked(c.attention == cpu::AttentionAlgorithm::Flash);
    m_grouped->setChecked(c.groupedKv);
    m_prefix->setChecked(c.prefixCaching);
    m_graphs->setChecked(c.decodeGraphs);
    m_int8->setCurrentIndex(m_int8->findData(int(c.int8Matmul)));
    m_localKv->setChecked(c.localKvPools);
    m_dependent->setChecked(c.dependentLaunch);
    m_batching->setCurrentIndex(m_batching->findData(int(c.batching)));
    m_eviction->setCurrentIndex(m_eviction->findData(int(c.eviction)));
    m_window->setValue(c.slidingWindow);
    m_blockSize->setCurrentIndex(m_blockSize->findData(c.blockSize));
    m_maxBatch->setValue(c.maxBatch);
    m_batchTokens->setValue(c.maxBatchTokens);
    const bool automatic = c.kvBudgetBytes == runtime::kAutoKvBudget;
    m_budget->setValue(automatic ? 0 : int(std::max<uint64_t>(1, c.kvBudgetBytes >> 20)));
    m_kvType->setCurrentIndex(m_kvType->findData(int(c.kvType)));
    m_context->setValue(c.contextLength);
    updateDependencies();
    m_updating = false;
}

void OptimizationPanel::keepSizes(runtime::OptimizationConfig& preset) const {
    const runtime::OptimizationConfig now = config();
    preset.kvBudgetBytes = now.kvBudgetBytes;
    preset.contextLength = now.contextLength;
}

void OptimizationPanel::showApplied(const runtime::OptimizationConfig& c) {
    if (c != config()) setConfig(c);
    m_status->setText(tr("Applied at the next engine step."));
}

void OptimizationPanel::showRejected(const QString& message, const runtime::OptimizationConfig& current) {
    setConfig(current);
    m_status->setText(tr("<b>Not applied:</b> %1").arg(message.toHtmlEscaped()));
}

void OptimizationPanel::setHostKv(bool host) {
    m_hostKv = host;
    auto* items = qobject_cast<QStandardItemModel*>(m_kvType->model());
    QStandardItem* f32 = items->item(m_kvType->findData(int(DType::F32)));
    f32->setEnabled(host);
    f32->setToolTip(host ? QString() : tr("The GPU keeps the KV cache in F16 or Q8_0"));
    updateDependencies();
}

void OptimizationPanel::updateDependencies() {
    // Prefix caching shares blocks, which contiguous allocation has none of.
    m_prefix->setEnabled(m_paged->isChecked());
    m_localKv->setEnabled(m_paged->isChecked() && m_hostKv);
    m_eviction->setEnabled(m_paged->isChecked() && m_prefix->isChecked());
    m_batchTokens->setMinimum(m_maxBatch->value());
}

void OptimizationPanel::changed() {
    if (m_updating) return;
    m_updating = true;
    if (!m_paged->isChecked()) {
        m_prefix->setChecked(false);
        m_localKv->setChecked(false);
    }
    updateDependencies();
    m_updating = false;
    Q_EMIT configRequested(config());
}

}  // namespace pagoda::ui

#include "engine/backend/timed_ops.h"

#include <algorithm>

#include <fmt/format.h>

#include "engine/transformer/transformer.h"

namespace pagoda {

std::string_view TimedOps::opName(Op op) {
    switch (op) {
    case Op::Embed: return "embed";
    case Op::RmsNorm: return "rms_norm";
    case Op::AddRmsNorm: return "add_rms_norm";
    case Op::Matmul: return "matmul";
    case Op::Matmuls: return "matmuls";
    case Op::MatmulSwiglu: return "matmul_swiglu";
    case Op::Rope: return "rope";
    case Op::StoreKv: return "store_kv";
    case Op::RopeStoreKv: return "rope_store_kv";
    case Op::Attention: return "attention";
    case Op::Swiglu: return "swiglu";
    case Op::Geglu: return "geglu";
    case Op::Scale: return "scale";
    case Op::Softcap: return "softcap";
    case Op::Add: return "add";
    case Op::AddBias: return "add_bias";
    case Op::Copy: return "copy";
    case Op::ReadBack: return "read_back";
    case Op::kCount: break;
    }
    return "?";
}

TimedOps::Times TimedOps::allTimes() const {
    Times all = m_times;
    for (const TimedOps* part : {m_first.get(), m_second.get()}) {
        if (part == nullptr) continue;
        const Times theirs = part->allTimes();
        for (size_t i = 0; i < all.size(); ++i) {
            all[i].calls += theirs[i].calls;
            all[i].seconds += theirs[i].seconds;
        }
    }
    return all;
}

std::vector<TimedOps::OpTime> TimedOps::times() const {
    const Times all = allTimes();
    std::vector<OpTime> called;
    for (size_t i = 0; i < all.size(); ++i) {
        if (all[i].calls == 0) continue;
        called.push_back(all[i]);
        called.back().op = Op(i);
    }
    std::ranges::stable_sort(called, std::ranges::greater{}, &OpTime::seconds);
    return called;
}

std::vector<TimedOps::PartTime> TimedOps::parts() const {
    std::vector<PartTime> parts;
    for (const TimedOps* part : {m_first.get(), m_second.get()}) {
        if (part != nullptr) parts.push_back({part->m_backendName, part->totalSeconds()});
    }
    return parts;
}

double TimedOps::totalSeconds() const {
    double total = 0;
    for (const OpTime& t : allTimes()) total += t.seconds;
    return total;
}

void TimedOps::reset() {
    m_times = {};
    for (TimedOps* part : {m_first.get(), m_second.get()}) {
        if (part != nullptr) part->reset();
    }
}

void TimedOps::setTiming(bool on) {
    m_timing = on;
    for (TimedOps* part : {m_first.get(), m_second.get()}) {
        if (part != nullptr) part->setTiming(on);
    }
}

std::optional<LayerSplit> TimedOps::layerSplit() {
    const std::optional<LayerSplit> split = m_inner.layerSplit();
    if (!split) return std::nullopt;
    if (!m_first) {
        m_first = std::make_unique<TimedOps>(*split->first);
        m_second = std::make_unique<TimedOps>(*split->second);
        for (TimedOps* part : {m_first.get(), m_second.get()}) {
            part->setTiming(m_timing);
            const std::string description = part->m_inner.description();
            part->m_backendName = description.substr(0, description.find(':'));
        }
    }
    return LayerSplit{m_first.get(), m_second.get(), split->secondFrom};
}

std::string TimedOps::table(int units, std::string_view unitName) const {
    const double total = totalSeconds();
    const double per = std::max(units, 1);
    std::string out = fmt::format("{:<14} {:>12} {:>14} {:>7}\n", "operation", fmt::format("calls/{}", unitName),
                                  fmt::format("us/{}", unitName), "share");
    for (const OpTime& t : times()) {
        out += fmt::format("{:<14} {:>12.1f} {:>14.1f} {:>6.1f}%\n", opName(t.op), double(t.calls) / per,
                           1e6 * t.seconds / per, total > 0 ? 100 * t.seconds / total : 0.0);
    }
    out += fmt::format("{:<14} {:>12} {:>14.1f} {:>6.1f}%\n", "total", "", 1e6 * total / per, total > 0 ? 100.0 : 0.0);
    for (const PartTime& part : parts()) {
        out += fmt::format("{:<14} {:>12} {:>14.1f} {:>6.1f}%\n", "on " + part.backend, "", 1e6 * part.seconds / per,
                           total > 0 ? 100 * part.seconds / total : 0.0);
    }
    return out;
}

std::string TimedOps::json(std::span<const OpTime> times, int units, std::string_view unitName) {
    const double per = std::max(units, 1);
    std::string out;
    for (const OpTime& t : times) {
        out += fmt::format(R"({}{{"op": "{}", "calls_per_{}": {:.3f}, "us_per_{}": {:.3f}}})", out.empty() ? "" : ", ",
                           opName(t.op), unitName, double(t.calls) / per, unitName, 1e6 * t.seconds / per);
    }
    return "[" + out + "]";
}

template <class Call>
void TimedOps::timed(Op op, Call&& call) {
    if (!m_timing) {
        call();
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    call();
    m_inner.finish();
    OpTime& t = m_times[size_t(op)];
    ++t.calls;
    t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string TimedOps::description() const { return m_inner.description() + ", timed per operation"; }

Result<std::unique_ptr<ActivationMemory>> TimedOps::allocateActivations(size_t floats) {
    return m_inner.allocateActivations(floats);
}

Result<std::unique_ptr<KvStorage>> TimedOps::createKvStorage(const KvLayout& layout) {
    return m_inner.createKvStorage(layout);
}

Result<std::span<const float>> TimedOps::readBack(const float* data, size_t n, std::vector<float>& staging) {
    Result<std::span<const float>> result = std::span<const float>();
    timed(Op::ReadBack, [&] { result = m_inner.readBack(data, n, staging); });
    return result;
}

void TimedOps::embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) {
    timed(Op::Embed, [&] { m_inner.embed(table, ids, out); });
}

void TimedOps::rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) {
    timed(Op::RmsNorm, [&] { m_inner.rmsNorm(x, weight, y, nRows, n, eps); });
}

void TimedOps::addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                          float eps) {
    timed(Op::AddRmsNorm, [&] { m_inner.addRmsNorm(x, delta, weight, y, nRows, n, eps); });
}

void TimedOps::matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) {
    timed(Op::Matmul, [&] { m_inner.matmul(w, x, y, nTokens); });
}

void TimedOps::matmuls(std::span<const MatmulOutput> outputs, const float* x, int64_t nTokens) {
    timed(Op::Matmuls, [&] { m_inner.matmuls(outputs, x, nTokens); });
}

void TimedOps::rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) {
    timed(Op::Rope, [&] { m_inner.rope(x, nTokens, nHeads, positions, params); });
}

void TimedOps::storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots,
                       int nTokens) {
    timed(Op::StoreKv, [&] { m_inner.storeKv(kv, layer, k, v, slots, nTokens); });
}

void TimedOps::ropeStoreKv(KvStorage& kv, int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                           int nKvHeads, const int32_t* positions, const int32_t* slots,
                           const cpu::RopeParams& params) {
    timed(Op::RopeStoreKv,
          [&] { m_inner.ropeStoreKv(kv, layer, q, k, v, nTokens, nHeads, nKvHeads, positions, slots, params); });
}

void TimedOps::attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) {
    timed(Op::Attention, [&] { m_inner.attention(kv, layer, params); });
}

void TimedOps::swiglu(const float* gate, const float* up, float* out, int64_t n) {
    timed(Op::Swiglu, [&] { m_inner.swiglu(gate, up, out, n); });
}

void TimedOps::geglu(const float* gate, const float* up, float* out, int64_t n) {
    timed(Op::Geglu, [&] { m_inner.geglu(gate, up, out, n); });
}

void TimedOps::scale(float* x, float s, int64_t n) {
    timed(Op::Scale, [&] { m_inner.scale(x, s, n); });
}

void TimedOps::softcap(float* x, float cap, int64_t n) {
    timed(Op::Softcap, [&] { m_inner.softcap(x, cap, n); });
}

void TimedOps::matmulSwiglu(const cpu::WeightMatrix& gate, const cpu::WeightMatrix& up, const float* x, float* out,
                            float* upScratch, int64_t nTokens) {
    timed(Op::MatmulSwiglu, [&] { m_inner.matmulSwiglu(gate, up, x, out, upScratch, nTokens); });
}

void TimedOps::add(float* y, const float* x, int64_t n) {
    timed(Op::Add, [&] { m_inner.add(y, x, n); });
}

void TimedOps::addBias(float* y, const float* bias, int64_t nRows, int64_t n) {
    timed(Op::AddBias, [&] { m_inner.addBias(y, bias, nRows, n); });
}

void TimedOps::copy(float* dst, const float* src, int64_t n) {
    timed(Op::Copy, [&] { m_inner.copy(dst, src, n); });
}

void TimedOps::copyFromHost(float* dst, std::span<const float> src) {
    timed(Op::Copy, [&] { m_inner.copyFromHost(dst, src); });
}

Result<void> TimedOps::runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                                     const std::function<void(int nRows)>& layers) {
    if (!m_timing) return m_inner.runDecodeStep(batch, shape, layers);
    layers(int(batch.tokens.size()));
    return {};
}

}  // namespace pagoda

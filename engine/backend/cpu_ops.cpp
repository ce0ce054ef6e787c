#include "engine/backend/cpu_ops.h"

#include <algorithm>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "engine/cache/kv_budget.h"
#include "engine/kv/kv_cache.h"
#include "engine/transformer/transformer.h"

namespace pagoda {
namespace {

class HostActivations final : public ActivationMemory {
public:
    explicit HostActivations(float* data) : m_data(data) {}
    ~HostActivations() override { ::operator delete[](m_data, std::align_val_t(64)); }
    HostActivations(const HostActivations&) = delete;
    HostActivations& operator=(const HostActivations&) = delete;
    float* data() override { return m_data; }

private:
    float* m_data;
};

}  // namespace

CpuOps::CpuOps(const CpuOpsOptions& options) : m_pool(std::make_unique<cpu::ThreadPool>(options.threads)) {
    m_context.pool = m_pool.get();
    const cpu::SimdLevel detected = cpu::detectSimdLevel();
    m_context.simd = detected;
    if (options.simd && (*options.simd == cpu::SimdLevel::Avx2 || detected == cpu::SimdLevel::Avx512)) {
        m_context.simd = *options.simd;
    }
}

std::string CpuOps::description() const {
    return fmt::format("cpu: {} threads, {}{}", m_pool->size(), cpu::simdLevelName(m_context.simd),
                       m_context.int8Matmul
                           ? fmt::format(", int8 matmul ({})", cpu::int8KernelName(cpu::int8Kernel(m_context)))
                           : "");
}

Result<std::unique_ptr<ActivationMemory>> CpuOps::allocateActivations(size_t floats) {
    void* data = ::operator new[](std::max<size_t>(floats, 1) * sizeof(float), std::align_val_t(64), std::nothrow);
    if (data == nullptr) return fail("cannot allocate {} bytes of activations", floats * sizeof(float));
    return std::make_unique<HostActivations>(static_cast<float*>(data));
}

Result<std::unique_ptr<KvStorage>> CpuOps::createKvStorage(const KvLayout& layout) {
    return createHostKvStorage(layout);
}

Result<uint64_t> CpuOps::kvMemoryAvailable() {
    if (m_kvMemoryLimit) return *m_kvMemoryLimit;
    return resolveKvBudget({0, 0.5});
}

Result<std::span<const float>> CpuOps::readBack(const float* data, size_t n, std::vector<float>&) {
    return std::span<const float>(data, n);
}

void CpuOps::embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) {
    for (size_t i = 0; i < ids.size(); ++i) cpu::dequantizeRow(table, ids[i], out + i * table.cols);
}

void CpuOps::rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) {
    cpu::rmsNorm(x, weight, y, nRows, n, eps);
}

void CpuOps::matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) {
    cpu::matmul(m_context, w, x, y, nTokens);
}

void CpuOps::rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) {
    for (int t = 0; t < nTokens; ++t) {
        cpu::rope(x + size_t(t) * nHeads * params.headDim, nHeads, positions[t], params);
    }
}

void CpuOps::storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots, int nTokens) {
    const cpu::PagedKvView view = kv.view(layer);
    cpu::storeKv(view, const_cast<void*>(view.k), const_cast<void*>(view.v), k, v, slots, nTokens);
}

void CpuOps::attention(KvStorage&, int, const cpu::AttentionParams& params) {
    if (params.workspace != nullptr) {
        cpu::attention(m_context, params);
        return;
    }
    cpu::AttentionParams withWorkspace = params;
    withWorkspace.workspace = &m_attentionWorkspace;
    cpu::attention(m_context, withWorkspace);
}

void CpuOps::swiglu(const float* gate, const float* up, float* out, int64_t n) { cpu::swiglu(gate, up, out, n); }

void CpuOps::geglu(const float* gate, const float* up, float* out, int64_t n) { cpu::geglu(gate, up, out, n); }

void CpuOps::softcap(float* x, float cap, int64_t n) { cpu::softcap(x, n, cap); }

void CpuOps::scale(float* x, float s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void CpuOps::add(float* y, const float* x, int64_t n) { cpu::addInPlace(y, x, n); }

void CpuOps::addBias(float* y, const float* bias, int64_t nRows, int64_t n) {
    for (int64_t r = 0; r < nRows; ++r) cpu::addInPlace(y + r * n, bias, n);
}

void CpuOps::copy(float* dst, const float* src, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }

void CpuOps::copyFromHost(float* dst, std::span<const float> src) { copy(dst, src.data(), int64_t(src.size())); }

Result<void> CpuOps::runDecodeStep(const ForwardBatch& batch, const DecodeStepShape&,
                                   const std::function<void(int nRows)>& layers) {
    layers(int(batch.tokens.size()));
    return {};
}

}  // namespace pagoda

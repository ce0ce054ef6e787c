#pragma once
// The CPU backend: kernels/cpu on a thread pool, SIMD level picked at run time.

#include <memory>
#include <optional>

#include "engine/backend/ops.h"
#include "kernels/cpu/cpu_context.h"

namespace pagoda {

struct CpuOpsOptions {
    int threads = 0;  // <= 0: all hardware threads
    // Overrides the detected SIMD level (e.g. to compare AVX2 with AVX-512);
    // a level the CPU lacks falls back to the detected one.
    std::optional<cpu::SimdLevel> simd;
};

class CpuOps final : public Ops {
public:
    explicit CpuOps(const CpuOpsOptions& options = {});

    std::string description() const override;
    const cpu::CpuContext& context() const { return m_context; }

    Result<std::unique_ptr<ActivationMemory>> allocateActivations(size_t floats) override;
    Result<std::unique_ptr<KvStorage>> createKvStorage(const KvLayout& layout) override;
    bool localKvPools() const override { return true; }
    // The limit set here (tests), else half of MemAvailable.
    Result<uint64_t> kvMemoryAvailable() override;
    void setKvMemoryLimit(std::optional<uint64_t> bytes) { m_kvMemoryLimit = bytes; }
    Result<std::span<const float>> readBack(const float* data, size_t n, std::vector<float>& staging) override;
    uint64_t scratchBytes() const override { return m_attentionWorkspace.capacity(); }
    void setInt8Matmul(Int8Matmul mode) override { m_context.int8Matmul = mode != Int8Matmul::Off; }

    void embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) override;
    void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) override;
    void matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) override;
    void rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) override;
    void storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots,
                 int nTokens) override;
    void attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) override;
    void swiglu(const float* gate, const float* up, float* out, int64_t n) override;
    void geglu(const float* gate, const float* up, float* out, int64_t n) override;
    void scale(float* x, float s, int64_t n) override;
    void softcap(float* x, float cap, int64_t n) override;
    void add(float* y, const float* x, int64_t n) override;
    void addBias(float* y, const float* bias, int64_t nRows, int64_t n) override;
    void copy(float* dst, const float* src, int64_t n) override;
    void copyFromHost(float* dst, std::span<const float> src) override;

    Result<void> runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                               const std::function<void(int nRows)>& layers) override;

private:
    std::unique_ptr<cpu::ThreadPool> m_pool;
    cpu::CpuContext m_context;
    cpu::AttentionWorkspace m_attentionWorkspace;
    std::optional<uint64_t> m_kvMemoryLimit;
};

}  // namespace pagoda

#pragma once
// Ops that forwards every call to another Ops and times it, per operation:
// where a forward pass spends its time (`pagoda-bench generation` and `gpu`
// with --op-times 1). The results are the inner backend's, bit for bit.
//
// A device runs its calls asynchronously, so each call is followed by
// Ops::finish(): its time is then the launch, the work and one wait for the
// device (a few µs), and no two calls overlap. Decode steps run eagerly
// (runDecodeStep calls the layers: no CUDA graphs). On a device the times
// show which operations dominate, not the speed of the pipelined step.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend/ops.h"

namespace pagoda {

class TimedOps final : public Ops {
public:
    enum class Op {
        Embed, RmsNorm, AddRmsNorm, Matmul, Matmuls, MatmulSwiglu, Rope, StoreKv, RopeStoreKv, Attention,
        Swiglu, Geglu, Scale, Softcap, Add, AddBias, Copy, ReadBack, kCount
    };
    static std::string_view opName(Op op);

    struct OpTime {
        Op op = Op::Embed;
        int64_t calls = 0;
        double seconds = 0;
    };

    explicit TimedOps(Ops& inner) : m_inner(inner) {}

    // The time of one backend of a model split by layer.
    struct PartTime {
        std::string backend;  // its description up to the colon: "cpu", "cuda"
        double seconds = 0;
    };

    // The operations called since the last reset(), the longest first.
    std::vector<OpTime> times() const;
    // Over a model split by layer: the first backend's time, then the
    // second's (of totalSeconds()); empty otherwise.
    std::vector<PartTime> parts() const;
    double totalSeconds() const;
    void reset();
    // On by default. Off: calls are forwarded untimed and not waited for,
    // and runDecodeStep is the inner backend's; the times so far stay.
    void setTiming(bool on);
    bool timing() const { return m_timing; }
    // One line per operation: its name, calls and µs per `units` (decode
    // steps, prompts), and share of the total; then the total, and over a
    // split each backend's ("on cpu").
    std::string table(int units, std::string_view unitName) const;
    // times() (or a copy of them) as a JSON array, in their order:
    // [{"op": "matmul", "calls_per_UNIT": 25.0, "us_per_UNIT": 3160.0}, ...]
    static std::string json(std::span<const OpTime> times, int units, std::string_view unitName);

    std::string description() const override;
    Result<std::unique_ptr<ActivationMemory>> allocateActivations(size_t floats) override;
    Result<std::unique_ptr<KvStorage>> createKvStorage(const KvLayout& layout) override;
    bool localKvPools() const override { return m_inner.localKvPools(); }
    Result<uint64_t> kvMemoryAvailable() override { return m_inner.kvMemoryAvailable(); }
    Result<std::span<const float>> readBack(const float* data, size_t n, std::vector<float>& staging) override;
    void setInt8Matmul(Int8Matmul mode) override { m_inner.setInt8Matmul(mode); }
    void setDependentLaunch(bool on) override { m_inner.setDependentLaunch(on); }
    uint64_t scratchBytes() const override { return m_inner.scratchBytes(); }
    std::optional<DeviceMemoryStats> deviceMemory() override { return m_inner.deviceMemory(); }
    Result<void> status() override { return m_inner.status(); }
    void finish() override { m_inner.finish(); }
    // The inner backend's split, with each of its two backends timed here.
    std::optional<LayerSplit> layerSplit() override;

    void embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) override;
    void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) override;
    void addRmsNorm(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                    float eps) override;
    void matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) override;
    void matmuls(std::span<const MatmulOutput> outputs, const float* x, int64_t nTokens) override;
    void rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) override;
    void storeKv(KvStorage& kv, int layer, const float* k, const float* v, const int32_t* slots,
                 int nTokens) override;
    void ropeStoreKv(KvStorage& kv, int layer, float* q, float* k, const float* v, int nTokens, int nHeads,
                     int nKvHeads, const int32_t* positions, const int32_t* slots,
                     const cpu::RopeParams& params) override;
    void attention(KvStorage& kv, int layer, const cpu::AttentionParams& params) override;
    void swiglu(const float* gate, const float* up, float* out, int64_t n) override;
    void geglu(const float* gate, const float* up, float* out, int64_t n) override;
    void scale(float* x, float s, int64_t n) override;
    void softcap(float* x, float cap, int64_t n) override;
    void matmulSwiglu(const cpu::WeightMatrix& gate, const cpu::WeightMatrix& up, const float* x, float* out,
                      float* upScratch, int64_t nTokens) override;
    void add(float* y, const float* x, int64_t n) override;
    void addBias(float* y, const float* bias, int64_t nRows, int64_t n) override;
    void copy(float* dst, const float* src, int64_t n) override;
    void copyFromHost(float* dst, std::span<const float> src) override;
    // Timing: eager, layers(rows of the batch), timed call by call; else
    // the inner backend's.
    Result<void> runDecodeStep(const ForwardBatch& batch, const DecodeStepShape& shape,
                               const std::function<void(int nRows)>& layers) override;

private:
    // Runs `call`, waits for the inner backend, and adds the time to `op`.
    template <class Call>
    void timed(Op op, Call&& call);

    using Times = std::array<OpTime, size_t(Op::kCount)>;
    // m_times and the split's backends', added up.
    Times allTimes() const;

    Ops& m_inner;
    bool m_timing = true;
    Times m_times{};
    std::unique_ptr<TimedOps> m_first;   // over the inner split's first backend, once asked for
    std::unique_ptr<TimedOps> m_second;  // and its second
    std::string m_backendName;           // of a split's part: PartTime::backend, named once
};

}  // namespace pagoda

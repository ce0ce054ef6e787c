#pragma once
// What the prefill and decode emulation tests share: a batch of sequences
// over paged K/V as the backend holds it on the device, with hostile
// inputs; its plan and kernel arguments; the float64 reference attention
// and the check of every output against it; and the reporting of what the
// emulator and the tests find.

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "tests/cuda/emulation/cta_emulator.h"

namespace pagoda::cuda::emulation {

constexpr float kQScale = 4.0f;              // q ~ U(-4, 4), K and V ~ U(-1, 1)
constexpr uint16_t kHalfNan = 0x7e00;        // pool slots without a value (PoolValues)
constexpr uint32_t kUnwritten = 0x7fc0beefu;  // a NaN the kernels never write: not written
constexpr int kMaxReported = 5;              // failures listed per kind

struct Sequence {
    int nQueries;
    int startPos;
    int queryOffset;  // its first row in the batch
};

// One case's heads and paged K/V layout.
struct CaseGeometry {
    int headDim;
    int nHeads;
    int nKvHeads;
    int blockSize;
    int window;  // 0: full causal attention
    float softcap = 0.0f;  // > 0: the scores soft-capped (AttentionArgs::softcap)
    bool q8 = false;       // Q8_0 pools (DeviceKvView::q8); headDim a multiple of 32
};

// One case's geometry, sequences and batch rows.
struct AttentionShape : CaseGeometry {
    std::vector<Sequence> sequences;
    int rows;  // of the batch: the sequences' and any no sequence owns (gaps, padding)
};

// Which pool slots of a sequence hold values; all others hold kHalfNan.
enum class PoolValues {
    HeldBlocks,         // every position up to its last one in a block not released
    AttendedPositions,  // only the positions some query of it attends to
};

// f32 values whose end touches an inaccessible page, so that a kernel
// reading past the last row faults rather than reading a neighbour.
class GuardedFloats {
public:
    explicit GuardedFloats(size_t count);
    ~GuardedFloats();
    GuardedFloats(const GuardedFloats&) = delete;
    GuardedFloats& operator=(const GuardedFloats&) = delete;

    float* data() const { return m_data; }

private:
    void* m_base = nullptr;
    size_t m_bytes = 0;
    float* m_data = nullptr;
};

// Makes a SIGSEGV in the test say that the emulated kernel accessed
// memory out of bounds (Q's last row lies right below an inaccessible page).
void explainSegfaults();

// One case's inputs and output as the backend holds them on the device:
// block tables in shuffled physical order with the blocks wholly below the
// window of a sequence's first query released (and three spare blocks), NaN
// in every pool slot without a value (PoolValues; a Q8_0 row's block scales
// are NaN) and in the query rows no sequence owns, Q's last row right below
// an inaccessible page, the output full of kUnwritten. Q8_0 rows are
// quantized by cpu::quantizeRow.
class Batch {
public:
    Batch(AttentionShape shape, PoolValues poolValues, std::mt19937_64& rng);

    const AttentionShape& shape() const { return m_shape; }
    int rows() const { return m_shape.rows; }
    size_t rowElements() const { return size_t(m_shape.nHeads) * size_t(m_shape.headDim); }
    const std::vector<int32_t>& table(size_t seq) const { return m_tables[seq]; }
    // The pools' bytes: f16 or Q8_0 rows.
    const std::vector<uint8_t>& k() const { return m_k; }
    const std::vector<uint8_t>& v() const { return m_v; }
    // The value of element `index` (poolIndex + d) as the pools hold it;
    // NaN in slots without a value.
    double kValue(size_t index) const { return m_kValues[index]; }
    double vValue(size_t index) const { return m_vValues[index]; }
    double maxAbsV() const { return m_maxAbsV; }
    const float* q() const { return m_q.data(); }
    // The output with a guard row on each side; outRows() is batch row 0.
    std::vector<float>& outWithGuards() { return m_out; }
    const float* outRows() const { return m_out.data() + rowElements(); }
    float* outRows() { return m_out.data() + rowElements(); }

    // Element index of (pos, kvHead, 0) of sequence `seq` in the pools.
    size_t poolIndex(size_t seq, int pos, int kvHead) const;

private:
    AttentionShape m_shape;
    std::vector<std::vector<int32_t>> m_tables;  // per sequence, [logical block]: physical block; -1 released
    std::vector<uint8_t> m_k;                    // [numBlocks][nKvHeads][blockSize] rows, f16 or Q8_0
    std::vector<uint8_t> m_v;
    std::vector<double> m_kValues;               // [numBlocks][nKvHeads][blockSize][headDim]
    std::vector<double> m_vValues;
    double m_maxAbsV = 0;
    GuardedFloats m_q;         // f32 [rows][nHeads][headDim]
    std::vector<float> m_out;  // f32 [1 + rows + 1][nHeads][headDim], kUnwritten
};

// The kernels' arguments for `batch` under `plan` (host memory).
AttentionArgs attentionArgs(Batch& batch, const AttentionPlan& plan);

StatusOr<AttentionPlan> planBatch(const Batch& batch, const AttentionPlanOptions& options);

// How expectMatchesReference judges the output.
struct ReferenceCheck {
    bool qRoundedToHalf;  // the reference rounds q to f16 as the kernel does; else the f32 q
    double scale;         // of the scores
    double tolerance;     // |out - ref| <= tolerance * max|v|
    bool paddingZeros;    // rows no sequence owns must be +0; else they are not checked here
    // (Q8_0 pools) the reference rounds K and V to f16 as the prefill kernel's tiles do
    bool kvRoundedToHalf = false;
};

// Every output of every sequence against a float64 attention over
// positions [windowStart(pos), pos]: finite and within tolerance. Records
// max_error and max_error_over_max_v.
void expectMatchesReference(const Batch& batch, const ReferenceCheck& check);

// The messages one a line, each indented, after a line break.
std::string joined(const std::vector<std::string>& messages);

// Adds `problem` to `problems` unless kMaxReported are there.
void report(std::vector<std::string>& problems, std::string problem);

std::string ctaName(Index3 block);

// No shared-memory hazard and no emulation error in a launch of `kernel`.
void expectNoFindings(const Findings& findings, const std::string& kernel);

}  // namespace pagoda::cuda::emulation

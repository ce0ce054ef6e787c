// The split-context (flash-decoding) decode attention kernels
// (kernels/cuda/decode_attention_kernel.cuh) without a device: their own
// source, compiled as host C++ (decode_kernel_host.cpp), runs on the CTA
// emulator (cta_emulator.h), the attention kernel and then, when the plan
// splits the context, the reduce kernel, as decodeAttention launches them.
// Each case lays out paged K/V and a batch of decode rows (one query per
// sequence, or a chunk at a head dim without a prefill kernel), plans it
// with planAttention (padding rows and a fixed context as CUDA graphs ask
// for, in some cases) and checks, against a float64 sliding-window
// attention: every output finite and within tolerance, padding rows exact
// zeros; no divergent warp collective or barrier and no deadlock; each
// output element written once, by the CTA of its (row, head), each split
// partial once, by the CTA of its (row, head, split), at the place the
// reduce kernel reads it, and nothing else touched. The inputs are hostile:
// block tables in shuffled physical order with the blocks below the window
// released, NaN in every pool slot outside the positions some row attends
// to (so also below the window in a block still held, and past the last
// position), NaN in the query rows of padding, the kernels' static shared
// arrays full of NaN before each CTA. Some cases run the threads in a new
// random order in every scheduling round. Seeds are fresh every run.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/half.h"
#include "tests/cuda/emulation/cta_emulator.h"
#include "tests/cuda/emulation/decode_kernel_host.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

// |out - ref| <= kTolerance * max|v|. The kernels compute in f32 from f32 q
// (the reference uses the same q, not rounded) and the f16 K and V, so the
// only errors are f32 roundings: of each score's dot product (|q| <= 4,
// |k| <= 1, head dim <= 128: a few 1e-7 in the exponent), of exp2f, and of
// the running sums of up to a few hundred p * v per warp, each step off by
// at most 2^-24 of the running value. That bounds the error by about
// 300 * 2^-24 = 1.8e-5 of max|v| in the worst case; with rounding errors
// of random sign it is some 1e-6, and the cases measure 3e-8 to 2e-7
// (max_error_over_max_v). 1e-5 leaves a margin of 50 over what is seen
// while any position dropped or counted twice, any missing rescale, or q
// rounded to f16 moves some output by far more (q is peaked: kQScale).
constexpr double kTolerance = 1e-5;
constexpr float kQScale = 4.0f;              // q ~ U(-4, 4), K and V ~ U(-1, 1)
constexpr uint16_t kHalfNan = 0x7e00;        // pool slots no row attends to
constexpr uint32_t kUnwritten = 0x7fc0beefu;  // a NaN the kernels never write: not written
constexpr int kMaxReported = 5;              // failures listed per kind

struct Sequence {
    int nQueries;  // 1, or a chunk at a head dim without a prefill kernel
    int startPos;
};

struct DecodeCase {
    std::string name;
    int headDim;
    int nHeads;
    int nKvHeads;
    int blockSize;
    int window;  // 0: full causal attention
    std::vector<Sequence> sequences;  // their rows one after another from batch row 0
    int padRowsTo;     // AttentionPlanOptions::padRowsTo
    int fixedContext;  // AttentionPlanOptions::fixedContext
    int nSplits;       // what planAttention gives: the case was chosen for it
    bool shuffledThreads;
};

void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.name; }

// planDecodeSplits aims at 2 * 108 CTAs (the default smCount) but gives a
// split at least kMinSplitTokens = 256 positions: a context of n positions
// gets at most ceil(n / 256) splits. Attention CTAs take 8 query heads of
// one KV head at head dims 64 and 128, 4 at others (80 here): a group of 12
// takes two or three CTAs per KV head.
std::vector<DecodeCase> decodeCases() {
    return {
        {"D64_Mha4_Bs16_RowAt37", 64, 4, 4, 16, 0, {{1, 37}}, 0, 0, 1, false},
        {"D128_Mha4_Bs16_RowAt700", 128, 4, 4, 16, 0, {{1, 700}}, 0, 0, 3, true},
        // Row 37 has positions in split 0 only, row 600 in splits 0-2.
        {"D64_Gqa8to2_Bs16_RowsAt1000And37And600", 64, 8, 2, 16, 0, {{1, 1000}, {1, 37}, {1, 600}}, 0, 0, 4, false},
        // Blocks 0-27 lie wholly below row 1500's window (from 901): released.
        {"D128_Gqa8to2_Bs32_Window600_RowsAt1500And300", 128, 8, 2, 32, 600, {{1, 1500}, {1, 300}}, 0, 0, 3, true},
        {"D128_Mqa8to1_Bs16_RowsAt300And5_Pad4", 128, 8, 1, 16, 0, {{1, 300}, {1, 5}}, 4, 0, 2, false},
        {"D64_Mqa8to1_Bs32_RowAt1200", 64, 8, 1, 32, 0, {{1, 1200}}, 0, 0, 5, true},
        {"D64_Gqa24to2_Bs32_RowsAt520And64", 64, 24, 2, 32, 0, {{1, 520}, {1, 64}}, 0, 0, 3, false},
        {"D128_Gqa24to2_Bs16_RowsAt100And31_Pad4", 128, 24, 2, 16, 0, {{1, 100}, {1, 31}}, 4, 0, 1, true},
        // Head dim 80 has no prefill kernel: a chunk of 3 queries is 3 decode rows.
        {"D80_Gqa24to2_Bs16_RowAt400AndChunk3At10_Fixed1024_Pad6", 80, 24, 2, 16, 0, {{1, 400}, {3, 10}}, 6, 1024, 4,
         false},
        // Blocks 0-3 released; positions 128-150 of block 4 lie below the window.
        {"D80_Mha4_Bs32_Window50_RowAt200", 80, 4, 4, 32, 50, {{1, 200}}, 0, 0, 1, true},
        // A CUDA graph's plan: 8 splits of 256 for any context up to 2048, padding to 8 rows.
        {"D64_Gqa8to2_Bs16_Fixed2048_Pad8_RowsAt5And300And129", 64, 8, 2, 16, 0, {{1, 5}, {1, 300}, {1, 129}}, 8, 2048,
         8, false},
        // Split 1 of row 700 starts 256 past its window start (401); row 50's is empty.
        {"D128_Mqa4to1_Bs16_Window300_Fixed512_RowsAt700And50", 128, 4, 1, 16, 300, {{1, 700}, {1, 50}}, 0, 512, 2,
         true},
    };
}

int windowStart(int pos, int window) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

// One case's inputs and output as the backend holds them on the device.
class Batch {
public:
    Batch(const DecodeCase& c, std::mt19937_64& rng);

    const DecodeCase& testCase() const { return m_case; }
    int realRows() const { return m_realRows; }
    int rows() const { return m_rows; }  // padding included
    int queryOffset(size_t seq) const { return m_queryOffsets[seq]; }
    size_t rowElements() const { return size_t(m_case.nHeads) * size_t(m_case.headDim); }
    const std::vector<int32_t>& table(size_t seq) const { return m_tables[seq]; }
    const std::vector<uint16_t>& k() const { return m_k; }
    const std::vector<uint16_t>& v() const { return m_v; }
    double maxAbsV() const { return m_maxAbsV; }
    const float* q() const { return m_q.data(); }
    // The output with a guard row on each side; outRows() is batch row 0.
    std::vector<float>& outWithGuards() { return m_out; }
    const float* outRows() const { return m_out.data() + rowElements(); }
    float* outRows() { return m_out.data() + rowElements(); }

    // Element index of (pos, kvHead, 0) of sequence `seq` in the pools.
    size_t poolIndex(size_t seq, int pos, int kvHead) const {
        const int32_t block = m_tables[seq][size_t(pos / m_case.blockSize)];
        return ((size_t(block) * size_t(m_case.nKvHeads) + size_t(kvHead)) * size_t(m_case.blockSize) +
                size_t(pos % m_case.blockSize)) *
               size_t(m_case.headDim);
    }

private:
    const DecodeCase& m_case;
    int m_realRows = 0;
    int m_rows = 0;
    std::vector<int> m_queryOffsets;             // per sequence, its first batch row
    std::vector<std::vector<int32_t>> m_tables;  // per sequence, [logical block]: physical block; -1 released
    std::vector<uint16_t> m_k;                   // f16 [numBlocks][nKvHeads][blockSize][headDim]
    std::vector<uint16_t> m_v;
    double m_maxAbsV = 0;
    std::vector<float> m_q;    // f32 [rows][nHeads][headDim]
    std::vector<float> m_out;  // f32 [1 + rows + 1][nHeads][headDim], kUnwritten
};

Batch::Batch(const DecodeCase& c, std::mt19937_64& rng) : m_case(c) {
    for (const Sequence& s : c.sequences) {
        m_queryOffsets.push_back(m_realRows);
        m_realRows += s.nQueries;
    }
    m_rows = std::max(m_realRows, c.padRowsTo);

    // Physical blocks in a shuffled order; blocks wholly below the window
    // of a sequence's first query released; three spare blocks.
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    int nBlocks = 0;
    for (const Sequence& s : c.sequences) {
        const int needed = (s.startPos + s.nQueries + c.blockSize - 1) / c.blockSize;
        const int released = windowStart(s.startPos, c.window) / c.blockSize;
        std::vector<int32_t>& table = m_tables.emplace_back(size_t(needed), -1);
        for (int b = released; b < needed; ++b) table[size_t(b)] = nBlocks++;
    }
    nBlocks += 3;
    std::vector<int32_t> physical(static_cast<size_t>(nBlocks));
    std::iota(physical.begin(), physical.end(), 0);
    std::shuffle(physical.begin(), physical.end(), rng);
    for (std::vector<int32_t>& table : m_tables) {
        for (int32_t& block : table) {
            if (block >= 0) block = physical[size_t(block)];
        }
    }

    // Values only where some row of the sequence attends.
    const size_t poolElements = size_t(nBlocks) * size_t(c.nKvHeads) * size_t(c.blockSize) * size_t(c.headDim);
    m_k.assign(poolElements, kHalfNan);
    m_v.assign(poolElements, kHalfNan);
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        for (int pos = windowStart(s.startPos, c.window); pos < s.startPos + s.nQueries; ++pos) {
            for (int kvHead = 0; kvHead < c.nKvHeads; ++kvHead) {
                const size_t at = poolIndex(seq, pos, kvHead);
                for (int d = 0; d < c.headDim; ++d) {
                    m_k[at + size_t(d)] = floatToHalf(uniform(rng));
                    m_v[at + size_t(d)] = floatToHalf(uniform(rng));
                    m_maxAbsV = std::max(m_maxAbsV, std::fabs(test::refHalfToDouble(m_v[at + size_t(d)])));
                }
            }
        }
    }

    // Padding rows' queries are NaN: their outputs must not depend on them.
    m_q.assign(size_t(m_rows) * rowElements(), std::nanf(""));
    std::generate(m_q.begin(), m_q.begin() + ptrdiff_t(size_t(m_realRows) * rowElements()),
                  [&] { return kQScale * uniform(rng); });
    m_out.assign((size_t(m_rows) + 2) * rowElements(), std::bit_cast<float>(kUnwritten));
}

AttentionArgs attentionArgs(Batch& batch, const AttentionPlan& plan) {
    const DecodeCase& c = batch.testCase();
    AttentionArgs args;
    args.q = batch.q();
    args.out = batch.outRows();
    args.nHeads = c.nHeads;
    args.scale = 1.0f / std::sqrt(float(c.headDim));
    args.window = c.window;
    args.kv.k = batch.k().data();
    args.kv.v = batch.v().data();
    args.kv.nKvHeads = c.nKvHeads;
    args.kv.blockSize = c.blockSize;
    args.kv.headDim = c.headDim;
    args.seqs = plan.packed.data() + plan.seqOffset;
    args.tables = plan.packed.data() + plan.tableOffset;
    return args;
}

StatusOr<AttentionPlan> planBatch(const Batch& batch) {
    const DecodeCase& c = batch.testCase();
    const AttentionGeometry geometry{c.nHeads, c.nKvHeads, c.headDim, c.blockSize, c.window};
    std::vector<AttentionSequenceSpec> specs;
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        specs.push_back({batch.queryOffset(seq), s.nQueries, s.startPos, batch.table(seq).data(),
                         int(batch.table(seq).size())});
    }
    AttentionPlanOptions options;
    options.padRowsTo = c.padRowsTo;
    options.fixedContext = c.fixedContext;
    return planAttention(geometry, specs, options);
}

// The batch row a decode row descriptor names, as the planner means it:
// a sequence's query, or a padding token's own row.
int tokenRow(const Batch& batch, const int32_t* rowDesc) {
    return rowDesc[0] < 0 ? rowDesc[1] : batch.queryOffset(size_t(rowDesc[0])) + rowDesc[1];
}

std::string ctaName(emulation::Index3 block) {
    return "CTA (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," + std::to_string(block.z) + ")";
}

// Which CTA may write each float of a buffer in one launch, from the
// launch contract rather than the kernel: after every CTA, each float that
// changed must be one of its own and not written before (by any launch);
// after the launch, each float some CTA owns must be written.
class WriteCheck {
public:
    // `describe` names a float of `buffer` (guards included) in messages;
    // CTAs are numbered x-fastest in `grid`.
    WriteCheck(std::vector<float>& buffer, std::function<std::string(size_t)> describe, emulation::Index3 grid)
        : m_buffer(buffer), m_describe(std::move(describe)), m_grid(grid), m_owner(buffer.size(), -1) {}

    void own(size_t index, int cta) { m_owner[index] = cta; }
    void beforeCta() { m_snapshot = m_buffer; }

    void afterCta(int cta, const std::string& ctaName, std::vector<std::string>& problems) {
        for (size_t i = 0; i < m_buffer.size(); ++i) {
            if (std::bit_cast<uint32_t>(m_buffer[i]) == std::bit_cast<uint32_t>(m_snapshot[i])) continue;
            if (m_owner[i] != cta) {
                report(problems, ctaName + " wrote " + m_describe(i) +
                                     (m_owner[i] < 0 ? ", which no CTA of this launch owns"
                                                     : ", which is " + owner(i) + "'s"));
                return;  // one message per CTA and buffer
            }
            if (std::bit_cast<uint32_t>(m_snapshot[i]) != kUnwritten) {
                report(problems, ctaName + " overwrote " + m_describe(i) + ", written before");
                return;
            }
        }
    }

    void afterLaunch(std::vector<std::string>& problems) const {
        long missing = 0;
        for (size_t i = 0; i < m_buffer.size(); ++i) {
            if (m_owner[i] >= 0 && std::bit_cast<uint32_t>(m_buffer[i]) == kUnwritten && missing++ == 0) {
                report(problems, m_describe(i) + " never written by " + owner(i));
            }
        }
        if (missing > 1) report(problems, std::to_string(missing) + " such floats in all");
    }

private:
    std::string owner(size_t i) const {
        const unsigned cta = unsigned(m_owner[i]);
        return ctaName({cta % m_grid.x, cta / m_grid.x % m_grid.y, cta / m_grid.x / m_grid.y});
    }

    static void report(std::vector<std::string>& problems, std::string problem) {
        if (problems.size() < kMaxReported) problems.push_back(std::move(problem));
    }

    std::vector<float>& m_buffer;
    std::function<std::string(size_t)> m_describe;
    emulation::Index3 m_grid;
    std::vector<int> m_owner;  // CTA (linear index in the grid), -1 none
    std::vector<float> m_snapshot;
};

std::string joined(const std::vector<std::string>& messages) {
    std::string text;
    for (const std::string& m : messages) text += "\n  " + m;
    return text;
}

// Runs a launch with the output and the partials checked around each CTA.
template <class Run>
void checkedLaunch(const char* kernel, WriteCheck& out, WriteCheck& partials, emulation::Index3 grid,
                   bool shuffledThreads, uint64_t seed, const Run& run) {
    std::vector<std::string> problems;
    emulation::LaunchConfig config;
    config.beforeCta = [&](emulation::Index3) {
        out.beforeCta();
        partials.beforeCta();
    };
    config.afterCta = [&](emulation::Index3 block) {
        const int cta = int((block.z * grid.y + block.y) * grid.x + block.x);
        const std::string name = std::string(kernel) + " " + ctaName(block);
        out.afterCta(cta, name, problems);
        partials.afterCta(cta, name, problems);
    };
    config.shuffleThreads = shuffledThreads;
    config.seed = seed;
    const emulation::Findings findings = run(std::move(config));
    out.afterLaunch(problems);
    partials.afterLaunch(problems);
    EXPECT_EQ(findings.hazardCount, 0) << kernel << ": shared-memory hazards, the first:" << joined(findings.hazards);
    EXPECT_EQ(findings.errorCount, 0) << kernel << ": emulation errors, the first:" << joined(findings.errors);
    EXPECT_TRUE(problems.empty()) << kernel << ": floats written by the wrong CTA or not at all:" << joined(problems);
}

// Exact attention of one query row over positions [windowStart(pos), pos]
// of its sequence, from the f32 q the kernel reads.
std::vector<double> referenceRow(const Batch& batch, size_t seq, const float* qRow, int kvHead, int pos,
                                 double scale) {
    const DecodeCase& c = batch.testCase();
    const int first = windowStart(pos, c.window);
    std::vector<double> scores;
    for (int p = first; p <= pos; ++p) {
        const size_t at = batch.poolIndex(seq, p, kvHead);
        double dot = 0;
        for (int d = 0; d < c.headDim; ++d) dot += double(qRow[d]) * test::refHalfToDouble(batch.k()[at + size_t(d)]);
        scores.push_back(dot * scale);
    }
    const double maxScore = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    for (double& s : scores) sum += (s = std::exp(s - maxScore));
    std::vector<double> out(size_t(c.headDim), 0.0);
    for (int p = first; p <= pos; ++p) {
        const double weight = scores[size_t(p - first)] / sum;
        const size_t at = batch.poolIndex(seq, p, kvHead);
        for (int d = 0; d < c.headDim; ++d) out[size_t(d)] += weight * test::refHalfToDouble(batch.v()[at + size_t(d)]);
    }
    return out;
}

// Every real row against the reference; every padding row exact zeros.
void expectMatchesReference(const Batch& batch, double scale) {
    const DecodeCase& c = batch.testCase();
    const double tolerance = kTolerance * batch.maxAbsV();
    long wrong = 0;
    long checked = 0;
    double maxError = 0;
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        for (int r = 0; r < s.nQueries; ++r) {
            const int row = batch.queryOffset(seq) + r;
            const int pos = s.startPos + r;
            for (int head = 0; head < c.nHeads; ++head) {
                const size_t at = size_t(row) * batch.rowElements() + size_t(head) * size_t(c.headDim);
                const int kvHead = head / (c.nHeads / c.nKvHeads);
                const std::vector<double> want = referenceRow(batch, seq, batch.q() + at, kvHead, pos, scale);
                for (int d = 0; d < c.headDim; ++d) {
                    const float got = batch.outRows()[at + size_t(d)];
                    const double error = std::fabs(double(got) - want[size_t(d)]);
                    ++checked;
                    if (std::isfinite(got) && error <= tolerance) {
                        maxError = std::max(maxError, error);
                        continue;
                    }
                    if (wrong++ < kMaxReported) {
                        ADD_FAILURE() << "sequence " << seq << " query " << r << " (batch row " << row
                                      << ", position " << pos << ") head " << head << " dim " << d << ": got " << got
                                      << (std::bit_cast<uint32_t>(got) == kUnwritten ? " (never written)" : "")
                                      << ", want " << want[size_t(d)] << " (tolerance " << tolerance << ")";
                    }
                }
            }
        }
    }
    for (int row = batch.realRows(); row < batch.rows(); ++row) {
        for (size_t i = 0; i < batch.rowElements(); ++i) {
            const float got = batch.outRows()[size_t(row) * batch.rowElements() + i];
            ++checked;
            if (std::bit_cast<uint32_t>(got) == 0) continue;
            if (wrong++ < kMaxReported) {
                ADD_FAILURE() << "padding batch row " << row << " head " << i / size_t(c.headDim) << " dim "
                              << i % size_t(c.headDim) << ": got " << got
                              << (std::bit_cast<uint32_t>(got) == kUnwritten ? " (never written)" : "")
                              << ", want +0";
            }
        }
    }
    EXPECT_EQ(wrong, 0) << "of " << checked << " outputs, these were not finite or outside the tolerance";
    char relative[32];
    std::snprintf(relative, sizeof relative, "%.2e", maxError / batch.maxAbsV());
    testing::Test::RecordProperty("max_error_over_max_v", relative);
}

class DecodeEmulation : public testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeEmulation, MatchesFloat64AttentionWrittenOnce) {
    const DecodeCase& c = GetParam();
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    Batch batch(c, rng);
    const StatusOr<AttentionPlan> planned = planBatch(batch);
    ASSERT_TRUE(planned.ok()) << planned.status().message();
    const AttentionPlan& plan = planned.value();
    ASSERT_EQ(plan.nTiles, 0) << "planAttention sent rows to the prefill kernel";
    ASSERT_EQ(plan.nRows, batch.rows());
    ASSERT_EQ(plan.split.nSplits, c.nSplits) << "the case was chosen for " << c.nSplits << " splits";
    const int maxH = emulation::decodeKernelHeads(c.headDim);
    ASSERT_EQ(maxH, decodeHeadsPerCta(c.headDim)) << "the planner and the launch disagree on heads per CTA";

    const int32_t* rows = plan.packed.data() + plan.rowOffset;
    const int nRows = plan.nRows;
    const int nSplits = plan.split.nSplits;
    const int D = c.headDim;
    const int group = c.nHeads / c.nKvHeads;
    const int ctasPerKvHead = (group + maxH - 1) / maxH;
    const size_t partialFloats = plan.partialBytes / sizeof(float);
    // A guard of one row's partials on each side.
    const size_t partialGuard = size_t(c.nHeads) * size_t(nSplits) * size_t(2 + D);
    std::vector<float> partials(partialFloats + 2 * partialGuard, std::bit_cast<float>(kUnwritten));
    float* partialsProper = partials.data() + partialGuard;
    ASSERT_EQ(partialFloats, nSplits > 1 ? size_t(nRows) * size_t(c.nHeads) * size_t(nSplits) * size_t(2 + D) : 0);
    const AttentionArgs args = attentionArgs(batch, plan);

    // The attention kernel: CTA (split, kvHead * ctasPerKvHead + part, row)
    // has query heads kvHead * group + part * maxH onwards, up to maxH of
    // its KV head's; with one split it writes their outputs, else their
    // partials: max and sum [nRows][nHeads][nSplits], then the
    // accumulators [nRows][nHeads][nSplits][D] (decode::Partials).
    const emulation::Index3 attentionGrid{unsigned(nSplits), unsigned(c.nKvHeads * ctasPerKvHead), unsigned(nRows)};
    const size_t slots = size_t(nRows) * size_t(c.nHeads) * size_t(nSplits);
    const auto describeOut = [&](size_t i) {
        const long row = long(i / batch.rowElements()) - 1;  // -1 and rows(): the guard rows
        const size_t within = i % batch.rowElements();
        return "output batch row " + std::to_string(row) + " head " + std::to_string(within / size_t(D)) + " dim " +
               std::to_string(within % size_t(D));
    };
    const auto describePartial = [&](size_t i) {
        const long at = long(i) - long(partialGuard);
        if (at < 0 || at >= long(partialFloats)) return "partials float " + std::to_string(at) + " (a guard)";
        const size_t part = size_t(at) < 2 * slots ? size_t(at) / slots : 2;
        const size_t slot = part < 2 ? size_t(at) % slots : (size_t(at) - 2 * slots) / size_t(D);
        return std::string(part == 0 ? "partial max" : part == 1 ? "partial sum" : "partial accumulator") +
               " of decode row " + std::to_string(slot / size_t(nSplits) / size_t(c.nHeads)) + " head " +
               std::to_string(slot / size_t(nSplits) % size_t(c.nHeads)) + " split " +
               std::to_string(slot % size_t(nSplits)) +
               (part == 2 ? " dim " + std::to_string((size_t(at) - 2 * slots) % size_t(D)) : std::string());
    };
    WriteCheck attentionOut(batch.outWithGuards(), describeOut, attentionGrid);
    WriteCheck attentionPartials(partials, describePartial, attentionGrid);
    for (int r = 0; r < nRows; ++r) {
        const size_t outRow = (1 + size_t(tokenRow(batch, rows + kRowDescInts * r))) * batch.rowElements();
        for (unsigned y = 0; y < attentionGrid.y; ++y) {
            const int kvHead = int(y) / ctasPerKvHead;
            const int h0 = kvHead * group + int(y) % ctasPerKvHead * maxH;
            for (int h = h0; h < std::min(h0 + maxH, (kvHead + 1) * group); ++h) {
                for (int split = 0; split < nSplits; ++split) {
                    const int cta = int((unsigned(r) * attentionGrid.y + y) * attentionGrid.x + unsigned(split));
                    const size_t slot = (size_t(r) * size_t(c.nHeads) + size_t(h)) * size_t(nSplits) + size_t(split);
                    for (int d = 0; d < D; ++d) {
                        if (nSplits == 1) {
                            attentionOut.own(outRow + size_t(h * D + d), cta);
                        } else {
                            attentionPartials.own(partialGuard + 2 * slots + slot * size_t(D) + size_t(d), cta);
                        }
                    }
                    if (nSplits > 1) {
                        attentionPartials.own(partialGuard + slot, cta);
                        attentionPartials.own(partialGuard + slots + slot, cta);
                    }
                }
            }
        }
    }
    checkedLaunch("decodeAttentionKernel", attentionOut, attentionPartials, attentionGrid, c.shuffledThreads, seed,
                  [&](emulation::LaunchConfig config) {
                      return emulation::runDecodeAttentionKernel(args, rows, nRows, plan.split,
                                                                 partialsProper, std::move(config));
                  });

    if (nSplits > 1) {
        // The reduce kernel: CTA (head, row) writes that head's output of that row.
        const emulation::Index3 reduceGrid{unsigned(c.nHeads), unsigned(nRows), 1};
        WriteCheck reduceOut(batch.outWithGuards(), describeOut, reduceGrid);
        WriteCheck reducePartials(partials, describePartial, reduceGrid);
        for (int r = 0; r < nRows; ++r) {
            const size_t outRow = (1 + size_t(tokenRow(batch, rows + kRowDescInts * r))) * batch.rowElements();
            for (int h = 0; h < c.nHeads; ++h) {
                for (int d = 0; d < D; ++d) reduceOut.own(outRow + size_t(h * D + d), r * c.nHeads + h);
            }
        }
        checkedLaunch("decodeReduceKernel", reduceOut, reducePartials, reduceGrid, c.shuffledThreads, seed,
                      [&](emulation::LaunchConfig config) {
                          return emulation::runDecodeReduceKernel(args, rows, nRows, nSplits,
                                                                  partialsProper, std::move(config));
                      });
    }
    expectMatchesReference(batch, double(args.scale));
}

INSTANTIATE_TEST_SUITE_P(Cases, DecodeEmulation, testing::ValuesIn(decodeCases()),
                         [](const testing::TestParamInfo<DecodeCase>& info) { return info.param.name; });

// The emulator's promise the decode cases rely on: a CTA finds its static
// __shared__ arrays full of NaN, whatever the CTA before it left there.
TEST(DecodeEmulationShared, StaticSharedArraysStartEveryCtaAsNan) {
    if (!emulation::poisonsStaticShared()) GTEST_SKIP() << "this C library does not let the emulator reach them";
    std::vector<float> firstReads(3, 0.0f);
    const emulation::Findings findings = emulation::runStaticSharedProbe(int(firstReads.size()), firstReads.data());
    EXPECT_EQ(findings.errorCount, 0) << joined(findings.errors);
    for (size_t cta = 0; cta < firstReads.size(); ++cta) {
        EXPECT_EQ(std::bit_cast<uint32_t>(firstReads[cta]), 0xffffffffu) << "CTA " << cta << " read " << firstReads[cta];
    }
}

}  // namespace
}  // namespace pagoda::cuda

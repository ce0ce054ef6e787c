// The split-context (flash-decoding) decode attention kernels
// (kernels/cuda/decode_attention_kernel.cuh) without a device: their own
// source, compiled as host C++ (decode_kernel_host.cpp), runs on the CTA
// emulator (cta_emulator.h), the attention kernel and then, when the plan
// splits the context, the reduce kernel, as decodeAttention launches them.
// Each case lays out paged K/V and a batch of decode rows (one query per
// sequence, or a chunk at a head dim without a prefill kernel;
// attention_cases.h), plans it
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
// position), NaN in the query rows of padding, Q's last row right below an
// inaccessible page, the kernels' static shared arrays full of NaN before
// each CTA. Some cases run the threads in a new random order in every
// scheduling round. Seeds are fresh every run.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "tests/cuda/emulation/attention_cases.h"
#include "tests/cuda/emulation/cta_emulator.h"
#include "tests/cuda/emulation/decode_kernel_host.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

using emulation::AttentionShape;
using emulation::Batch;
using emulation::ctaName;
using emulation::joined;
using emulation::kUnwritten;

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

struct DecodeSequence {
    int nQueries;  // 1, or a chunk at a head dim without a prefill kernel
    int startPos;
};

struct DecodeCase {
    std::string name;
    emulation::CaseGeometry geometry;  // headDim, nHeads, nKvHeads, blockSize, window
    std::vector<DecodeSequence> sequences;  // their rows one after another from batch row 0
    int padRowsTo;     // AttentionPlanOptions::padRowsTo
    int fixedContext;  // AttentionPlanOptions::fixedContext
    int nSplits;       // what planAttention gives: the case was chosen for it
    bool shuffledThreads;
};

void PrintTo(const DecodeCase& c, std::ostream* os) { *os << c.name; }

// planDecodeSplits plans for 2 * 108 resident CTAs (the default smCount
// and decodeCtasPerSm) but gives a split at least kMinSplitTokens = 64
// positions: a context of n positions gets at most ceil(n / 64) splits. Attention CTAs take the query heads of
// one KV head rounded up to a power of two, at most 8 at head dims 64 and
// 128 and 4 at others (80 here): 1, 2, 4 or 8 heads, and a group of 12
// takes two or three CTAs per KV head.
std::vector<DecodeCase> decodeCases() {
    return {
        {"D64_Mha4_Bs16_RowAt37", {64, 4, 4, 16, 0}, {{1, 37}}, 0, 0, 1, false},
        // Groups of 2 (2 heads per CTA) and of 3 (4 per CTA, one idle).
        {"D128_Gqa4to2_Bs16_RowAt300", {128, 4, 2, 16, 0}, {{1, 300}}, 0, 0, 5, true},
        {"D80_Gqa6to2_Bs16_RowsAt130And9", {80, 6, 2, 16, 0}, {{1, 130}, {1, 9}}, 0, 0, 3, false},
        {"D128_Mha4_Bs16_RowAt700", {128, 4, 4, 16, 0}, {{1, 700}}, 0, 0, 11, true},
        // Row 37 has positions in split 0 only, row 600 in splits 0-9.
        {"D64_Gqa8to2_Bs16_RowsAt1000And37And600", {64, 8, 2, 16, 0}, {{1, 1000}, {1, 37}, {1, 600}}, 0, 0, 16, false},
        // Blocks 0-27 lie wholly below row 1500's window (from 901): released.
        {"D128_Gqa8to2_Bs32_Window600_RowsAt1500And300", {128, 8, 2, 32, 600}, {{1, 1500}, {1, 300}}, 0, 0, 10, true},
        {"D128_Mqa8to1_Bs16_RowsAt300And5_Pad4", {128, 8, 1, 16, 0}, {{1, 300}, {1, 5}}, 4, 0, 5, false},
        {"D64_Mqa8to1_Bs32_RowAt1200", {64, 8, 1, 32, 0}, {{1, 1200}}, 0, 0, 19, true},
        {"D64_Gqa24to2_Bs32_RowsAt520And64", {64, 24, 2, 32, 0}, {{1, 520}, {1, 64}}, 0, 0, 9, false},
        {"D128_Gqa24to2_Bs16_RowsAt100And31_Pad4", {128, 24, 2, 16, 0}, {{1, 100}, {1, 31}}, 4, 0, 2, true},
        // Head dim 80 has no prefill kernel: a chunk of 3 queries is 3 decode rows.
        {"D80_Gqa24to2_Bs16_RowAt400AndChunk3At10_Fixed1024_Pad6", {80, 24, 2, 16, 0}, {{1, 400}, {3, 10}}, 6, 1024, 6,
         false},
        // Blocks 0-3 released; positions 128-150 of block 4 lie below the window.
        {"D80_Mha4_Bs32_Window50_RowAt200", {80, 4, 4, 32, 50}, {{1, 200}}, 0, 0, 1, true},
        // A CUDA graph's plan: 12 splits (of 176 at 2048) for any context up
        // to 2048, padding to 8 rows; row 300 cuts its own context into 5
        // splits of 64, rows 5 and 129 into 1 and 3.
        {"D64_Gqa8to2_Bs16_Fixed2048_Pad8_RowsAt5And300And129", {64, 8, 2, 16, 0}, {{1, 5}, {1, 300}, {1, 129}}, 8,
         2048, 12, false},
        // Split 1 of row 700 starts 64 past its window start (401); row 50's is empty.
        {"D128_Mqa4to1_Bs16_Window300_Fixed512_RowsAt700And50", {128, 4, 1, 16, 300}, {{1, 700}, {1, 50}}, 0, 512, 7,
         true},
        // Scores capped at 2, split and unsplit rows.
        {"D128_Gqa8to2_Bs16_Softcap2_RowsAt1000And37", {128, 8, 2, 16, 0, 2.0f}, {{1, 1000}, {1, 37}}, 0, 0, 16, true},
        {"D64_Mha4_Bs32_Window50_Softcap2_RowAt200", {64, 4, 4, 32, 50, 2.0f}, {{1, 200}}, 0, 0, 1, false},
        // Q8_0 pools; at head dim 96 a lane's 3 elements cross a block boundary.
        {"D128_Gqa8to2_Bs16_Q8_RowsAt1000And37And600", {128, 8, 2, 16, 0, 0.0f, true}, {{1, 1000}, {1, 37}, {1, 600}},
         0, 0, 16, true},
        {"D96_Gqa6to2_Bs16_Q8_RowsAt130And9", {96, 6, 2, 16, 0, 0.0f, true}, {{1, 130}, {1, 9}}, 0, 0, 3, false},
        {"D64_Mqa4to1_Bs16_Window300_Fixed512_Q8_RowsAt700And50", {64, 4, 1, 16, 300, 0.0f, true}, {{1, 700}, {1, 50}},
         0, 512, 7, true},
    };
}

AttentionShape attentionShape(const DecodeCase& c) {
    AttentionShape shape{c.geometry, {}, 0};
    for (const DecodeSequence& s : c.sequences) {
        shape.sequences.push_back({s.nQueries, s.startPos, shape.rows});
        shape.rows += s.nQueries;
    }
    shape.rows = std::max(shape.rows, c.padRowsTo);  // padding rows after the sequences'
    return shape;
}

// The batch row a decode row descriptor names, as the planner means it:
// a sequence's query, or a padding token's own row.
int tokenRow(const Batch& batch, const int32_t* rowDesc) {
    return rowDesc[0] < 0 ? rowDesc[1] : batch.shape().sequences[size_t(rowDesc[0])].queryOffset + rowDesc[1];
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
                emulation::report(problems, ctaName + " wrote " + m_describe(i) +
                                     (m_owner[i] < 0 ? ", which no CTA of this launch owns"
                                                     : ", which is " + owner(i) + "'s"));
                return;  // one message per CTA and buffer
            }
            if (std::bit_cast<uint32_t>(m_snapshot[i]) != kUnwritten) {
                emulation::report(problems, ctaName + " overwrote " + m_describe(i) + ", written before");
                return;
            }
        }
    }

    void afterLaunch(std::vector<std::string>& problems) const {
        long missing = 0;
        for (size_t i = 0; i < m_buffer.size(); ++i) {
            if (m_owner[i] >= 0 && std::bit_cast<uint32_t>(m_buffer[i]) == kUnwritten && missing++ == 0) {
                emulation::report(problems, m_describe(i) + " never written by " + owner(i));
            }
        }
        if (missing > 1) emulation::report(problems, std::to_string(missing) + " such floats in all");
    }

private:
    std::string owner(size_t i) const {
        const unsigned cta = unsigned(m_owner[i]);
        return ctaName({cta % m_grid.x, cta / m_grid.x % m_grid.y, cta / m_grid.x / m_grid.y});
    }

    std::vector<float>& m_buffer;
    std::function<std::string(size_t)> m_describe;
    emulation::Index3 m_grid;
    std::vector<int> m_owner;  // CTA (linear index in the grid), -1 none
    std::vector<float> m_snapshot;
};

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
    emulation::expectNoFindings(findings, kernel);
    EXPECT_TRUE(problems.empty()) << kernel << ": floats written by the wrong CTA or not at all:" << joined(problems);
}

class DecodeEmulation : public testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeEmulation, MatchesFloat64AttentionWrittenOnce) {
    const DecodeCase& c = GetParam();
    const emulation::CaseGeometry& g = c.geometry;
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    emulation::explainSegfaults();
    std::mt19937_64 rng(seed);
    Batch batch(attentionShape(c), emulation::PoolValues::AttendedPositions, rng);
    AttentionPlanOptions options;
    options.padRowsTo = c.padRowsTo;
    options.fixedContext = c.fixedContext;
    const StatusOr<AttentionPlan> planned = emulation::planBatch(batch, options);
    ASSERT_TRUE(planned.ok()) << planned.status().message();
    const AttentionPlan& plan = planned.value();
    ASSERT_EQ(plan.nTiles, 0) << "planAttention sent rows to the prefill kernel";
    ASSERT_EQ(plan.nRows, batch.rows());
    ASSERT_EQ(plan.split.nSplits, c.nSplits) << "the case was chosen for " << c.nSplits << " splits";
    // The launch contract the ownership below follows: the planner's heads
    // per CTA (the kernel the emulator runs is picked by the launcher's
    // dispatch, decode::visitDecodeKernel).
    const int maxH = decodeHeadsPerCta(g.headDim, g.nHeads / g.nKvHeads);

    const int32_t* rows = plan.packed.data() + plan.rowOffset;
    const int nRows = plan.nRows;
    const int nSplits = plan.split.nSplits;
    const int D = g.headDim;
    const int group = g.nHeads / g.nKvHeads;
    const int ctasPerKvHead = (group + maxH - 1) / maxH;
    const size_t partialFloats = plan.partialBytes / sizeof(float);
    // A guard of one row's partials on each side.
    const size_t partialGuard = size_t(g.nHeads) * size_t(nSplits) * size_t(2 + D);
    std::vector<float> partials(partialFloats + 2 * partialGuard, std::bit_cast<float>(kUnwritten));
    float* partialsProper = partials.data() + partialGuard;
    ASSERT_EQ(partialFloats, nSplits > 1 ? size_t(nRows) * size_t(g.nHeads) * size_t(nSplits) * size_t(2 + D) : 0);
    const AttentionArgs args = emulation::attentionArgs(batch, plan);

    // The attention kernel: CTA (split, kvHead * ctasPerKvHead + part, row)
    // has query heads kvHead * group + part * maxH onwards, up to maxH of
    // its KV head's; with one split it writes their outputs, else their
    // partials: max and sum [nRows][nHeads][nSplits], then the
    // accumulators [nRows][nHeads][nSplits][D] (decode::Partials).
    const emulation::Index3 attentionGrid{unsigned(nSplits), unsigned(g.nKvHeads * ctasPerKvHead), unsigned(nRows)};
    const size_t slots = size_t(nRows) * size_t(g.nHeads) * size_t(nSplits);
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
               " of decode row " + std::to_string(slot / size_t(nSplits) / size_t(g.nHeads)) + " head " +
               std::to_string(slot / size_t(nSplits) % size_t(g.nHeads)) + " split " +
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
                    const size_t slot = (size_t(r) * size_t(g.nHeads) + size_t(h)) * size_t(nSplits) + size_t(split);
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
        const emulation::Index3 reduceGrid{unsigned(g.nHeads), unsigned(nRows), 1};
        WriteCheck reduceOut(batch.outWithGuards(), describeOut, reduceGrid);
        WriteCheck reducePartials(partials, describePartial, reduceGrid);
        for (int r = 0; r < nRows; ++r) {
            const size_t outRow = (1 + size_t(tokenRow(batch, rows + kRowDescInts * r))) * batch.rowElements();
            for (int h = 0; h < g.nHeads; ++h) {
                for (int d = 0; d < D; ++d) reduceOut.own(outRow + size_t(h * D + d), r * g.nHeads + h);
            }
        }
        checkedLaunch("decodeReduceKernel", reduceOut, reducePartials, reduceGrid, c.shuffledThreads, seed,
                      [&](emulation::LaunchConfig config) {
                          return emulation::runDecodeReduceKernel(args, rows, nRows, nSplits,
                                                                  partialsProper, std::move(config));
                      });
    }
    emulation::expectMatchesReference(
        batch, {.qRoundedToHalf = false, .scale = double(args.scale), .tolerance = kTolerance, .paddingZeros = true});
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

// The tensor-core prefill attention kernel
// (kernels/cuda/prefill_attention_kernel.cuh) without a device: its own
// source, compiled as host C++ (prefill_kernel_host.cpp), runs on a CTA
// emulator (cta_emulator.h) that gives each of a CTA's 128 threads a fiber
// and performs ldmatrix, mma.sync, __shfl_xor_sync and cp.async as the PTX
// ISA defines them. Each case lays out paged K/V and a batch of query rows,
// plans them with planAttention, runs the kernel and checks, against a
// float64 causal (sliding-window) attention: every output finite and within
// tolerance; no shared-memory hazard around cp.async; no divergent warp
// collective or barrier, bad address, or copy left in flight; each output
// element written once, by the CTA of its (tile, head), and no other row
// touched. The inputs are hostile: block tables in shuffled physical order
// with the blocks below the window released, NaN in every pool slot no
// valid position holds and in every batch row no sequence owns, shared
// memory full of NaN before each CTA, and Q's last row right below an
// inaccessible page. Some cases run the threads in a new random order in
// every scheduling round. Seeds are fresh every run.

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <numeric>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/half.h"
#include "tests/cuda/emulation/cta_emulator.h"
#include "tests/cuda/emulation/prefill_kernel_host.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

// |out - ref| <= kTolerance * max|v|. The reference rounds q to f16 as the
// kernel does (q's precision is not what this test is about), which leaves
// the kernel's rounding of each probability p = exp2(s - m) <= 1 to f16
// before P·V: a relative error of at most 2^-11 per weight, while the row
// sum adds the unrounded p, so the output moves by at most 2^-11 * max|v|
// = 4.9e-4 * max|v|, plus about 1e-6 from f32 accumulation and exp2f.
// 2e-3 is four times that bound, and far below what one key more or less
// does with q this peaked (kQScale): in every case, dropping a row's own
// key moves some output by 0.04 to 1.8 (measured when the cases were chosen).
constexpr double kTolerance = 2e-3;
constexpr float kQScale = 4.0f;              // q ~ U(-4, 4), K and V ~ U(-1, 1)
constexpr uint16_t kHalfNan = 0x7e00;        // pool slots no valid position holds
constexpr uint32_t kUnwritten = 0x7fc0beefu;  // a NaN the kernel never writes: output not written
constexpr int kMaxReported = 5;              // failures listed per kind

struct Sequence {
    int nQueries;
    int startPos;
    int queryOffset;  // its first row in the batch
};

struct EmulationCase {
    std::string name;
    int headDim;
    int nHeads;
    int nKvHeads;
    int blockSize;
    int window;  // 0: full causal attention
    std::vector<Sequence> sequences;
    int unownedRows;  // batch rows after the last sequence's
    bool shuffledThreads;
};

void PrintTo(const EmulationCase& c, std::ostream* os) { *os << c.name; }

// Tiles are 128 query rows, split among 4 warps of 32 rows; K/V tiles are 64
// positions at head dim 64 and 32 at 128.
std::vector<EmulationCase> emulationCases() {
    return {
        {"D64_Gqa4to2_Bs16_Prefill200At0", 64, 4, 2, 16, 0, {{200, 0, 0}}, 0, false},
        {"D128_Gqa4to2_Bs16_Prefill200At0", 128, 4, 2, 16, 0, {{200, 0, 0}}, 0, true},
        {"D64_Mqa4to1_Bs16_Chunk70At150", 64, 4, 1, 16, 0, {{70, 150, 0}}, 0, true},
        {"D128_Mqa4to1_Bs16_Chunk70At150", 128, 4, 1, 16, 0, {{70, 150, 0}}, 0, false},
        // Blocks 0-16 (0-8) lie wholly below the window of the chunk's first query: released.
        {"D64_Gqa4to2_Bs16_Window48_Chunk300At333", 64, 4, 2, 16, 48, {{300, 333, 0}}, 0, false},
        {"D128_Gqa4to2_Bs32_Window48_Chunk300At333", 128, 4, 2, 32, 48, {{300, 333, 0}}, 0, true},
        {"D64_Mqa4to1_Bs32_TwoSeqs200At0And70At150", 64, 4, 1, 32, 0, {{200, 0, 0}, {70, 150, 200}}, 0, true},
        {"D128_Gqa4to2_Bs16_TwoSeqs200At0And70At150", 128, 4, 2, 16, 0, {{200, 0, 0}, {70, 150, 200}}, 0, false},
        // Rows between and after the sequences belong to none.
        {"D128_Gqa4to2_Bs16_ThreeSeqsWithGaps", 128, 4, 2, 16, 0, {{70, 150, 3}, {2, 37, 80}, {129, 95, 90}}, 5,
         true},
        {"D64_Gqa4to2_Bs16_Window48_Prefill300At0", 64, 4, 2, 16, 48, {{300, 0, 0}}, 0, false},
        // A window shorter than a K/V tile: the bound of skipping a tile below a warp's window.
        {"D128_Mqa2to1_Bs16_Window5_Chunk130At3", 128, 2, 1, 16, 5, {{130, 3, 0}}, 0, true},
        {"D64_Gqa8to2_Bs16_Window100_Chunk257At61And3At0", 64, 8, 2, 16, 100, {{257, 61, 0}, {3, 0, 257}}, 0, false},
        // The bounds of the warp-skip and no-mask tests: at 97@33 a warp's
        // last position is a K/V tile's first; at 65@62 a K/V tile ends one
        // past a warp's first position.
        {"D64_Mqa4to1_Bs16_Chunk97At33", 64, 4, 1, 16, 0, {{97, 33, 0}}, 0, true},
        {"D128_Gqa4to2_Bs16_Chunk97At33", 128, 4, 2, 16, 0, {{97, 33, 0}}, 0, false},
        // The first K/V tile starts one below the window start of warp 0's
        // last query (position 100, window start 1): the no-mask test's bound.
        {"D64_Gqa4to2_Bs16_Window100_Chunk150At69", 64, 4, 2, 16, 100, {{150, 69, 0}}, 0, false},
        {"D128_Gqa4to2_Bs16_Window100_Chunk150At69", 128, 4, 2, 16, 100, {{150, 69, 0}}, 0, true},
        {"D64_Gqa4to2_Bs16_Chunk65At62", 64, 4, 2, 16, 0, {{65, 62, 0}}, 0, false},
        {"D128_Mqa4to1_Bs32_Chunk65At62", 128, 4, 1, 32, 0, {{65, 62, 0}}, 0, true},
    };
}

int firstVisible(int pos, int window) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

// f32 values whose end touches an inaccessible page, so that the kernel
// reading past the last row faults rather than reading a neighbour.
class GuardedFloats {
public:
    explicit GuardedFloats(size_t count) {
        const size_t page = size_t(sysconf(_SC_PAGESIZE));
        const size_t bytes = (count * sizeof(float) + page - 1) / page * page;
        m_bytes = bytes + page;
        m_base = mmap(nullptr, m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m_base == MAP_FAILED || mprotect(static_cast<char*>(m_base) + bytes, page, PROT_NONE) != 0) {
            throw std::runtime_error("cannot map " + std::to_string(m_bytes) + " bytes with a guard page");
        }
        m_data = reinterpret_cast<float*>(static_cast<char*>(m_base) + bytes) - count;
    }
    ~GuardedFloats() { munmap(m_base, m_bytes); }
    GuardedFloats(const GuardedFloats&) = delete;
    GuardedFloats& operator=(const GuardedFloats&) = delete;

    float* data() const { return m_data; }

private:
    void* m_base = nullptr;
    size_t m_bytes = 0;
    float* m_data = nullptr;
};

void explainSegfault(int) {
    constexpr char kMessage[] =
        "SIGSEGV in the emulated kernel: an access out of bounds (Q's last row lies right below an inaccessible "
        "page)\n";
    [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    std::signal(SIGSEGV, SIG_DFL);  // the access repeats and ends the process
}

// One case's inputs and output as the backend holds them on the device.
class Batch {
public:
    Batch(const EmulationCase& c, std::mt19937_64& rng);

    const EmulationCase& testCase() const { return m_case; }
    int rows() const { return m_rows; }
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
    static int countRows(const EmulationCase& c);

    const EmulationCase& m_case;
    int m_rows;
    std::vector<std::vector<int32_t>> m_tables;  // per sequence, [logical block]: physical block; -1 released
    std::vector<uint16_t> m_k;                   // f16 [numBlocks][nKvHeads][blockSize][headDim]
    std::vector<uint16_t> m_v;
    double m_maxAbsV = 0;
    GuardedFloats m_q;         // f32 [rows][nHeads][headDim]
    std::vector<float> m_out;  // f32 [1 + rows + 1][nHeads][headDim], kUnwritten
};

int Batch::countRows(const EmulationCase& c) {
    int rows = 0;
    for (const Sequence& s : c.sequences) rows = std::max(rows, s.queryOffset + s.nQueries);
    return rows + c.unownedRows;
}

Batch::Batch(const EmulationCase& c, std::mt19937_64& rng)
    : m_case(c), m_rows(countRows(c)), m_q(size_t(m_rows) * rowElements()) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    // Physical blocks in a shuffled order; blocks wholly below the window
    // of a sequence's first query released; three spare blocks.
    int nBlocks = 0;
    for (const Sequence& s : c.sequences) {
        const int needed = (s.startPos + s.nQueries + c.blockSize - 1) / c.blockSize;
        const int released = firstVisible(s.startPos, c.window) / c.blockSize;
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

    const size_t poolElements = size_t(nBlocks) * size_t(c.nKvHeads) * size_t(c.blockSize) * size_t(c.headDim);
    m_k.assign(poolElements, kHalfNan);
    m_v.assign(poolElements, kHalfNan);
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        for (int pos = 0; pos < s.startPos + s.nQueries; ++pos) {
            if (m_tables[seq][size_t(pos / c.blockSize)] < 0) continue;
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

    float* q = m_q.data();
    std::fill(q, q + size_t(m_rows) * rowElements(), std::nanf(""));
    for (const Sequence& s : c.sequences) {
        float* rows = q + size_t(s.queryOffset) * rowElements();
        std::generate(rows, rows + size_t(s.nQueries) * rowElements(), [&] { return kQScale * uniform(rng); });
    }
    m_out.assign((size_t(m_rows) + 2) * rowElements(), std::bit_cast<float>(kUnwritten));
}

AttentionArgs attentionArgs(Batch& batch, const AttentionPlan& plan) {
    const EmulationCase& c = batch.testCase();
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
    const EmulationCase& c = batch.testCase();
    const AttentionGeometry geometry{c.nHeads, c.nKvHeads, c.headDim, c.blockSize, c.window};
    std::vector<AttentionSequenceSpec> specs;
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        specs.push_back({s.queryOffset, s.nQueries, s.startPos, batch.table(seq).data(), int(batch.table(seq).size())});
    }
    return planAttention(geometry, specs, AttentionPlanOptions{});
}

// Which CTA wrote what. Before each CTA a copy of the output; after it,
// every element that changed must lie in the rows of one tile and in head
// blockIdx.y, and must not have been written before; in the end each
// (tile, head) must have had exactly one writer.
class OutputOwnership {
public:
    OutputOwnership(Batch& batch, const AttentionPlan& plan)
        : m_batch(batch), m_nTiles(plan.nTiles), m_rowTile(size_t(batch.rows()), -1),
          m_writers(size_t(plan.nTiles) * size_t(batch.testCase().nHeads), 0) {
        const int32_t* tiles = plan.packed.data() + plan.tileOffset;
        for (int tile = 0; tile < plan.nTiles; ++tile) {
            const Sequence& s = batch.testCase().sequences[size_t(tiles[kTileDescInts * tile])];
            const int first = tiles[kTileDescInts * tile + 1];
            for (int r = first; r < std::min(s.nQueries, first + kPrefillTileRows); ++r) {
                m_rowTile[size_t(s.queryOffset + r)] = tile;
            }
        }
    }

    void beforeCta() { m_snapshot = m_batch.outWithGuards(); }

    void afterCta(emulation::Index3 block) {
        const std::vector<float>& out = m_batch.outWithGuards();
        const size_t rowElements = m_batch.rowElements();
        const int headDim = m_batch.testCase().headDim;
        int writtenTile = -1;
        int writtenHead = -1;
        bool stray = false;
        for (size_t i = 0; i < out.size(); ++i) {
            if (std::bit_cast<uint32_t>(out[i]) == std::bit_cast<uint32_t>(m_snapshot[i])) continue;
            const long row = long(i / rowElements) - 1;  // -1 and rows(): the guard rows
            const int head = int(i % rowElements) / headDim;
            const int tile = row >= 0 && row < m_batch.rows() ? m_rowTile[size_t(row)] : -1;
            const bool first = tile >= 0 && writtenTile < 0;
            if (first) {
                writtenTile = tile;
                writtenHead = head;
            }
            const bool own = tile >= 0 && tile == writtenTile && head == writtenHead && head == int(block.y);
            if (!own && !stray) {
                stray = true;
                report(cta(block) + ", of head " + std::to_string(block.y) + ", wrote batch row " +
                       std::to_string(row) + " head " + std::to_string(head) +
                       (tile < 0 ? ", which no tile owns" : ", of tile " + std::to_string(tile)) +
                       (writtenTile >= 0 && !first ? ", besides tile " + std::to_string(writtenTile) + " head " +
                                                         std::to_string(writtenHead)
                                                   : std::string()));
            }
            if (std::bit_cast<uint32_t>(m_snapshot[i]) != kUnwritten) {
                report(cta(block) + " overwrote batch row " + std::to_string(row) + " head " + std::to_string(head) +
                       " dim " + std::to_string(int(i % rowElements) % headDim) + ", written by an earlier CTA");
            }
        }
        if (writtenTile >= 0 && !stray) {
            ++m_writers[size_t(writtenTile) * size_t(m_batch.testCase().nHeads) + size_t(writtenHead)];
        }
    }

    // Problems seen, and every (tile, head) not written by exactly one CTA.
    std::vector<std::string> problems() const {
        std::vector<std::string> all = m_problems;
        const int nHeads = m_batch.testCase().nHeads;
        for (int tile = 0; tile < m_nTiles; ++tile) {
            for (int head = 0; head < nHeads; ++head) {
                const int writers = m_writers[size_t(tile) * size_t(nHeads) + size_t(head)];
                if (writers != 1) {
                    all.push_back("tile " + std::to_string(tile) + " head " + std::to_string(head) + " written by " +
                                  std::to_string(writers) + " CTAs, 1 expected");
                }
            }
        }
        return all;
    }

private:
    static std::string cta(emulation::Index3 block) {
        return "CTA (" + std::to_string(block.x) + "," + std::to_string(block.y) + ")";
    }
    void report(std::string problem) {
        if (m_problems.size() < kMaxReported) m_problems.push_back(std::move(problem));
    }

    Batch& m_batch;
    int m_nTiles;
    std::vector<int> m_rowTile;  // [batch row]: its tile, -1 none
    std::vector<int> m_writers;  // [tile][head]: CTAs that wrote only it
    std::vector<float> m_snapshot;
    std::vector<std::string> m_problems;
};

// Exact attention of one query row over positions [firstVisible(pos), pos]
// of its sequence, from q rounded to f16 as the kernel rounds it.
std::vector<double> referenceRow(const Batch& batch, size_t seq, const float* qRow, int kvHead, int pos) {
    const EmulationCase& c = batch.testCase();
    const int first = firstVisible(pos, c.window);
    std::vector<double> q(size_t(c.headDim));
    for (int d = 0; d < c.headDim; ++d) q[size_t(d)] = test::refHalfToDouble(floatToHalf(qRow[d]));
    const double scale = 1.0 / std::sqrt(double(c.headDim));
    std::vector<double> scores;
    for (int p = first; p <= pos; ++p) {
        const size_t at = batch.poolIndex(seq, p, kvHead);
        double dot = 0;
        for (int d = 0; d < c.headDim; ++d) dot += q[size_t(d)] * test::refHalfToDouble(batch.k()[at + size_t(d)]);
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

// Every output of every sequence against the reference.
void expectMatchesReference(const Batch& batch) {
    const EmulationCase& c = batch.testCase();
    const double tolerance = kTolerance * batch.maxAbsV();
    long wrong = 0;
    long checked = 0;
    double maxError = 0;
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        for (int r = 0; r < s.nQueries; ++r) {
            const int row = s.queryOffset + r;
            const int pos = s.startPos + r;
            for (int head = 0; head < c.nHeads; ++head) {
                const size_t at = size_t(row) * batch.rowElements() + size_t(head) * size_t(c.headDim);
                const int kvHead = head / (c.nHeads / c.nKvHeads);
                const std::vector<double> want = referenceRow(batch, seq, batch.q() + at, kvHead, pos);
                for (int d = 0; d < c.headDim; ++d) {
                    const float got = batch.outRows()[at + size_t(d)];
                    const double error = std::fabs(double(got) - want[size_t(d)]);
                    ++checked;
                    if (std::isfinite(got) && error <= tolerance) {
                        maxError = std::max(maxError, error);
                        continue;
                    }
                    if (wrong++ < kMaxReported) {
                        ADD_FAILURE() << "sequence " << seq << " row " << r << " (batch row " << row << ", position "
                                      << pos << ") head " << head << " dim " << d << ": got " << got
                                      << (std::bit_cast<uint32_t>(got) == kUnwritten ? " (never written)" : "")
                                      << ", want " << want[size_t(d)] << " (tolerance " << tolerance << ")";
                    }
                }
            }
        }
    }
    EXPECT_EQ(wrong, 0) << "of " << checked << " outputs, these were not finite or outside the tolerance";
    testing::Test::RecordProperty("max_error", std::to_string(maxError));
}

std::string joined(const std::vector<std::string>& messages) {
    std::string text;
    for (const std::string& m : messages) text += "\n  " + m;
    return text;
}

class PrefillEmulation : public testing::TestWithParam<EmulationCase> {};

TEST_P(PrefillEmulation, MatchesFloat64AttentionWithoutHazards) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::signal(SIGSEGV, explainSegfault);
    std::mt19937_64 rng(seed);
    Batch batch(GetParam(), rng);
    const StatusOr<AttentionPlan> planned = planBatch(batch);
    ASSERT_TRUE(planned.ok()) << planned.status().message();
    const AttentionPlan& plan = planned.value();
    ASSERT_EQ(plan.nRows, 0) << "planAttention sent rows to the decode kernel";

    OutputOwnership ownership(batch, plan);
    emulation::LaunchConfig config;
    config.copySources = {{batch.k().data(), batch.k().size() * sizeof(uint16_t), "the K pool"},
                          {batch.v().data(), batch.v().size() * sizeof(uint16_t), "the V pool"}};
    config.beforeCta = [&](emulation::Index3) { ownership.beforeCta(); };
    config.afterCta = [&](emulation::Index3 block) { ownership.afterCta(block); };
    config.shuffleThreads = GetParam().shuffledThreads;
    config.seed = seed;
    const emulation::Findings findings = emulation::runPrefillKernel(
        attentionArgs(batch, plan), plan.packed.data() + plan.tileOffset, plan.nTiles, std::move(config));

    EXPECT_EQ(findings.hazardCount, 0) << "shared-memory hazards, the first:" << joined(findings.hazards);
    EXPECT_EQ(findings.errorCount, 0) << "emulation errors, the first:" << joined(findings.errors);
    const std::vector<std::string> ownershipProblems = ownership.problems();
    EXPECT_TRUE(ownershipProblems.empty()) << "outputs written by the wrong CTA:" << joined(ownershipProblems);
    expectMatchesReference(batch);
}

INSTANTIATE_TEST_SUITE_P(Cases, PrefillEmulation, testing::ValuesIn(emulationCases()),
                         [](const testing::TestParamInfo<EmulationCase>& info) { return info.param.name; });

}  // namespace
}  // namespace pagoda::cuda

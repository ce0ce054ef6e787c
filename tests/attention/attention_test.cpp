// cpu::attention against a float64 reference written here from the
// definition: out = softmax(scale · q·Kᵀ over the visible positions) · V.
// Every run uses fresh random inputs (the seed is in the failure trace).
// Positions the kernel must never read hold NaN: unused and released pool
// blocks, slots past a sequence's end, positions below the first query's
// window. Output buffers start as NaN, plus guard rows that must stay so.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "../kernels/kernel_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/half.h"

namespace pagoda {

// Readable test parameters in gtest's messages.
void PrintTo(DType type, std::ostream* os) { *os << dtypeName(type); }

namespace cpu {

void PrintTo(AttentionAlgorithm algorithm, std::ostream* os) {
    *os << (algorithm == AttentionAlgorithm::Flash ? "flash" : "naive");
}

namespace {

using test::freshSeed;
using test::refHalfToDouble;
using test::seedTrace;

constexpr uint16_t kHalfNan = 0x7e00;

// Both kernels compute in f32 from exactly converted K/V, so one bound
// serves F32, F16 and Q8_0 (whose references use the K/V as stored: f16-
// rounded, or each block's fp16 scale times its int8):
// |out - ref| <= kTolerance · max|V| of the sequence's visible rows.
constexpr double kTolerance = 5e-6;

struct SeqSpec {
    int startPos = 0;
    int nQueries = 0;
};

struct Case {
    AttentionAlgorithm algorithm = AttentionAlgorithm::Flash;
    bool paged = true;
    int nHeads = 8;
    int nKvHeads = 8;
    int headDim = 64;
    int window = 0;
    DType type = DType::F32;
    int blockSize = 16;
    bool expandKv = false;
    int threads = 2;
    float softcap = 0.0f;
    std::vector<SeqSpec> sequences;
};

std::string describe(const Case& c) {
    std::string s = std::string(c.algorithm == AttentionAlgorithm::Flash ? "flash" : "naive") +
                    (c.paged ? " paged bs=" + std::to_string(c.blockSize) : " contiguous") + " heads " +
                    std::to_string(c.nHeads) + "/" + std::to_string(c.nKvHeads) + " hd " + std::to_string(c.headDim) +
                    " window " + std::to_string(c.window) + " " + std::string(dtypeName(c.type)) + " threads " +
                    std::to_string(c.threads) + (c.expandKv ? " expandKv" : "") +
                    (c.softcap > 0 ? " softcap " + std::to_string(c.softcap) : "") + " seqs";
    for (const SeqSpec& q : c.sequences) s += " (" + std::to_string(q.startPos) + "+" + std::to_string(q.nQueries) + ")";
    return s;
}

// K/V storage in the kernel's format plus the exact value of every element.
// Q8_0 blocks of 32 elements (whole blocks of one head's row) hold an fp16
// scale d = max|x| / 127 and round(x / d) as int8, encoded here from that
// definition; an unset block has a NaN scale.
class KvStore {
public:
    KvStore(DType type, size_t elements) : m_type(type), m_bytes(rowBytes(type, elements)) {
        if (type == DType::Q8_0) {
            m_staged.assign(elements, 0.0f);
            for (size_t b = 0; b < elements / kQK8_0; ++b) std::memcpy(block(b), &kHalfNan, 2);
            return;
        }
        for (size_t i = 0; i < elements; ++i) {
            if (m_type == DType::F16) {
                std::memcpy(m_bytes.data() + 2 * i, &kHalfNan, 2);
            } else {
                const float nan = std::numeric_limits<float>::quiet_NaN();
                std::memcpy(m_bytes.data() + 4 * i, &nan, 4);
            }
        }
    }
    // Stores x. Q8_0 encodes a block when its last element is set, which
    // may change the values of the others: read them back with value().
    void set(size_t i, float x) {
        if (m_type == DType::Q8_0) {
            m_staged[i] = x;
            if (i % kQK8_0 == kQK8_0 - 1) encode(i / kQK8_0);
        } else if (m_type == DType::F16) {
            const uint16_t h = floatToHalf(x);
            std::memcpy(m_bytes.data() + 2 * i, &h, 2);
        } else {
            std::memcpy(m_bytes.data() + 4 * i, &x, 4);
        }
    }
    // The value the kernel reads for element i.
    double value(size_t i) const {
        uint16_t h;
        if (m_type == DType::Q8_0) {
            const uint8_t* b = m_bytes.data() + i / kQK8_0 * sizeof(BlockQ8_0);
            std::memcpy(&h, b, 2);
            return refHalfToDouble(h) * double(int8_t(b[2 + i % kQK8_0]));
        }
        if (m_type == DType::F16) {
            std::memcpy(&h, m_bytes.data() + 2 * i, 2);
            return refHalfToDouble(h);
        }
        float x;
        std::memcpy(&x, m_bytes.data() + 4 * i, 4);
        return double(x);
    }
    const void* data() const { return m_bytes.data(); }

private:
    uint8_t* block(size_t b) { return m_bytes.data() + b * sizeof(BlockQ8_0); }
    void encode(size_t b) {
        const float* x = m_staged.data() + b * kQK8_0;
        float amax = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::abs(x[j]));
        const float d = amax / 127.0f;
        const uint16_t h = floatToHalf(d);
        std::memcpy(block(b), &h, 2);
        for (int j = 0; j < kQK8_0; ++j) {
            block(b)[2 + j] = uint8_t(int8_t(d > 0 ? std::lround(x[j] / d) : 0));
        }
    }

    DType m_type;
    std::vector<uint8_t> m_bytes;
    std::vector<float> m_staged;  // Q8_0: the values set, encoded a block at a time
};

int windowStart(int window, int pos) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

// One attention call's inputs, its kernel output and the float64 reference.
struct AttentionRun {
    std::vector<float> q;                   // [nTokens][nHeads][headDim]
    std::vector<float> out;                 // [nTokens + kGuardRows][nHeads][headDim]
    std::vector<std::vector<double>> k, v;  // per sequence: [context][nKvHeads][headDim] (NaN where unset)
    std::vector<std::unique_ptr<KvStore>> stores;
    std::vector<std::vector<int32_t>> tables;
    std::vector<AttentionSequence> sequences;
    AttentionParams params;
    int nTokens = 0;
};

constexpr int kGuardRows = 2;

AttentionRun makeRun(const Case& c, std::mt19937_64& rng) {
    AttentionRun run;
    const int hd = c.headDim;
    const size_t rowElems = size_t(c.nKvHeads) * hd;
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const SeqSpec& s : c.sequences) run.nTokens += s.nQueries;
    // Scores scale · q·k with a standard deviation of about 2: softmax neither flat nor one-hot.
    run.q.resize(size_t(run.nTokens) * c.nHeads * hd);
    for (float& x : run.q) x = 2.0f * normal(rng);
    run.out.assign(size_t(run.nTokens + kGuardRows) * c.nHeads * hd, std::numeric_limits<float>::quiet_NaN());

    // Paged: one pool, logical blocks at shuffled physical ids, two spare blocks.
    size_t totalBlocks = 2;
    for (const SeqSpec& s : c.sequences) totalBlocks += size_t(s.startPos + s.nQueries + c.blockSize - 1) / c.blockSize;
    std::vector<int32_t> physical(totalBlocks);
    std::iota(physical.begin(), physical.end(), 0);
    std::shuffle(physical.begin(), physical.end(), rng);
    size_t nextPhysical = 0;
    if (c.paged) run.stores.push_back(std::make_unique<KvStore>(c.type, 2 * totalBlocks * c.blockSize * rowElems));
    const size_t vPoolOffset = totalBlocks * c.blockSize * rowElems;  // V pool after the K pool

    int offset = 0;
    for (const SeqSpec& s : c.sequences) {
        const int context = s.startPos + s.nQueries;
        const int visible = windowStart(c.window, s.startPos);  // no query sees below this
        run.k.emplace_back(size_t(context) * rowElems, std::numeric_limits<double>::quiet_NaN());
        run.v.emplace_back(size_t(context) * rowElems, std::numeric_limits<double>::quiet_NaN());
        AttentionSequence seq{offset, s.nQueries, s.startPos};
        offset += s.nQueries;
        KvStore* store = nullptr;
        std::vector<int32_t>& table = run.tables.emplace_back();
        if (c.paged) {
            store = run.stores.front().get();
            for (int b = 0; b * c.blockSize < context; ++b) {
                const bool released = (b + 1) * c.blockSize <= visible;
                table.push_back(released ? -1 : physical[nextPhysical++]);
            }
        } else {
            store = run.stores.emplace_back(std::make_unique<KvStore>(c.type, 2 * size_t(context) * rowElems)).get();
        }
        // Element e of position pos's K row in the store; its V is `vOffset` further.
        const auto kIndexOf = [&](int pos, size_t e) {
            if (!c.paged) return size_t(pos) * rowElems + e;
            const size_t block = size_t(table[pos / c.blockSize]);
            return ((block * c.nKvHeads + e / hd) * c.blockSize + pos % c.blockSize) * hd + e % hd;
        };
        const size_t vOffset = c.paged ? vPoolOffset : size_t(context) * rowElems;
        for (int pos = visible; pos < context; ++pos) {
            for (size_t e = 0; e < rowElems; ++e) {
                store->set(kIndexOf(pos, e), normal(rng));
                store->set(kIndexOf(pos, e) + vOffset, normal(rng));
            }
        }
        // The values as stored, read once each row is whole.
        for (int pos = visible; pos < context; ++pos) {
            for (size_t e = 0; e < rowElems; ++e) {
                run.k.back()[size_t(pos) * rowElems + e] = store->value(kIndexOf(pos, e));
                run.v.back()[size_t(pos) * rowElems + e] = store->value(kIndexOf(pos, e) + vOffset);
            }
        }
        if (c.paged) {
            seq.blockTable = table.data();
        } else {
            seq.k = store->data();
            seq.v = static_cast<const uint8_t*>(store->data()) + rowBytes(c.type, size_t(context) * rowElems);
        }
        run.sequences.push_back(seq);
    }

    AttentionParams& p = run.params;
    p.q = run.q.data();
    p.out = run.out.data();
    p.nHeads = c.nHeads;
    p.scale = 1.0f / std::sqrt(float(hd));
    p.window = c.window;
    p.softcap = c.softcap;
    p.kv.type = c.type;
    p.kv.nKvHeads = c.nKvHeads;
    p.kv.blockSize = c.blockSize;
    p.kv.headDim = hd;
    if (c.paged) {
        p.kv.k = run.stores.front()->data();
        p.kv.v = static_cast<const uint8_t*>(run.stores.front()->data()) + rowBytes(c.type, vPoolOffset);
    }
    p.sequences = run.sequences;
    p.algorithm = c.algorithm;
    p.expandKv = c.expandKv;
    return run;
}

// Largest |out - ref| / max|V| over every output element; infinity if any
// element is NaN or a guard row was written.
double maxError(const Case& c, const AttentionRun& run) {
    const int hd = c.headDim;
    const int group = c.nHeads / c.nKvHeads;
    const size_t rowElems = size_t(c.nKvHeads) * hd;
    const double scale = double(run.params.scale);
    double worst = 0.0;
    std::vector<double> w;
    std::vector<double> ref(hd);
    for (size_t si = 0; si < c.sequences.size(); ++si) {
        const SeqSpec& s = c.sequences[si];
        const AttentionSequence& seq = run.sequences[si];
        const std::vector<double>& k = run.k[si];
        const std::vector<double>& v = run.v[si];
        for (int i = 0; i < s.nQueries; ++i) {
            const int pos = s.startPos + i;
            const int lo = windowStart(c.window, pos);
            for (int h = 0; h < c.nHeads; ++h) {
                const int kvHead = h / group;
                const float* q = run.q.data() + (size_t(seq.queryOffset + i) * c.nHeads + h) * hd;
                w.assign(size_t(pos - lo + 1), 0.0);
                double maxScore = -std::numeric_limits<double>::infinity();
                for (int j = lo; j <= pos; ++j) {
                    double dot = 0.0;
                    for (int d = 0; d < hd; ++d) dot += double(q[d]) * k[size_t(j) * rowElems + size_t(kvHead) * hd + d];
                    const double x = c.softcap > 0 ? c.softcap * std::tanh(scale * dot / c.softcap) : scale * dot;
                    w[size_t(j - lo)] = x;
                    maxScore = std::max(maxScore, x);
                }
                double sum = 0.0;
                for (double& x : w) sum += (x = std::exp(x - maxScore));
                std::fill(ref.begin(), ref.end(), 0.0);
                double vMax = 0.0;
                for (int j = lo; j <= pos; ++j) {
                    const double* vRow = v.data() + size_t(j) * rowElems + size_t(kvHead) * hd;
                    for (int d = 0; d < hd; ++d) {
                        ref[d] += w[size_t(j - lo)] / sum * vRow[d];
                        vMax = std::max(vMax, std::abs(vRow[d]));
                    }
                }
                const float* out = run.out.data() + (size_t(seq.queryOffset + i) * c.nHeads + h) * hd;
                for (int d = 0; d < hd; ++d) {
                    const double err = std::abs(double(out[d]) - ref[d]) / vMax;
                    if (!(err <= worst)) worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
                }
            }
        }
    }
    for (size_t i = size_t(run.nTokens) * c.nHeads * hd; i < run.out.size(); ++i) {
        if (!std::isnan(run.out[i])) return std::numeric_limits<double>::infinity();
    }
    return worst;
}

std::vector<SimdLevel> simdLevels() {
    std::vector<SimdLevel> levels{SimdLevel::Avx2};
    if (detectSimdLevel() == SimdLevel::Avx512) levels.push_back(SimdLevel::Avx512);
    return levels;
}

// Runs the case on every SIMD level with fresh inputs and checks the bound.
void check(const Case& c) {
    const uint64_t seed = freshSeed();
    SCOPED_TRACE(seedTrace(seed) + ": " + describe(c));
    std::mt19937_64 rng(seed);
    ThreadPool pool(c.threads);
    for (const SimdLevel simd : simdLevels()) {
        SCOPED_TRACE(std::string(simdLevelName(simd)));
        AttentionRun run = makeRun(c, rng);
        attention(CpuContext{&pool, simd}, run.params);
        const double err = maxError(c, run);
        // Soft-capping computes tanh within about 4e-7 · cap of the score
        // (cpu::softcap), which moves the softmax weights by as much, relatively.
        EXPECT_LE(err, kTolerance + 8e-7 * c.softcap);
    }
}

// A batch with the shapes that matter: a one-token context, a prefill from
// position 0, a long context's prefill chunk and decode step, short decode,
// a few tokens at once (speculative decoding's shape), and no tokens.
std::vector<SeqSpec> mixedBatch() { return {{0, 1}, {0, 17}, {283, 17}, {299, 1}, {45, 1}, {50, 4}, {10, 0}}; }

using MatrixParam = std::tuple<AttentionAlgorithm, bool, int, int, DType>;  // algorithm, paged, nKvHeads, window, type

class AttentionMatrix : public testing::TestWithParam<MatrixParam> {};

TEST_P(AttentionMatrix, MatchesFloat64Reference) {
    const auto [algorithm, paged, nKvHeads, window, type] = GetParam();
    Case c;
    c.algorithm = algorithm;
    c.paged = paged;
    c.nKvHeads = nKvHeads;
    c.window = window;
    c.type = type;
    c.sequences = mixedBatch();
    check(c);
}

INSTANTIATE_TEST_SUITE_P(All, AttentionMatrix,
                         testing::Combine(testing::Values(AttentionAlgorithm::Flash, AttentionAlgorithm::Naive),
                                          testing::Bool(),                // paged / contiguous
                                          testing::Values(8, 2, 1),       // MHA, GQA 4:1, MQA (8 query heads)
                                          testing::Values(0, 37),         // causal, window 37
                                          testing::Values(DType::F32, DType::F16, DType::Q8_0)));

class AttentionHeadDim : public testing::TestWithParam<std::tuple<AttentionAlgorithm, int>> {};

// Vector widths, tails (72 is not a multiple of 16, 36 not of 8) and a scalar-only head.
TEST_P(AttentionHeadDim, MatchesFloat64Reference) {
    const auto [algorithm, headDim] = GetParam();
    Case c;
    c.algorithm = algorithm;
    c.nHeads = 4;
    c.nKvHeads = 2;
    c.headDim = headDim;
    c.window = 20;
    c.type = DType::F16;
    c.blockSize = 7;
    c.sequences = {{0, 9}, {40, 3}, {61, 1}};
    check(c);
}

INSTANTIATE_TEST_SUITE_P(All, AttentionHeadDim,
                         testing::Combine(testing::Values(AttentionAlgorithm::Flash, AttentionAlgorithm::Naive),
                                          testing::Values(64, 80, 96, 128, 72, 36, 3)));

// Gemma 2's soft-capped scores (cap 50, and 2, where most scores are capped).
TEST(Attention, SoftcappedScores) {
    for (const float cap : {50.0f, 2.0f}) {
        for (const AttentionAlgorithm algorithm : {AttentionAlgorithm::Flash, AttentionAlgorithm::Naive}) {
            Case c;
            c.algorithm = algorithm;
            c.nKvHeads = 2;
            c.type = DType::F16;
            c.softcap = cap;
            c.window = 37;
            c.sequences = mixedBatch();
            check(c);
        }
    }
}

// Q8_0 K/V at the head dims it allows (multiples of its 32-element block),
// paged with blocks of 7 positions, contiguous, and expanded for the GQA-off baseline.
TEST(Attention, Q8KvAtEveryBlockMultipleHeadDim) {
    for (const int headDim : {32, 96, 128, 256}) {
        for (const AttentionAlgorithm algorithm : {AttentionAlgorithm::Flash, AttentionAlgorithm::Naive}) {
            for (const bool paged : {true, false}) {
                Case c;
                c.algorithm = algorithm;
                c.paged = paged;
                c.nHeads = 4;
                c.nKvHeads = 2;
                c.headDim = headDim;
                c.window = 20;
                c.type = DType::Q8_0;
                c.blockSize = 7;
                c.expandKv = !paged;
                c.sequences = {{0, 9}, {40, 3}, {61, 1}};
                check(c);
            }
        }
    }
}

TEST(Attention, BlockSizeOneAndLargeBlocks) {
    for (const int blockSize : {1, 5, 64}) {
        for (const AttentionAlgorithm algorithm : {AttentionAlgorithm::Flash, AttentionAlgorithm::Naive}) {
            Case c;
            c.algorithm = algorithm;
            c.nKvHeads = 2;
            c.blockSize = blockSize;
            c.window = 11;
            c.sequences = {{0, 30}, {70, 2}};
            check(c);
        }
    }
}

// Batch 1, MQA, long context: flash splits the context over the threads.
// Also a prefill chunk whose two long tiles get split, with and without a
// window (rows whose ranges differ).
TEST(Attention, FlashDecodingSplitsTheContext) {
    for (const int window : {0, 700}) {
        Case c;
        c.nHeads = 2;
        c.nKvHeads = 2;
        c.type = DType::F16;
        c.threads = 3;
        c.window = window;
        c.sequences = {{1000, 100}};
        check(c);
    }
    for (const int threads : {2, 3}) {
        for (const bool paged : {true, false}) {
            Case c;
            c.nHeads = 8;
            c.nKvHeads = 1;
            c.headDim = 128;
            c.type = DType::F16;
            c.paged = paged;
            c.threads = threads;
            c.sequences = {{2999, 1}};
            check(c);
            c.window = 1100;
            check(c);
        }
    }
    // The split shows as partial results in the workspace: with 3 threads
    // the scratch exceeds 3 threads' tiles.
    std::vector<int32_t> table(200, 0);
    const AttentionSequence seq{0, 1, 2999, table.data()};
    AttentionParams p;
    p.nHeads = 8;
    p.kv = {DType::F16, &table, &table, 1, 16, 128};
    p.sequences = {&seq, 1};
    EXPECT_GT(attentionWorkspaceSize(p, 3).scratch, 3 * attentionWorkspaceSize(p, 1).scratch);
}

TEST(Attention, ExpandedKvMatchesReference) {
    for (const AttentionAlgorithm algorithm : {AttentionAlgorithm::Flash, AttentionAlgorithm::Naive}) {
        for (const int nKvHeads : {2, 1}) {
            for (const bool paged : {true, false}) {
                Case c;
                c.algorithm = algorithm;
                c.paged = paged;
                c.nKvHeads = nKvHeads;
                c.window = 37;
                c.type = DType::F16;
                c.expandKv = true;
                c.sequences = mixedBatch();
                check(c);
            }
        }
    }
}

TEST(Attention, LocalGlobalLayerPattern) {
    const LocalGlobalPattern pattern{9, 3};
    for (int layer = 0; layer < 6; ++layer) {
        const int window = layerWindow(pattern, layer);
        EXPECT_EQ(window, layer % 3 == 2 ? 0 : 9) << "layer " << layer;
        Case c;
        c.nKvHeads = 2;
        c.window = window;
        c.sequences = {{20, 5}, {3, 1}};
        check(c);
    }
    EXPECT_EQ(layerWindow({4096, 0}, 5), 4096);
    EXPECT_EQ(layerWindow({0, 2}, 0), 0);
}

TEST(Attention, WorkspaceReusedAcrossCalls) {
    const uint64_t seed = freshSeed();
    SCOPED_TRACE(seedTrace(seed));
    std::mt19937_64 rng(seed);
    ThreadPool pool(2);
    AttentionWorkspace workspace;
    for (const int context : {100, 10, 300}) {
        for (const AttentionAlgorithm algorithm : {AttentionAlgorithm::Naive, AttentionAlgorithm::Flash}) {
            Case c;
            c.algorithm = algorithm;
            c.sequences = {{context - 4, 4}};
            AttentionRun run = makeRun(c, rng);
            run.params.workspace = &workspace;
            attention(CpuContext{&pool, detectSimdLevel()}, run.params);
            EXPECT_LE(maxError(c, run), kTolerance) << describe(c);
            EXPECT_GE(workspace.capacity(), attentionWorkspaceSize(run.params, 2).total());
        }
    }
}

TEST(Attention, SingleThreadWithoutPool) {
    const uint64_t seed = freshSeed();
    SCOPED_TRACE(seedTrace(seed));
    std::mt19937_64 rng(seed);
    Case c;
    c.nKvHeads = 2;
    c.sequences = mixedBatch();
    AttentionRun run = makeRun(c, rng);
    attention(CpuContext{nullptr, SimdLevel::Avx2}, run.params);
    EXPECT_LE(maxError(c, run), kTolerance);
}

// Flash's workspace doesn't grow with the context; naive's score matrix
// and the expanded K/V do, by the formulas in docs/ATTENTION.md.
TEST(Attention, WorkspaceSizes) {
    std::vector<int32_t> table(4096, 0);
    const auto sizeAt = [&](int context, AttentionAlgorithm algorithm, int nQueries, bool expand) {
        const AttentionSequence seq{0, nQueries, context - nQueries, table.data()};
        AttentionParams p;
        p.nHeads = 32;
        p.kv = {DType::F16, &table, &table, 8, 16, 128};
        p.sequences = {&seq, 1};
        p.algorithm = algorithm;
        p.expandKv = expand;
        return attentionWorkspaceSize(p, 2);
    };
    for (const int nQueries : {1, 512}) {
        EXPECT_EQ(sizeAt(2048, AttentionAlgorithm::Flash, nQueries, false).total(),
                  sizeAt(65536, AttentionAlgorithm::Flash, nQueries, false).total());
    }
    // Naive: per thread, scores [nQueries][context] f32 and the F16 K/V span as f32.
    const AttentionWorkspaceSize naive = sizeAt(2048, AttentionAlgorithm::Naive, 512, false);
    EXPECT_GE(naive.scratch, 2 * (512 * 2048 * 4 + 2 * 2048 * 128 * 4));
    EXPECT_EQ(naive.expandedKv, 0u);
    // Expanded: K and V copies with one head per query head.
    EXPECT_EQ(sizeAt(2048, AttentionAlgorithm::Flash, 1, true).expandedKv, 2u * 2048 * 32 * 128 * 2);
}

}  // namespace
}  // namespace cpu
}  // namespace pagoda

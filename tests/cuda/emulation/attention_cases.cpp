#include "tests/cuda/emulation/attention_cases.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "kernels/cpu/matmul.h"
#include "kernels/half.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda::emulation {
namespace {

void explainSegfault(int) {
    constexpr char kMessage[] =
        "SIGSEGV in the emulated kernel: an access out of bounds (Q's last row lies right below an inaccessible "
        "page)\n";
    [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    std::signal(SIGSEGV, SIG_DFL);  // the access repeats and ends the process
}

// The first position the query at `pos` attends to.
int windowStart(int pos, int window) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

// Exact attention of one query row over positions [windowStart(pos), pos]
// of its sequence, the scores soft-capped where the case caps them, from q
// rounded to f16 as the kernel rounds it or from the f32 q the kernel reads.
std::vector<double> referenceRow(const Batch& batch, const ReferenceCheck& check, size_t seq, const float* qRow,
                                 int kvHead, int pos) {
    const AttentionShape& c = batch.shape();
    const int first = windowStart(pos, c.window);
    std::vector<double> q(size_t(c.headDim));
    for (int d = 0; d < c.headDim; ++d) {
        q[size_t(d)] = check.qRoundedToHalf ? test::refHalfToDouble(floatToHalf(qRow[d])) : double(qRow[d]);
    }
    // K and V as the kernel reads them: the pools' values, or (Q8_0 into the
    // prefill kernel's f16 tiles) those rounded to f16.
    const auto read = [&](double value) {
        return check.kvRoundedToHalf ? test::refHalfToDouble(floatToHalf(float(value))) : value;
    };
    std::vector<double> scores;
    for (int p = first; p <= pos; ++p) {
        const size_t at = batch.poolIndex(seq, p, kvHead);
        double dot = 0;
        for (int d = 0; d < c.headDim; ++d) dot += q[size_t(d)] * read(batch.kValue(at + size_t(d)));
        const double score = dot * check.scale;
        scores.push_back(c.softcap > 0 ? c.softcap * std::tanh(score / c.softcap) : score);
    }
    const double maxScore = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    for (double& s : scores) sum += (s = std::exp(s - maxScore));
    std::vector<double> out(size_t(c.headDim), 0.0);
    for (int p = first; p <= pos; ++p) {
        const double weight = scores[size_t(p - first)] / sum;
        const size_t at = batch.poolIndex(seq, p, kvHead);
        for (int d = 0; d < c.headDim; ++d) out[size_t(d)] += weight * read(batch.vValue(at + size_t(d)));
    }
    return out;
}

}  // namespace

GuardedFloats::GuardedFloats(size_t count) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t bytes = (count * sizeof(float) + page - 1) / page * page;
    m_bytes = bytes + page;
    m_base = mmap(nullptr, m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m_base == MAP_FAILED || mprotect(static_cast<char*>(m_base) + bytes, page, PROT_NONE) != 0) {
        throw std::runtime_error("cannot map " + std::to_string(m_bytes) + " bytes with a guard page");
    }
    m_data = reinterpret_cast<float*>(static_cast<char*>(m_base) + bytes) - count;
}

GuardedFloats::~GuardedFloats() { munmap(m_base, m_bytes); }

void explainSegfaults() { std::signal(SIGSEGV, explainSegfault); }

Batch::Batch(AttentionShape shape, PoolValues poolValues, std::mt19937_64& rng)
    : m_shape(std::move(shape)), m_q(size_t(m_shape.rows) * rowElements()) {
    const AttentionShape& c = m_shape;
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

    const size_t poolElements = size_t(nBlocks) * size_t(c.nKvHeads) * size_t(c.blockSize) * size_t(c.headDim);
    const size_t headDim = size_t(c.headDim);
    const size_t rowBytes = c.q8 ? headDim / 32 * 34 : 2 * headDim;
    const size_t poolRows = poolElements / headDim;
    m_k.assign(poolRows * rowBytes, 0);
    m_v.assign(poolRows * rowBytes, 0);
    m_kValues.assign(poolElements, std::nan(""));
    m_vValues.assign(poolElements, std::nan(""));
    // Rows without a value: f16 NaNs, or Q8_0 blocks whose scale is NaN.
    for (std::vector<uint8_t>* pool : {&m_k, &m_v}) {
        for (size_t at = 0; at < pool->size(); at += c.q8 ? 34 : 2) std::memcpy(pool->data() + at, &kHalfNan, 2);
    }
    // A row of values at element `at`: stored as the pool holds them, and
    // what they read back as.
    std::vector<float> row(headDim);
    const auto store = [&](std::vector<uint8_t>& pool, std::vector<double>& values, size_t at) {
        for (float& x : row) x = uniform(rng);
        uint8_t* bytes = pool.data() + at / headDim * rowBytes;
        if (c.q8) cpu::quantizeRow(DType::Q8_0, row.data(), bytes, int64_t(headDim));
        for (size_t d = 0; d < headDim; ++d) {
            if (c.q8) {
                const uint8_t* block = bytes + d / 32 * 34;
                uint16_t scale;
                std::memcpy(&scale, block, 2);
                values[at + d] = test::refHalfToDouble(scale) * double(int8_t(block[2 + d % 32]));
            } else {
                const uint16_t h = floatToHalf(row[d]);
                std::memcpy(bytes + 2 * d, &h, 2);
                values[at + d] = test::refHalfToDouble(h);
            }
        }
    };
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        const int attended = windowStart(s.startPos, c.window);
        const int first = poolValues == PoolValues::HeldBlocks ? attended / c.blockSize * c.blockSize : attended;
        for (int pos = first; pos < s.startPos + s.nQueries; ++pos) {
            for (int kvHead = 0; kvHead < c.nKvHeads; ++kvHead) {
                const size_t at = poolIndex(seq, pos, kvHead);
                store(m_k, m_kValues, at);
                store(m_v, m_vValues, at);
                for (size_t d = 0; d < headDim; ++d) m_maxAbsV = std::max(m_maxAbsV, std::fabs(m_vValues[at + d]));
            }
        }
    }

    float* q = m_q.data();
    std::fill(q, q + size_t(c.rows) * rowElements(), std::nanf(""));
    for (const Sequence& s : c.sequences) {
        float* rows = q + size_t(s.queryOffset) * rowElements();
        std::generate(rows, rows + size_t(s.nQueries) * rowElements(), [&] { return kQScale * uniform(rng); });
    }
    m_out.assign((size_t(c.rows) + 2) * rowElements(), std::bit_cast<float>(kUnwritten));
}

size_t Batch::poolIndex(size_t seq, int pos, int kvHead) const {
    const int32_t block = m_tables[seq][size_t(pos / m_shape.blockSize)];
    return ((size_t(block) * size_t(m_shape.nKvHeads) + size_t(kvHead)) * size_t(m_shape.blockSize) +
            size_t(pos % m_shape.blockSize)) *
           size_t(m_shape.headDim);
}

AttentionArgs attentionArgs(Batch& batch, const AttentionPlan& plan) {
    const AttentionShape& c = batch.shape();
    AttentionArgs args;
    args.q = batch.q();
    args.out = batch.outRows();
    args.nHeads = c.nHeads;
    args.scale = 1.0f / std::sqrt(float(c.headDim));
    args.window = c.window;
    args.softcap = c.softcap;
    args.kv.q8 = c.q8;
    args.kv.k = batch.k().data();
    args.kv.v = batch.v().data();
    args.kv.nKvHeads = c.nKvHeads;
    args.kv.blockSize = c.blockSize;
    args.kv.headDim = c.headDim;
    args.seqs = plan.packed.data() + plan.seqOffset;
    args.tables = plan.packed.data() + plan.tableOffset;
    return args;
}

StatusOr<AttentionPlan> planBatch(const Batch& batch, const AttentionPlanOptions& options) {
    const AttentionShape& c = batch.shape();
    const AttentionGeometry geometry{c.nHeads, c.nKvHeads, c.headDim, c.blockSize, c.window};
    std::vector<AttentionSequenceSpec> specs;
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        specs.push_back({s.queryOffset, s.nQueries, s.startPos, batch.table(seq).data(), int(batch.table(seq).size())});
    }
    return planAttention(geometry, specs, options);
}

void expectMatchesReference(const Batch& batch, const ReferenceCheck& check) {
    const AttentionShape& c = batch.shape();
    const double tolerance = check.tolerance * batch.maxAbsV();
    long wrong = 0;
    long checked = 0;
    double maxError = 0;
    std::vector<bool> owned(size_t(batch.rows()), false);
    for (size_t seq = 0; seq < c.sequences.size(); ++seq) {
        const Sequence& s = c.sequences[seq];
        for (int r = 0; r < s.nQueries; ++r) {
            const int row = s.queryOffset + r;
            const int pos = s.startPos + r;
            owned[size_t(row)] = true;
            for (int head = 0; head < c.nHeads; ++head) {
                const size_t at = size_t(row) * batch.rowElements() + size_t(head) * size_t(c.headDim);
                const int kvHead = head / (c.nHeads / c.nKvHeads);
                const std::vector<double> want = referenceRow(batch, check, seq, batch.q() + at, kvHead, pos);
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
    for (int row = 0; check.paddingZeros && row < batch.rows(); ++row) {
        if (owned[size_t(row)]) continue;
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
    testing::Test::RecordProperty("max_error", std::to_string(maxError));
    char relative[32];
    std::snprintf(relative, sizeof relative, "%.2e", maxError / batch.maxAbsV());
    testing::Test::RecordProperty("max_error_over_max_v", relative);
}

std::string joined(const std::vector<std::string>& messages) {
    std::string text;
    for (const std::string& m : messages) text += "\n  " + m;
    return text;
}

void report(std::vector<std::string>& problems, std::string problem) {
    if (problems.size() < kMaxReported) problems.push_back(std::move(problem));
}

std::string ctaName(Index3 block) {
    return "CTA (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," + std::to_string(block.z) + ")";
}

void expectNoFindings(const Findings& findings, const std::string& kernel) {
    EXPECT_EQ(findings.hazardCount, 0) << kernel << ": shared-memory hazards, the first:" << joined(findings.hazards);
    EXPECT_EQ(findings.errorCount, 0) << kernel << ": emulation errors, the first:" << joined(findings.errors);
}

}  // namespace pagoda::cuda::emulation

// Naive attention, the baseline: for each (sequence, query head) the whole
// score matrix S = scale · Q·Kᵀ over the sequence's visible context
// [nQueries][span] is materialized, masked (causal, window) by setting
// entries to -inf, softmaxed row by row and multiplied by V, as simple
// implementations do (one matmul, a softmax, another matmul). F16 K/V are
// converted to f32 for the span first (read in place when fewer than
// kConvertRows queries use them, as flash does). Both products use the same
// register-blocked kernels as flash, over panels of kPanel keys that stay
// in cache; the threads take (sequence, head) items. Each query head reads
// its KV head on its own, so grouped heads don't share reads.

#include <limits>
#include <vector>

#include "kernels/cpu/attention_common.h"

namespace pagoda::cpu::detail {
namespace {

constexpr int kPanel = 256;

struct Item {
    int sequence = 0;
    int head = 0;
};

struct Scratch {
    float* s = nullptr;                // [maxScores]: one item's [nQueries][span]
    float* kBuf = nullptr;             // F16, Q8_0: [maxF32][headDim] converted rows
    float* vBuf = nullptr;             // F16, Q8_0: [maxF32][headDim]
    const float** qRows = nullptr;     // [maxQueries]
    const float** kRows = nullptr;     // [maxF32]
    const float** vRows = nullptr;     // [maxF32]
    const uint16_t** kHalf = nullptr;  // [maxHalf] F16 rows in place
    const uint16_t** vHalf = nullptr;  // [maxHalf]
};

bool inPlace(const AttentionTask& t, const SequenceTask& seq) { return t.halfInPlace(seq.nQueries); }

int span(const AttentionTask& t, const SequenceTask& seq) { return seq.lastPos() - t.windowStart(seq.startPos) + 1; }

std::vector<Scratch> carve(const AttentionTask& t, Arena& arena) {
    size_t maxQueries = 0;
    size_t maxScores = 0;
    size_t maxF32 = 0;   // longest span read as f32 (F32, or F16 converted)
    size_t maxHalf = 0;  // longest span of F16 read in place
    for (const SequenceTask& seq : t.sequences) {
        const size_t n = size_t(span(t, seq));
        maxQueries = std::max(maxQueries, size_t(seq.nQueries));
        maxScores = std::max(maxScores, size_t(seq.nQueries) * n);
        size_t& longest = inPlace(t, seq) ? maxHalf : maxF32;
        longest = std::max(longest, n);
    }
    std::vector<Scratch> threads;
    for (int i = 0; i < t.nThreads; ++i) {
        Scratch sc;
        sc.s = arena.take<float>(maxScores);
        if (t.converts()) {
            sc.kBuf = arena.take<float>(maxF32 * t.headDim);
            sc.vBuf = arena.take<float>(maxF32 * t.headDim);
        }
        sc.qRows = arena.take<const float*>(maxQueries);
        sc.kRows = arena.take<const float*>(maxF32);
        sc.vRows = arena.take<const float*>(maxF32);
        sc.kHalf = arena.take<const uint16_t*>(maxHalf);
        sc.vHalf = arena.take<const uint16_t*>(maxHalf);
        threads.push_back(sc);
    }
    return threads;
}

void runItem(const AttentionTask& t, const Item& item, const Scratch& sc) {
    const AttentionKernels& kern = *t.kernels;
    const SequenceTask& seq = t.sequences[item.sequence];
    const int hd = t.headDim;
    const int nQ = seq.nQueries;
    const int first = t.windowStart(seq.startPos);
    const int n = span(t, seq);
    const bool half = inPlace(t, seq);
    const int kvHead = item.head / t.group;
    if (half) {
        t.halfRows(seq, seq.k, kvHead, first, n, sc.kHalf);
        t.halfRows(seq, seq.v, kvHead, first, n, sc.vHalf);
    } else {
        t.floatRows(seq, seq.k, kvHead, first, n, sc.kRows, sc.kBuf);
        t.floatRows(seq, seq.v, kvHead, first, n, sc.vRows, sc.vBuf);
    }
    for (int i = 0; i < nQ; ++i) sc.qRows[i] = t.q + (size_t(seq.queryOffset + i) * t.nHeads + item.head) * hd;

    for (int p0 = 0; p0 < n; p0 += kPanel) {
        const int pn = std::min(kPanel, n - p0);
        if (half) {
            kern.scoresHalf(sc.qRows, nQ, sc.kHalf + p0, pn, hd, t.scaleLog2, sc.s + p0, n);
        } else {
            kern.scores(sc.qRows, nQ, sc.kRows + p0, pn, hd, t.scaleLog2, sc.s + p0, n);
        }
    }
    constexpr float kMasked = -std::numeric_limits<float>::infinity();
    for (int i = 0; i < nQ; ++i) {
        float* s = sc.s + size_t(i) * n;
        t.capScores(s, n);
        const int pos = seq.startPos + i;
        std::fill(s, s + (t.windowStart(pos) - first), kMasked);
        std::fill(s + (pos - first + 1), s + n, kMasked);
        const float sum = kern.exp2Sum(s, n, kern.rowMax(s, n));
        kern.scale(s, n, 1.0f / sum);
    }

    float* out = t.out + (size_t(seq.queryOffset) * t.nHeads + item.head) * hd;  // rows nHeads * hd apart
    const int ldOut = t.nHeads * hd;
    for (int i = 0; i < nQ; ++i) std::fill(out + size_t(i) * ldOut, out + size_t(i) * ldOut + hd, 0.0f);
    for (int p0 = 0; p0 < n; p0 += kPanel) {
        const int pn = std::min(kPanel, n - p0);
        if (half) {
            kern.accumulatePvHalf(sc.s + p0, n, nQ, sc.vHalf + p0, pn, hd, out, ldOut);
        } else {
            kern.accumulatePv(sc.s + p0, n, nQ, sc.vRows + p0, pn, hd, out, ldOut);
        }
    }
}

}  // namespace

void layoutNaiveWorkspace(const AttentionTask& task, Arena& arena) { carve(task, arena); }

void runNaive(const AttentionTask& task, std::byte* workspace) {
    Arena arena(workspace);
    const std::vector<Scratch> threads = carve(task, arena);
    std::vector<Item> items;
    for (size_t s = 0; s < task.sequences.size(); ++s) {
        for (int h = 0; h < task.nHeads; ++h) items.push_back({int(s), h});
    }
    std::stable_sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
        const SequenceTask& sa = task.sequences[a.sequence];
        const SequenceTask& sb = task.sequences[b.sequence];
        return int64_t(sa.nQueries) * span(task, sa) > int64_t(sb.nQueries) * span(task, sb);
    });
    forEachItem(task, items.size(), [&](size_t i, int thread) { runItem(task, items[i], threads[thread]); });
}

}  // namespace pagoda::cpu::detail

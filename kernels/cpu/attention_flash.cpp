// Flash attention on the CPU. The query rows of one KV head (its group of
// query heads for a run of tokens) are cut into tiles of kTileRows; each
// tile walks its KV range in chunks of kChunk positions. Per chunk: the
// scores of the rows that see it (K rows gathered through the block table,
// F16 converted once into a per-thread buffer shared by the tile's rows,
// or read in place by fewer than kConvertRows rows), an online softmax per
// row (running max m and sum l, the partial output rescaled when m grows),
// then P·V into the tile's output (V gathered the same way). Nothing grows
// with the context length.
//
// Decode-sized sequences (at most kDecodeRows query rows in all) take one
// tile for all KV heads instead, walking each chunk (kDecodeChunk positions
// when a head has a single query row or few): the K of every head, then the
// V of every head. A paged block holds
// [nKvHeads][blockSize][headDim] of K (and of V), so with chunks on block
// boundaries the tile reads each block's K and then its V front to back,
// where a tile per head would take a 4 KiB slice of every block. Chunks
// start at multiples of their length. Each step (one head's K or V of a
// chunk) prefetches the rows of the step kPrefetchSteps later.
//
// Flash-decoding: when a few tiles would leave threads idle (decode at
// batch 1, MQA), a tile's KV range is split into parts run by different
// threads, each ending with its own (m, l, unnormalized output); a merge
// pass combines them with weights 2^(m_part - max m).

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_common.h"

namespace pagoda::cpu::detail {
namespace {

constexpr int kTileRows = 128;   // query rows per tile: each K/V chunk is gathered once for all of them
constexpr int kChunk = 64;       // KV positions per step
constexpr int kDecodeRows = 64;  // sequences with nQueries · nHeads up to this take one tile for all heads
// Decode tiles whose heads have fewer rows than this are bound by memory and
// walk one block (of the default size) per step; the others by compute, and
// take kChunk.
constexpr int kDecodeChunk = 16;
constexpr int kDecodeChunkRows = 4;
constexpr int kPrefetchSteps = 2;
// A part of a split tile spans at least this many positions, and the
// parts aim at kPartsPerThread per thread so that claiming them from a
// counter evens out a thread the OS preempts.
constexpr int kMinSplitPositions = 256;
constexpr int kPartsPerThread = 4;

struct Tile {
    int sequence = 0;
    int kvHead0 = 0;  // KV heads [kvHead0, kvHead0 + kvHeads)
    int kvHeads = 1;
    int row0 = 0;  // rows [row0, row0 + rows) of each head's [nQueries][group] query rows
    int rows = 0;
    int chunk = kChunk;  // KV positions per step
    int parts = 1;       // 1: the tile writes its output rows directly
    size_t partial = 0;  // parts > 1: float offset of its [parts][kvHeads * rows][headDim + 2] partial results

    int states() const { return kvHeads * rows; }  // (head, row) pairs, head-major
};

struct Item {
    int tile = 0;
    int part = 0;
    int kvBegin = 0;  // positions [kvBegin, kvEnd)
    int kvEnd = 0;
};

struct Plan {
    std::vector<Tile> tiles;
    std::vector<Item> items;       // largest first
    std::vector<int> splitTiles;   // tiles with parts > 1
    size_t partialFloats = 0;
    bool converts = false;  // some tile converts F16 chunks to f32
};

// Query row r of a tile's sequence: token r / group, head kvHead * group + r % group.
int rowToken(const AttentionTask& t, int row) { return row / t.group; }

Plan makePlan(const AttentionTask& t) {
    Plan plan;
    const int tileRows = t.group <= kTileRows ? kTileRows / t.group * t.group : kTileRows;
    struct Range {
        int begin, end;
    };
    std::vector<Range> ranges;
    double total = 0;
    for (size_t s = 0; s < t.sequences.size(); ++s) {
        const SequenceTask& seq = t.sequences[s];
        const int rowsTotal = seq.nQueries * t.group;
        const auto add = [&](int kvHead0, int kvHeads, int r0, int rows) {
            const int begin = t.windowStart(seq.startPos + rowToken(t, r0));
            const int end = seq.startPos + rowToken(t, r0 + rows - 1) + 1;
            const int chunk = kvHeads > 1 && rows < kDecodeChunkRows ? kDecodeChunk : kChunk;
            plan.tiles.push_back({int(s), kvHead0, kvHeads, r0, rows, chunk, 1, 0});
            ranges.push_back({begin, end});
            total += double(kvHeads) * rows * (end - begin);
        };
        if (seq.nQueries * t.nHeads <= kDecodeRows) {
            add(0, t.nKvHeads, 0, rowsTotal);
            continue;
        }
        for (int h = 0; h < t.nKvHeads; ++h) {
            for (int r0 = 0; r0 < rowsTotal; r0 += tileRows) add(h, 1, r0, std::min(tileRows, rowsTotal - r0));
        }
    }
    const double target = total / (kPartsPerThread * t.nThreads);
    for (size_t i = 0; i < plan.tiles.size(); ++i) {
        Tile& tile = plan.tiles[i];
        plan.converts = plan.converts || (t.converts() && !t.halfInPlace(tile.rows));
        const int length = ranges[i].end - ranges[i].begin;
        if (t.nThreads > 1) {
            const int wanted = int(std::ceil(double(tile.states()) * length / target));
            tile.parts = std::clamp(wanted, 1, std::max(1, length / kMinSplitPositions));
        }
        // Parts are whole chunks, as equal as chunks allow.
        const int firstChunk = ranges[i].begin / tile.chunk;
        const int chunks = (ranges[i].end + tile.chunk - 1) / tile.chunk - firstChunk;
        for (int p = 0; p < tile.parts; ++p) {
            const int begin = std::max(ranges[i].begin, (firstChunk + p * chunks / tile.parts) * tile.chunk);
            const int end = std::min(ranges[i].end, (firstChunk + (p + 1) * chunks / tile.parts) * tile.chunk);
            plan.items.push_back({int(i), p, begin, end});
        }
        if (tile.parts > 1) {
            tile.partial = plan.partialFloats;
            plan.partialFloats += size_t(tile.parts) * tile.states() * (t.headDim + 2);
            plan.splitTiles.push_back(int(i));
        }
    }
    std::stable_sort(plan.items.begin(), plan.items.end(), [&](const Item& a, const Item& b) {
        return int64_t(plan.tiles[a.tile].states()) * (a.kvEnd - a.kvBegin) >
               int64_t(plan.tiles[b.tile].states()) * (b.kvEnd - b.kvBegin);
    });
    return plan;
}

// One thread's tile state.
constexpr int kMaxStates = std::max(kTileRows, kDecodeRows);

struct Scratch {
    float* s = nullptr;     // [kMaxStates][kChunk] scores, then weights
    float* o = nullptr;     // [kMaxStates][headDim] unnormalized output
    float* m = nullptr;     // [kMaxStates] running max (log2 domain)
    float* l = nullptr;     // [kMaxStates] running sum of weights
    float* kvBuf = nullptr;  // plan.converts: [kChunk][headDim] K or V rows as f32 (F16, Q8_0)
};

struct Layout {
    float* partials = nullptr;  // [plan.partialFloats]
    std::vector<Scratch> threads;
};

Layout carve(const AttentionTask& t, const Plan& plan, Arena& arena) {
    Layout layout;
    layout.partials = arena.take<float>(plan.partialFloats);
    for (int i = 0; i < t.nThreads; ++i) {
        Scratch sc;
        sc.s = arena.take<float>(size_t(kMaxStates) * kChunk);
        sc.o = arena.take<float>(size_t(kMaxStates) * t.headDim);
        sc.m = arena.take<float>(kMaxStates);
        sc.l = arena.take<float>(kMaxStates);
        if (plan.converts) sc.kvBuf = arena.take<float>(size_t(kChunk) * t.headDim);
        layout.threads.push_back(sc);
    }
    return layout;
}

// Row `i` of KV head kvHead0 + `head` of the tile, in q or out.
size_t rowOffset(const AttentionTask& t, const SequenceTask& seq, const Tile& tile, int head, int i) {
    const int row = tile.row0 + i;
    const size_t token = size_t(seq.queryOffset + rowToken(t, row));
    return (token * t.nHeads + size_t(tile.kvHead0 + head) * t.group + row % t.group) * t.headDim;
}

// Positions [begin, end) of the item's chunk c.
struct ChunkRange {
    int begin, end;
};
ChunkRange chunkRange(const Tile& tile, const Item& item, int c) {
    return {std::max(item.kvBegin, c * tile.chunk), std::min(item.kvEnd, (c + 1) * tile.chunk)};
}

void runItem(const AttentionTask& t, const Tile& tile, const Item& item, const Scratch& sc, float* partials) {
    const AttentionKernels& kern = *t.kernels;
    const SequenceTask& seq = t.sequences[tile.sequence];
    const int hd = t.headDim;
    const int rows = tile.rows;
    const int states = tile.states();
    const float* qRows[kMaxStates];  // [kvHeads][rows]
    int lo[kTileRows];  // row i sees positions [lo[i], hi[i]]; both never decrease with i
    int hi[kTileRows];
    for (int i = 0; i < rows; ++i) {
        hi[i] = seq.startPos + rowToken(t, tile.row0 + i);
        lo[i] = t.windowStart(hi[i]);
    }
    for (int head = 0; head < tile.kvHeads; ++head) {
        for (int i = 0; i < rows; ++i) qRows[head * rows + i] = t.q + rowOffset(t, seq, tile, head, i);
    }
    std::fill(sc.m, sc.m + states, -std::numeric_limits<float>::infinity());
    std::fill(sc.l, sc.l + states, 0.0f);
    std::fill(sc.o, sc.o + size_t(states) * hd, 0.0f);

    const float* rowsF32[kChunk];
    const uint16_t* rowsF16[kChunk];
    // Steps of the walk: per chunk, the K of each head, then the V of each
    // head. Each step prefetches the rows of the step kPrefetchSteps later.
    const int firstChunk = item.kvBegin / tile.chunk;
    const int endChunk = (item.kvEnd + tile.chunk - 1) / tile.chunk;
    const int stepsPerChunk = 2 * tile.kvHeads;
    const auto prefetchAhead = [&](int c, int step) {
        const int ahead = step + kPrefetchSteps;
        if (c + ahead / stepsPerChunk >= endChunk) return;
        const ChunkRange next = chunkRange(tile, item, c + ahead / stepsPerChunk);
        const int inChunk = ahead % stepsPerChunk;
        t.prefetchRows(seq, inChunk < tile.kvHeads ? seq.k : seq.v, tile.kvHead0 + inChunk % tile.kvHeads,
                       next.begin, next.end - next.begin);
    };
    for (int c = firstChunk; c < endChunk; ++c) {
        const int c0 = chunkRange(tile, item, c).begin;
        const int n = chunkRange(tile, item, c).end - c0;
        // Rows that see part of this chunk: a contiguous range.
        int ra = 0;
        while (ra < rows && hi[ra] < c0) ++ra;
        int rb = rows;
        while (rb > ra && lo[rb - 1] > c0 + n - 1) --rb;
        if (ra == rb) continue;
        const bool inPlace = t.halfInPlace(rb - ra);
        for (int head = 0; head < tile.kvHeads; ++head) {
            prefetchAhead(c, head);
            const int kvHead = tile.kvHead0 + head;
            float* s = sc.s + (head * rows + ra) * kChunk;
            const float* const* q = qRows + head * rows + ra;
            if (inPlace) {
                t.halfRows(seq, seq.k, kvHead, c0, n, rowsF16);
                kern.scoresHalf(q, rb - ra, rowsF16, n, hd, t.scaleLog2, s, kChunk);
            } else {
                t.floatRows(seq, seq.k, kvHead, c0, n, rowsF32, sc.kvBuf);
                kern.scores(q, rb - ra, rowsF32, n, hd, t.scaleLog2, s, kChunk);
            }
            for (int i = ra; i < rb; ++i) t.capScores(s + size_t(i - ra) * kChunk, n);
        }
        for (int head = 0; head < tile.kvHeads; ++head) {
            for (int i = ra; i < rb; ++i) {
                const int state = head * rows + i;
                float* s = sc.s + state * kChunk;
                const int jb = std::max(lo[i] - c0, 0);
                const int je = std::min(hi[i] - c0 + 1, n);
                const float mNew = std::max(sc.m[state], kern.rowMax(s + jb, je - jb));
                const float sum = kern.exp2Sum(s + jb, je - jb, mNew);
                std::fill(s, s + jb, 0.0f);
                std::fill(s + je, s + n, 0.0f);
                if (mNew > sc.m[state] && sc.l[state] > 0.0f) {
                    const float correction = std::exp2(sc.m[state] - mNew);
                    sc.l[state] *= correction;
                    kern.scale(sc.o + size_t(state) * hd, hd, correction);
                }
                sc.l[state] += sum;
                sc.m[state] = mNew;
            }
        }
        for (int head = 0; head < tile.kvHeads; ++head) {
            prefetchAhead(c, tile.kvHeads + head);
            const int kvHead = tile.kvHead0 + head;
            const float* p = sc.s + (head * rows + ra) * kChunk;
            float* o = sc.o + size_t(head * rows + ra) * hd;
            if (inPlace) {
                t.halfRows(seq, seq.v, kvHead, c0, n, rowsF16);
                kern.accumulatePvHalf(p, kChunk, rb - ra, rowsF16, n, hd, o, hd);
            } else {
                t.floatRows(seq, seq.v, kvHead, c0, n, rowsF32, sc.kvBuf);
                kern.accumulatePv(p, kChunk, rb - ra, rowsF32, n, hd, o, hd);
            }
        }
    }

    if (tile.parts == 1) {
        for (int head = 0; head < tile.kvHeads; ++head) {
            for (int i = 0; i < rows; ++i) {
                float* out = t.out + rowOffset(t, seq, tile, head, i);
                const float inv = 1.0f / sc.l[head * rows + i];
                const float* o = sc.o + size_t(head * rows + i) * hd;
                for (int j = 0; j < hd; ++j) out[j] = o[j] * inv;
            }
        }
        return;
    }
    // o [states][hd], m [states], l [states]
    float* part = partials + tile.partial + size_t(item.part) * states * (hd + 2);
    std::copy(sc.o, sc.o + size_t(states) * hd, part);
    std::copy(sc.m, sc.m + states, part + size_t(states) * hd);
    std::copy(sc.l, sc.l + states, part + size_t(states) * hd + states);
}

// Combines a split tile's parts: out = sum_p 2^(m_p - M) o_p / sum_p 2^(m_p - M) l_p.
void mergeTile(const AttentionTask& t, const Tile& tile, const float* partials) {
    const SequenceTask& seq = t.sequences[tile.sequence];
    const int hd = t.headDim;
    const int states = tile.states();
    const size_t partFloats = size_t(states) * (hd + 2);
    const float* parts = partials + tile.partial;
    for (int state = 0; state < states; ++state) {
        float mMax = -std::numeric_limits<float>::infinity();
        for (int p = 0; p < tile.parts; ++p) mMax = std::max(mMax, parts[p * partFloats + size_t(states) * hd + state]);
        float* out = t.out + rowOffset(t, seq, tile, state / tile.rows, state % tile.rows);
        std::fill(out, out + hd, 0.0f);
        float l = 0.0f;
        for (int p = 0; p < tile.parts; ++p) {
            const float* part = parts + p * partFloats;
            const float lPart = part[size_t(states) * hd + states + state];
            if (lPart == 0.0f) continue;  // the part saw none of this row's positions
            const float w = std::exp2(part[size_t(states) * hd + state] - mMax);
            l += w * lPart;
            const float* o = part + size_t(state) * hd;
            for (int j = 0; j < hd; ++j) out[j] += w * o[j];
        }
        const float inv = 1.0f / l;
        for (int j = 0; j < hd; ++j) out[j] *= inv;
    }
}

}  // namespace

void layoutFlashWorkspace(const AttentionTask& task, Arena& arena) { carve(task, makePlan(task), arena); }

void runFlash(const AttentionTask& task, std::byte* workspace) {
    const Plan plan = makePlan(task);
    Arena arena(workspace);
    const Layout layout = carve(task, plan, arena);
    forEachItem(task, plan.items.size(), [&](size_t i, int thread) {
        const Item& item = plan.items[i];
        runItem(task, plan.tiles[item.tile], item, layout.threads[thread], layout.partials);
    });
    forEachItem(task, plan.splitTiles.size(),
                [&](size_t i, int) { mergeTile(task, plan.tiles[plan.splitTiles[i]], layout.partials); });
}

}  // namespace pagoda::cpu::detail

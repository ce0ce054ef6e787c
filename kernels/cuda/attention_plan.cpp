#include "kernels/cuda/attention_plan.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace pagoda::cuda {
namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

size_t alignUp(size_t bytes) { return (bytes + 255) / 256 * 256; }

int windowStart(int pos, int window) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

std::string sequenceName(size_t index) { return "attention sequence " + std::to_string(index); }

}  // namespace

DecodeSplitPlan planDecodeSplits(int maxContext, int64_t ctas, int64_t residentCtas, int blockSize) {
    DecodeSplitPlan plan;
    blockSize = std::max(1, blockSize);
    if (maxContext <= 0) {
        plan.splitTokens = blockSize;
        return plan;
    }
    ctas = std::max<int64_t>(1, ctas);
    residentCtas = std::max<int64_t>(1, residentCtas);
    // Splits of at least kMinSplitTokens, at most kMaxSplits, each a whole
    // number of blocks: the counts `decodeSplitTokens` can give.
    const int most = int(std::clamp<int64_t>(ceilDiv(maxContext, kMinSplitTokens), 1, kMaxSplits));
    auto planFor = [&](int splits) {
        DecodeSplitPlan p;
        p.splitTokens = decodeSplitTokens(maxContext, splits, blockSize);
        p.nSplits = int(ceilDiv(maxContext, p.splitTokens));
        return p;
    };
    // FlashAttention-2's split heuristic (num_splits_heuristic in its
    // flash_api.cpp), counted in resident CTAs: a launch of ctas * n CTAs
    // runs ctas * n / residentCtas waves, and its efficiency is that over
    // the whole waves it takes. Take the fewest splits within 85% of the
    // best efficiency; none when the rows alone fill 80% of the device.
    auto efficiency = [&](int splits) {
        const double waves = double(ctas * splits) / double(residentCtas);
        return waves / std::ceil(waves);
    };
    plan = planFor(1);
    if (ctas * 5 >= residentCtas * 4) return plan;
    double best = 0.0;
    for (int n = 1; n <= most; ++n) best = std::max(best, efficiency(planFor(n).nSplits));
    for (int n = 1; n <= most; ++n) {
        plan = planFor(n);
        if (efficiency(plan.nSplits) >= 0.85 * best) break;
    }
    return plan;
}

bool hasPrefillKernel(int headDim) { return headDim == 64 || headDim == 128; }

int prefillKvTile(int headDim, size_t sharedBytesPerSm) {
    if (headDim != 128) return 64;
    // The runtime reserves 1 KiB of shared memory per CTA (sm_80 to sm_90).
    constexpr size_t kReservedPerCta = 1024;
    return 2 * (prefillSharedBytes(headDim, 64) + kReservedPerCta) <= sharedBytesPerSm ? 64 : 32;
}

int decodeHeadsPerCta(int headDim, int group) {
    const int most = headDim == 64 || headDim == 128 ? 8 : 4;
    int heads = 1;
    while (heads < group && heads < most) heads *= 2;
    return heads;
}

size_t AttentionPlan::workspaceBytes() const { return attentionWorkspaceLayout(*this).total; }

AttentionWorkspaceLayout attentionWorkspaceLayout(const AttentionPlan& plan) {
    AttentionWorkspaceLayout layout;
    layout.partials = 0;
    layout.scores = alignUp(plan.partialBytes);
    layout.expandedK = layout.scores + alignUp(plan.scoreBytes);
    layout.expandedV = layout.expandedK + alignUp(plan.expandedBytes / 2);
    layout.total = layout.expandedV + alignUp(plan.expandedBytes / 2);
    return layout;
}

StatusOr<AttentionPlan> planAttention(const AttentionGeometry& g, const std::vector<AttentionSequenceSpec>& sequences,
                                      const AttentionPlanOptions& options) {
    if (g.nHeads < 1 || g.nKvHeads < 1 || g.nHeads % g.nKvHeads != 0) {
        return Status::error("attention: " + std::to_string(g.nHeads) + " query heads over " +
                             std::to_string(g.nKvHeads) + " KV heads");
    }
    if (g.headDim < 2 || g.headDim > kMaxHeadDim || g.headDim % 2 != 0) {
        return Status::error("unsupported head size: " + std::to_string(g.headDim) + " (even, at most " +
                             std::to_string(kMaxHeadDim) + ")");
    }
    if (g.blockSize < 1 || (g.blockSize & (g.blockSize - 1)) != 0 || g.window < 0) {
        return Status::error("attention: block size " + std::to_string(g.blockSize) + " (a power of two), window " +
                             std::to_string(g.window));
    }

    AttentionPlan plan;
    plan.naive = options.naive;
    plan.expanded = options.expandKv;
    plan.nSeqs = int(sequences.size());
    plan.kvHeads = options.expandKv ? g.nHeads : g.nKvHeads;
    std::vector<int32_t> seqDescs;
    std::vector<int32_t> tables;
    std::vector<int32_t> rows;
    // Prefill tiles with the positions their queries read between them.
    struct PrefillTile {
        int32_t seq;
        int32_t first;
        int positions;
    };
    std::vector<PrefillTile> prefillTiles;
    std::vector<int32_t> copies;
    int maxDecodeContext = 0;
    const bool prefillKernel = !options.naive && hasPrefillKernel(g.headDim);
    for (size_t s = 0; s < sequences.size(); ++s) {
        const AttentionSequenceSpec& seq = sequences[s];
        if (seq.nQueries < 1 || seq.startPos < 0 || seq.queryOffset < 0) {
            return Status::error(sequenceName(s) + ": " + std::to_string(seq.nQueries) + " queries at position " +
                                 std::to_string(seq.startPos) + ", row " + std::to_string(seq.queryOffset));
        }
        const int64_t needed = ceilDiv(int64_t(seq.startPos) + seq.nQueries, g.blockSize);
        if (seq.blockTable == nullptr || seq.nBlocks < needed) {
            return Status::error(sequenceName(s) + ": block table of " + std::to_string(seq.nBlocks) +
                                 " blocks, positions up to " + std::to_string(seq.startPos + seq.nQueries - 1) +
                                 " need " + std::to_string(needed));
        }
        seqDescs.insert(seqDescs.end(), {seq.queryOffset, seq.nQueries, seq.startPos, int32_t(tables.size())});
        // The first block any query of the chunk reads.
        const int firstBlock = windowStart(seq.startPos, g.window) / g.blockSize;
        for (int b = 0; b < int(needed); ++b) {
            int32_t block = seq.blockTable[b];
            if (b >= firstBlock && block < 0) {
                return Status::error(sequenceName(s) + ": block " + std::to_string(b) +
                                     " is released but inside the window");
            }
            if (options.expandKv && block >= 0) {
                copies.insert(copies.end(), {block, plan.expandedBlocks});
                block = plan.expandedBlocks++;
            }
            tables.push_back(block);
        }
        const bool decodeRows = options.naive || seq.nQueries == 1 || !prefillKernel;
        if (decodeRows) {
            for (int i = 0; i < seq.nQueries; ++i) {
                rows.insert(rows.end(), {int32_t(s), i});
                const int pos = seq.startPos + i;
                maxDecodeContext = std::max(maxDecodeContext, pos + 1 - windowStart(pos, g.window));
            }
        } else {
            for (int first = 0; first < seq.nQueries; first += kPrefillTileRows) {
                const int last = seq.startPos + std::min(seq.nQueries, first + kPrefillTileRows) - 1;
                prefillTiles.push_back({int32_t(s), first, last + 1 - windowStart(seq.startPos + first, g.window)});
            }
        }
    }
    // Longest first, over every sequence (the kernel takes the heads of a
    // tile one after another): the last CTAs to start are the shortest, so
    // that no long tile starts when the rest of the grid is nearly done.
    std::stable_sort(prefillTiles.begin(), prefillTiles.end(),
                     [](const PrefillTile& x, const PrefillTile& y) { return x.positions > y.positions; });
    std::vector<int32_t> tiles;
    for (const PrefillTile& tile : prefillTiles) tiles.insert(tiles.end(), {tile.seq, tile.first});
    int nRows = int(rows.size() / kRowDescInts);
    if (options.padRowsTo > nRows) {
        // Padding tokens follow the batch's real tokens.
        int tokenRow = 0;
        for (const AttentionSequenceSpec& seq : sequences) tokenRow = std::max(tokenRow, seq.queryOffset + seq.nQueries);
        for (int r = nRows; r < options.padRowsTo; ++r) rows.insert(rows.end(), {-1, tokenRow++});
        nRows = options.padRowsTo;
    }
    plan.nRows = nRows;
    plan.nTiles = int(tiles.size() / kTileDescInts);
    plan.prefillKvTile = prefillKvTile(g.headDim, options.sharedBytesPerSm);
    plan.nCopies = int(copies.size() / kCopyDescInts);

    const int64_t elementBytes = 2;  // f16 pools; Q8_0 rows take less (1.0625 bytes an element)
    if (options.naive) {
        plan.naiveContext = std::max(1, maxDecodeContext);
        plan.scoreBytes = size_t(nRows) * g.nHeads * plan.naiveContext * sizeof(float);
    } else {
        if (options.fixedContext > 0 && maxDecodeContext > options.fixedContext) {
            return Status::error("attention: a decode row sees " + std::to_string(maxDecodeContext) +
                                 " positions, the fixed plan covers " + std::to_string(options.fixedContext));
        }
        const int context = options.fixedContext > 0 ? options.fixedContext : maxDecodeContext;
        const int64_t ctas = int64_t(nRows) * plan.kvHeads *
                             ceilDiv(g.nHeads / plan.kvHeads, decodeHeadsPerCta(g.headDim, g.nHeads / plan.kvHeads));
        plan.split = planDecodeSplits(context, ctas, int64_t(std::max(1, options.smCount)) * std::max(1, options.decodeCtasPerSm),
                                      g.blockSize);
        if (plan.split.nSplits > 1) {
            plan.partialBytes = size_t(nRows) * g.nHeads * plan.split.nSplits * (2 + g.headDim) * sizeof(float);
        }
    }
    plan.expandedBytes = size_t(2) * plan.expandedBlocks * g.nHeads * g.blockSize * g.headDim * elementBytes;

    if (options.fixedSeqs > 0) {
        if (plan.nSeqs > options.fixedSeqs || int64_t(tables.size()) > options.fixedTableInts) {
            return Status::error("attention: " + std::to_string(plan.nSeqs) + " sequences with " +
                                 std::to_string(tables.size()) + " block-table entries, room for " +
                                 std::to_string(options.fixedSeqs) + " and " + std::to_string(options.fixedTableInts));
        }
        seqDescs.resize(size_t(options.fixedSeqs) * kSeqDescInts, 0);
        tables.resize(size_t(options.fixedTableInts), -1);
    }
    plan.seqOffset = 0;
    plan.tableOffset = seqDescs.size();
    plan.rowOffset = plan.tableOffset + tables.size();
    plan.tileOffset = plan.rowOffset + rows.size();
    plan.copyOffset = plan.tileOffset + tiles.size();
    plan.packed.reserve(plan.copyOffset + copies.size());
    for (const std::vector<int32_t>* part : {&seqDescs, &tables, &rows, &tiles, &copies}) {
        plan.packed.insert(plan.packed.end(), part->begin(), part->end());
    }
    return plan;
}

}  // namespace pagoda::cuda

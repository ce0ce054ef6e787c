#pragma once
// Host-side planning of one attention call on the device: which query rows
// go to the split-context decode kernel and which 128-row tiles to the
// flash prefill kernel, how a decode context is split across CTAs
// (flash-decoding), the block tables and descriptors packed into one
// buffer for a single upload, and the workspace each path needs. Pure host
// code, so that it is tested without a device.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/decode_split.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// Descriptors as the kernels read them, int32 tuples in the packed buffer.
// Sequence: queryOffset (first row of the batch), nQueries, startPos,
// tableOffset (into the packed block tables).
constexpr int kSeqDescInts = 4;
// Decode row: sequence index, query index; or -1 and the batch row of a
// padding token, whose output is zeros.
constexpr int kRowDescInts = 2;
// Prefill tile: sequence index, first query index of its 128 rows.
constexpr int kTileDescInts = 2;
// Expanded-KV block copy: source block, destination block.
constexpr int kCopyDescInts = 2;

constexpr int kPrefillTileRows = 128;
constexpr int kMaxHeadDim = 256;

struct AttentionGeometry {
    int nHeads = 0;
    int nKvHeads = 0;
    int headDim = 0;
    int blockSize = 16;  // a power of two (the kernels shift and mask positions)
    int window = 0;  // 0: full causal attention; W: each query sees its last W positions
};

// One sequence of the batch, as the caller has it (host memory).
struct AttentionSequenceSpec {
    int queryOffset = 0;
    int nQueries = 0;
    int startPos = 0;
    const int32_t* blockTable = nullptr;  // [nBlocks]; negative: released (outside the window)
    int nBlocks = 0;
};

struct AttentionPlanOptions {
    bool naive = false;     // the materialized-scores baseline for every row
    bool expandKv = false;  // GQA off: K/V copied to one head per query head first
    int smCount = 108;
    // Decode CTAs one SM holds at once (decodeCtasPerSm in
    // decode_attention.h asks the runtime); 2 is FlashAttention-2's figure
    // for its 128-thread split-KV CTAs.
    int decodeCtasPerSm = 2;
    size_t sharedBytesPerSm = 0;  // the device's (prefillKvTile)
    // > 0: plan the decode split for this context whatever the batch holds,
    // so that the launch shape stays fixed (CUDA graph replay).
    int fixedContext = 0;
    // > decode rows: pad the decode row list with rows of sequence -1 up to
    // this many (a CUDA graph bucket).
    int padRowsTo = 0;
    // > 0: reserve room for this many sequences and block-table entries in
    // `packed`, so that the offsets (baked into a CUDA graph) do not move.
    int fixedSeqs = 0;
    int fixedTableInts = 0;
};

struct DecodeSplitPlan {
    int nSplits = 1;
    // Positions per split of a row with the planned context (a multiple of
    // the block size); the kernel cuts each row's own context
    // (decodeSplitTokens, decode_split.h).
    int splitTokens = 16;
};

// Splits of a decode context of up to maxContext positions for `ctas`
// CTAs before splitting (rows x KV-head groups) on a device that holds
// residentCtas of them at once: whole waves of resident CTAs, with as few
// splits as come close to the best wave efficiency, none of them empty at
// maxContext.
DecodeSplitPlan planDecodeSplits(int maxContext, int64_t ctas, int64_t residentCtas, int blockSize);

// Head dims the tensor-core prefill kernel is compiled for; other head
// dims run every row through the decode kernel.
bool hasPrefillKernel(int headDim);

// Halves per row of the prefill kernel's shared tiles: 16-byte aligned
// rows whose ldmatrix accesses do not conflict.
constexpr int prefillSharedStride(int headDim) { return headDim + 8; }

// Shared memory of one prefill CTA: Q [kPrefillTileRows] and two K and two
// V tiles [kvTile], f16 rows of prefillSharedStride halves.
constexpr size_t prefillSharedBytes(int headDim, int kvTile) {
    return size_t(kPrefillTileRows + 4 * kvTile) * size_t(prefillSharedStride(headDim)) * 2;
}

// K/V positions per prefill tile (the kernel is compiled for 64, and for
// 32 at head dim 128): 64 where two CTAs of it fit one SM's shared memory,
// so that a tile's fixed costs (barrier, copies, rescaling O) are spread
// over twice the positions; else 32 at head dim 128 (A100's 164 KiB per SM
// holds two CTAs of 68 KiB, not of 102 KiB).
int prefillKvTile(int headDim, size_t sharedBytesPerSm);

// Query heads one decode CTA handles together (they share one KV head),
// for `group` query heads per KV head: the group rounded up to a power of
// two, at most 8 at head dims 64 and 128 and 4 at others (the kernel's
// MAXH, which sizes its registers: an MHA CTA holds one head's state, not
// eight).
int decodeHeadsPerCta(int headDim, int group);

struct AttentionPlan {
    // [seqs][tables][decode rows][prefill tiles][copies], offsets in ints.
    std::vector<int32_t> packed;
    size_t seqOffset = 0;
    size_t tableOffset = 0;
    size_t rowOffset = 0;
    size_t tileOffset = 0;
    size_t copyOffset = 0;
    bool naive = false;
    bool expanded = false;  // the tables name blocks of the expanded pools (expandKv)
    int nSeqs = 0;
    int nRows = 0;      // decode (or, naive: all) rows, padding included
    int nTiles = 0;     // prefill tiles
    int prefillKvTile = 0;  // K/V positions per prefill tile (prefillKvTile)
    int nCopies = 0;    // expandKv block copies
    int kvHeads = 0;    // KV heads the kernels see: nHeads with expandKv
    int expandedBlocks = 0;
    DecodeSplitPlan split;
    int naiveContext = 0;  // columns of the naive score matrix

    size_t partialBytes = 0;   // decode split partials: per row, head, split: max, sum, [headDim] accumulator
    size_t scoreBytes = 0;     // naive scores [nRows][nHeads][naiveContext]
    size_t expandedBytes = 0;  // expanded K and V pools
    size_t workspaceBytes() const;
};

// Plans one call; an error names the offending sequence or geometry.
StatusOr<AttentionPlan> planAttention(const AttentionGeometry& geometry,
                                      const std::vector<AttentionSequenceSpec>& sequences,
                                      const AttentionPlanOptions& options);

// Aligned offsets of the workspace parts (partials, scores, expanded K, expanded V).
struct AttentionWorkspaceLayout {
    size_t partials = 0;
    size_t scores = 0;
    size_t expandedK = 0;
    size_t expandedV = 0;
    size_t total = 0;
};
AttentionWorkspaceLayout attentionWorkspaceLayout(const AttentionPlan& plan);

}  // namespace pagoda::cuda

#pragma once
// The tensor-core flash-attention prefill kernel (launched by
// prefill_attention.cu). A header of its own so that a host emulation can
// compile this very source without nvcc.

#include "kernels/cuda/activations.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/host_device.h"
#include "kernels/cuda/mma_fragments.h"
#include "kernels/cuda/mma_ops.cuh"

namespace pagoda::cuda::prefill {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMTiles = 2;                 // 16-row m-tiles per warp: each K/V fragment serves both
constexpr int kWarpRows = 16 * kMTiles;
constexpr int kBr = kWarpRows * kWarps;    // query rows per CTA (== kPrefillTileRows)
static_assert(kBr == kPrefillTileRows);
template <int D>
constexpr int kStride = D + 8;  // halves per shared row: 16-byte aligned rows, conflict-free ldmatrix
static_assert(kStride<64> == prefillSharedStride(64) && kStride<128> == prefillSharedStride(128));

// Both n-tiles of a B fragment pair (as ldmatrix.x4 loads it: b0, b1 of
// n-tile 0, then of n-tile 1) into their accumulators.
__device__ __forceinline__ void mmaPair(float (&d0)[4], float (&d1)[4], const uint32_t (&a)[4], const uint32_t (&b)[4]) {
    mma16816(d0, a, b[0], b[1]);
    mma16816(d1, a, b[2], b[3]);
}

// Elements column..column+7 of a Q8_0 row (one of its blocks holds them),
// rounded to f16, into 16 bytes of shared memory; zeros when !valid.
__device__ __forceinline__ void storeQ8Chunk(__half* dst, const uint8_t* row, int column, bool valid) {
    __half2* out = reinterpret_cast<__half2*>(dst);
    PAGODA_UNROLL
    for (int j = 0; j < 4; ++j) {
        out[j] = valid ? __floats2half2_rn(q8Element(row, column + 2 * j), q8Element(row, column + 2 * j + 1))
                       : __floats2half2_rn(0.0f, 0.0f);
    }
}

// grid: nTiles * nHeads; block: kWarps warps, warp w owns query rows
// 32w..32w+31 of the tile as two 16-row m-tiles; K/V tiles of Bc
// positions (prefillKvTile, attention_plan.h). Shared memory (dynamic,
// prefillSharedBytes(D, Bc)): Q [kBr][D+8] in f16, then two K and two V
// tiles [Bc][D+8], as they are in the pool (the V fragments are loaded
// transposed by ldmatrix.trans).
// K/V tiles arrive by cp.async (Q8_0 ones by loads and stores), double
// buffered: tile j+1 is in flight
// while tile j is used. Issuing the copies before S = Q Kᵀ, while only O is
// live, keeps the paged address arithmetic out of the register peak.
// Softmax in base 2.
// Q8: the pools hold Q8_0 rows (a.kv.q8), else f16; a parameter rather
// than a branch, so that the f16 kernels keep their registers.
template <int D, int Bc, bool Q8>
__global__ void __launch_bounds__(kThreads, 2) prefillAttentionKernel(AttentionArgs a, const int32_t* tiles) {
    constexpr int kS = kStride<D>;
    constexpr int kBc = Bc;
    constexpr int kChunks = D / 8;  // 16-byte chunks per K/V row
    constexpr int kRowsPerLoad = kThreads / kChunks;  // tile rows one pass of the CTA's copies covers
    constexpr int kLoads = kBc / kRowsPerLoad;
    static_assert(kBc % 16 == 0 && D % 16 == 0 && kRowsPerLoad * kChunks == kThreads && kLoads * kRowsPerLoad == kBc);
    extern __shared__ __align__(16) __half shared[];
    __half* qTile = shared;
    __half* kTiles = qTile + kBr * kS;  // [2][kBc][kS]
    __half* vTiles = kTiles + 2 * kBc * kS;

    // The plan lists the tiles longest first; the CTAs of one tile's heads
    // come one after another.
    const int tile = blockIdx.x / a.nHeads;
    const int h = blockIdx.x % a.nHeads;
    const int seqIndex = tiles[2 * tile];
    const int firstQuery = tiles[2 * tile + 1];
    const SeqDesc s = loadSeq(a.seqs, seqIndex);
    const int kvHead = h / (a.nHeads / a.kv.nKvHeads);
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int g = lane / 4;
    const int c = lane % 4;

    const int nValid = min(kBr, s.nQueries - firstQuery);
    const int posFirst = s.startPos + firstQuery;
    const int kvBegin = windowStart(posFirst, a.window);
    const int kvEnd = posFirst + nValid;  // one past the last query's position
    const float scaleLog2 = a.scale * kLog2e;
    // Scores stay unscaled until the exponential, so the cap is in their units.
    const float softcapRaw = a.softcap / a.scale;
    const int64_t rowStride = int64_t(a.nHeads) * D;

    const __half* kPool = static_cast<const __half*>(a.kv.k);
    const __half* vPool = static_cast<const __half*>(a.kv.v);
    // This thread copies 16-byte chunk `chunkColumn` of tile rows
    // chunkRow, chunkRow + kRowsPerLoad, ...
    const int chunkRow = threadIdx.x / kChunks;
    const int chunkColumn = (threadIdx.x % kChunks) * 8;
    // The K and V tile of positions kv0.. into buffer `buffer`; positions
    // past the queries or in released blocks are zeros (and masked). All of
    // the thread's block-table reads are issued before the first is used,
    // so that their latencies overlap. Q8_0 rows are converted to f16 on
    // the way (loaded and stored, not copied asynchronously).
    auto loadKv = [&](int buffer, int kv0) {
        int block[kLoads];
        const int shift = blockShift(a);
#pragma unroll
        for (int i = 0; i < kLoads; ++i) {
            const int pos = kv0 + chunkRow + i * kRowsPerLoad;
            block[i] = pos < kvEnd ? a.tables[s.tableOffset + (pos >> shift)] : -1;
        }
#pragma unroll
        for (int i = 0; i < kLoads; ++i) {
            const bool valid = block[i] >= 0;
            const int slot = (kv0 + chunkRow + i * kRowsPerLoad) & (a.kv.blockSize - 1);
            const int at = (buffer * kBc + chunkRow + i * kRowsPerLoad) * kS + chunkColumn;
            if constexpr (Q8) {
                const int64_t bytes = valid ? kvSlotRow(a, block[i], slot, kvHead) * a.kv.rowBytes() : 0;
                storeQ8Chunk(&kTiles[at], static_cast<const uint8_t*>(a.kv.k) + bytes, chunkColumn, valid);
                storeQ8Chunk(&vTiles[at], static_cast<const uint8_t*>(a.kv.v) + bytes, chunkColumn, valid);
            } else {
                const int64_t offset = valid ? kvSlotOffset(a, block[i], slot, kvHead) + chunkColumn : 0;
                copyAsync16(&kTiles[at], kPool + offset, valid);
                copyAsync16(&vTiles[at], vPool + offset, valid);
            }
        }
        copyAsyncCommit();
    };
    loadKv(0, kvBegin);

    // Q rows in f16 (rows past the chunk's queries are zeros).
    const float* qBase = a.q + int64_t(s.queryOffset + firstQuery) * rowStride + int64_t(h) * D;
    for (int i = threadIdx.x; i < kBr * (D / 2); i += kThreads) {
        const int row = i / (D / 2);
        const int col = (i % (D / 2)) * 2;
        PAGODA_EXPECT_ALIGNED(qBase + row * rowStride + col, sizeof(float2));
        const float2 v = row < nValid ? *reinterpret_cast<const float2*>(qBase + row * rowStride + col)
                                      : make_float2(0.0f, 0.0f);
        *reinterpret_cast<__half2*>(&qTile[row * kS + col]) = __floats2half2_rn(v.x, v.y);
    }

    // This lane's rows: (mi, r) is tile row 32w + 16mi + g + 8r.
    const int warpRow = warp * kWarpRows;
    const int laneRow = warpRow + g;
    // The warp's first and last query positions.
    const int warpFirstPos = posFirst + warpRow;
    const int warpLastPos = posFirst + min(warpRow + kWarpRows, nValid) - 1;
    const bool warpHasRows = warpRow < nValid;
    const bool warpAllValid = warpRow + kWarpRows <= nValid;

    float o[kMTiles][D / 8][4];
    float m[kMTiles][2];
    float l[kMTiles][2];  // this lane's share of the row sums; the quad's lanes are added at the end
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
        for (int n = 0; n < D / 8; ++n) o[mi][n][0] = o[mi][n][1] = o[mi][n][2] = o[mi][n][3] = 0.0f;
        m[mi][0] = m[mi][1] = -INFINITY;
        l[mi][0] = l[mi][1] = 0.0f;
    }

    const FragmentRow aRow = aFragmentRow(lane);
    const FragmentRow kRow = bFragmentRowNk(lane);
    const FragmentRow vRow = bFragmentRowKnTrans(lane);
    int buffer = 0;
    for (int kv0 = kvBegin; kv0 < kvEnd; kv0 += kBc, buffer ^= 1) {
        copyAsyncWaitAll();
        __syncthreads();  // this tile and Q are in; every warp is done with the other buffer
        if (kv0 + kBc < kvEnd) loadKv(buffer ^ 1, kv0 + kBc);
        if (!warpHasRows || kv0 > warpLastPos || kv0 + kBc - 1 < windowStart(warpFirstPos, a.window)) {
            continue;  // none of the warp's rows sees a position of this tile
        }
        const __half* kTile = kTiles + buffer * kBc * kS;
        const __half* vTile = vTiles + buffer * kBc * kS;

        // Whether all of the warp's rows see all of the tile (no mask to apply).
        const bool unmasked = warpAllValid && kv0 + kBc - 1 <= warpFirstPos && kv0 >= windowStart(warpLastPos, a.window);

        // S = Q · Kᵀ for the warp's 32 rows and the tile's kBc positions.
        float sc[kMTiles][kBc / 8][4];
#pragma unroll
        for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n) sc[mi][n][0] = sc[mi][n][1] = sc[mi][n][2] = sc[mi][n][3] = 0.0f;
        }
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t qa[kMTiles][4];
#pragma unroll
            for (int mi = 0; mi < kMTiles; ++mi) {
                ldmatrixX4(qa[mi], &qTile[(warpRow + mi * 16 + aRow.row) * kS + kk * 16 + aRow.col]);
            }
#pragma unroll
            for (int np = 0; np < kBc / 16; ++np) {
                uint32_t kb[4];
                ldmatrixX4(kb, &kTile[(np * 16 + kRow.row) * kS + kk * 16 + kRow.col]);
#pragma unroll
                for (int mi = 0; mi < kMTiles; ++mi) mmaPair(sc[mi][2 * np], sc[mi][2 * np + 1], qa[mi], kb);
            }
        }

        if (softcapRaw > 0.0f) {
#pragma unroll
            for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
                for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) sc[mi][n][e] = softcapValue(sc[mi][n][e], softcapRaw);
                }
            }
        }
#pragma unroll
        for (int mi = 0; mi < kMTiles; ++mi) {
            // Positions a row may not see: -inf.
            if (!unmasked) {
#pragma unroll
                for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int row = laneRow + mi * 16 + 8 * (e / 2);
                        const int pos = kv0 + n * 8 + 2 * c + e % 2;
                        const bool ok = row < nValid && pos <= posFirst + row &&
                                        pos >= windowStart(posFirst + row, a.window);
                        if (!ok) sc[mi][n][e] = -INFINITY;
                    }
                }
            }
            // The running row maxima, in units of scaleLog2 (the scale is
            // positive, so the maximum of the raw scores scales to the
            // maximum of the scaled ones).
            float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                for (int e = 0; e < 4; ++e) tileMax[e / 2] = fmaxf(tileMax[e / 2], sc[mi][n][e]);
            }
            float correction[2];
            float ref[2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(kFullMask, tileMax[r], 1));
                tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(kFullMask, tileMax[r], 2));
                const float mNew = fmaxf(m[mi][r], tileMax[r] * scaleLog2);
                // A row with nothing unmasked yet keeps a zero reference, so
                // that exp2(-inf - reference) is 0 rather than NaN.
                ref[r] = mNew == -INFINITY ? 0.0f : mNew;
                correction[r] = exp2Approx(m[mi][r] - ref[r]);
                m[mi][r] = mNew;
            }
            // p = 2^(s·scaleLog2 - reference): one FFMA and one ex2 per score.
            float sum[2] = {0.0f, 0.0f};
#pragma unroll
            for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    sc[mi][n][e] = exp2Approx(fmaf(sc[mi][n][e], scaleLog2, -ref[e / 2]));
                    sum[e / 2] += sc[mi][n][e];
                }
            }
#pragma unroll
            for (int r = 0; r < 2; ++r) l[mi][r] = l[mi][r] * correction[r] + sum[r];
            // Once a row's maximum settles its correction is exactly 1, and
            // the multiplications below would change nothing.
            if (correction[0] != 1.0f || correction[1] != 1.0f) {
#pragma unroll
                for (int n = 0; n < D / 8; ++n) {
                    o[mi][n][0] *= correction[0];
                    o[mi][n][1] *= correction[0];
                    o[mi][n][2] *= correction[1];
                    o[mi][n][3] *= correction[1];
                }
            }
        }

        // O += P · V: the S accumulators of n-tiles 2kk and 2kk+1 are
        // exactly the A fragment of k-step kk.
#pragma unroll
        for (int kk = 0; kk < kBc / 16; ++kk) {
            uint32_t p[kMTiles][4];
#pragma unroll
            for (int mi = 0; mi < kMTiles; ++mi) {
                p[mi][0] = packHalf2(sc[mi][2 * kk][0], sc[mi][2 * kk][1]);
                p[mi][1] = packHalf2(sc[mi][2 * kk][2], sc[mi][2 * kk][3]);
                p[mi][2] = packHalf2(sc[mi][2 * kk + 1][0], sc[mi][2 * kk + 1][1]);
                p[mi][3] = packHalf2(sc[mi][2 * kk + 1][2], sc[mi][2 * kk + 1][3]);
            }
#pragma unroll
            for (int np = 0; np < D / 16; ++np) {
                uint32_t vb[4];
                ldmatrixX4Trans(vb, &vTile[(kk * 16 + vRow.row) * kS + np * 16 + vRow.col]);
#pragma unroll
                for (int mi = 0; mi < kMTiles; ++mi) mmaPair(o[mi][2 * np], o[mi][2 * np + 1], p[mi], vb);
            }
        }
    }

#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi) {
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float sum = l[mi][r];
            sum += __shfl_xor_sync(kFullMask, sum, 1);
            sum += __shfl_xor_sync(kFullMask, sum, 2);
            inv[r] = sum > 0.0f ? 1.0f / sum : 0.0f;
        }
        const int row0 = laneRow + mi * 16;
        float* out0 = a.out + int64_t(s.queryOffset + firstQuery + row0) * rowStride + int64_t(h) * D + 2 * c;
        float* out1 = out0 + 8 * rowStride;
        PAGODA_EXPECT_ALIGNED(out0, sizeof(float2));
        PAGODA_EXPECT_ALIGNED(out1, sizeof(float2));
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            if (row0 < nValid) *reinterpret_cast<float2*>(out0 + n * 8) = make_float2(o[mi][n][0] * inv[0], o[mi][n][1] * inv[0]);
            if (row0 + 8 < nValid) *reinterpret_cast<float2*>(out1 + n * 8) = make_float2(o[mi][n][2] * inv[1], o[mi][n][3] * inv[1]);
        }
    }
}

}  // namespace pagoda::cuda::prefill

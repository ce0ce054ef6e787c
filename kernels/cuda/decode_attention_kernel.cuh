#pragma once
// The split-context (flash-decoding) decode attention kernels, launched by
// decode_attention.cu. A header of their own so that a host emulation can
// compile this very source without nvcc.

#include "kernels/cuda/activations.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/decode_split.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/host_device.h"
#include "kernels/cuda/mma_ops.cuh"

#include <type_traits>

namespace pagoda::cuda::decode {

constexpr int kWarps = 4;
constexpr int kLoads = 4;  // K/V rows a warp loads before using them

// Lane `lane` holds dims [lane * DPL, lane * DPL + DPL) of a head; with
// DPL * 32 == headDim (64, 128) they are read as vectors, else one by one
// up to headDim.
template <int DPL>
__device__ __forceinline__ void loadHalfRow(const __half* row, int lane, int headDim, float (&out)[DPL]) {
    if constexpr (DPL == 2) {
        PAGODA_EXPECT_ALIGNED(row + 2 * lane, sizeof(__half2));
        const float2 v = __half22float2(reinterpret_cast<const __half2*>(row)[lane]);
        out[0] = v.x;
        out[1] = v.y;
    } else if constexpr (DPL == 4) {
        PAGODA_EXPECT_ALIGNED(row + 4 * lane, sizeof(uint2));
        const uint2 raw = reinterpret_cast<const uint2*>(row)[lane];
        const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
        const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
        out[0] = a.x;
        out[1] = a.y;
        out[2] = b.x;
        out[3] = b.y;
    } else {
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
            const int d = lane * DPL + i;
            out[i] = d < headDim ? __half2float(row[d]) : 0.0f;
        }
    }
}

// The same from a Q8_0 row (q8Element).
template <int DPL>
__device__ __forceinline__ void loadQ8Row(const uint8_t* row, int lane, int headDim, float (&out)[DPL]) {
    PAGODA_UNROLL
    for (int i = 0; i < DPL; ++i) {
        const int d = lane * DPL + i;
        out[i] = d < headDim ? q8Element(row, d) : 0.0f;
    }
}

// Stage S of warpSumsAll's halving: a lane holds N >> S values; the lane
// with bit 16 >> S set keeps the upper half of them, its partner the lower,
// each adding the other's copy of the half it keeps.
template <int N, int S>
__device__ __forceinline__ void halveSums(float (&x)[N], int lane) {
    if constexpr ((N >> S) > 1) {
        constexpr int kHalf = (N >> S) / 2;
        constexpr int kOffset = 16 >> S;
        const bool upper = (lane & kOffset) != 0;
        PAGODA_UNROLL
        for (int i = 0; i < kHalf; ++i) {
            const float send = upper ? x[i] : x[i + kHalf];
            const float keep = upper ? x[i + kHalf] : x[i];
            x[i] = keep + __shfl_xor_sync(kFullMask, send, kOffset);
        }
        halveSums<N, S + 1>(x, lane);
    }
}

// Stage S of warpSumsAll's doubling, the halving's in reverse: a lane's
// block of N >> (S + 1) sums and its partner's make the block twice as
// long, the lane with bit 16 >> S set holding the upper half.
template <int N, int S>
__device__ __forceinline__ void doubleSums(float (&x)[N], int lane) {
    if constexpr (S >= 0) {
        constexpr int kCount = N >> (S + 1);
        constexpr int kOffset = 16 >> S;
        const bool upper = (lane & kOffset) != 0;
        PAGODA_UNROLL
        for (int i = 0; i < kCount; ++i) {
            const float mine = x[i];
            const float theirs = __shfl_xor_sync(kFullMask, mine, kOffset);
            x[i] = upper ? theirs : mine;
            x[i + kCount] = upper ? mine : theirs;
        }
        doubleSums<N, S - 1>(x, lane);
    }
}

// Each lane's N partial values (N a power of two, at most 32) summed over
// the warp, and all N sums then on every lane: recursive halving (the lanes
// split the values between them, N - 1 shuffles, then log2(32 / N) to
// finish each sum on the lanes that hold it) and recursive doubling (N - 1
// shuffles to gather them): 2N - 2 + log2(32 / N) shuffles where N warp
// sums take 5N. Additions pair lanes symmetrically, so every lane gets the
// same bits.
template <int N>
__device__ __forceinline__ void warpSumsAll(float (&x)[N], int lane) {
    static_assert(N >= 1 && N <= 32 && (N & (N - 1)) == 0);
    constexpr int kStages = N >= 32 ? 5 : N >= 16 ? 4 : N >= 8 ? 3 : N >= 4 ? 2 : N >= 2 ? 1 : 0;
    halveSums<N, 0>(x, lane);
    PAGODA_UNROLL
    for (int offset = 16 >> kStages; offset >= 1; offset /= 2) x[0] += __shfl_xor_sync(kFullMask, x[0], offset);
    doubleSums<N, kStages - 1>(x, lane);
}

// Partials of split s of (row, head), in `partials`:
// max [nRows][nHeads][nSplits], sum (same), accumulator [...][headDim].
struct Partials {
    float* max;
    float* sum;
    float* acc;
    __device__ Partials(float* base, int nRows, int nHeads, int nSplits)
        : max(base), sum(base + int64_t(nRows) * nHeads * nSplits), acc(base + 2 * int64_t(nRows) * nHeads * nSplits) {}
};

// grid: (nSplits, nKvHeads * ceil(group / MAXH), nRows); block: kWarps warps.
// Softmax in base 2: scores carry scale * log2(e).
// Q8: the pools hold Q8_0 rows (a.kv.q8), else f16; CAP: the scores are
// soft-capped (a.softcap > 0). Parameters rather than branches, so that
// the plain kernels keep their registers (a branch of either cost the f16
// kernels up to 27 more, and the occupancy that goes with them).
template <int DPL, int MAXH, bool Q8, bool CAP>
__global__ void __launch_bounds__(kWarps * 32)
    decodeAttentionKernel(AttentionArgs a, const int32_t* rows, int nRows, int nSplits, float* partials) {
    awaitPrecedingKernel();
    __shared__ float warpMaxes[kWarps][MAXH];
    __shared__ float warpSums[kWarps][MAXH];
    __shared__ float warpAcc[kWarps][MAXH][DPL * 32];

    const int D = a.kv.headDim;
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int split = blockIdx.x;
    const int rowIndex = blockIdx.z;
    const int group = a.nHeads / a.kv.nKvHeads;
    const int ctasPerKvHead = (group + MAXH - 1) / MAXH;
    const int kvHead = blockIdx.y / ctasPerKvHead;
    const int h0 = kvHead * group + (blockIdx.y % ctasPerKvHead) * MAXH;
    const int nh = min(MAXH, kvHead * group + group - h0);

    const int seqIndex = rows[2 * rowIndex];
    int tokenRow;
    int begin = 0;
    int end = 0;
    SeqDesc s{};
    if (seqIndex < 0) {
        tokenRow = rows[2 * rowIndex + 1];
    } else {
        s = loadSeq(a.seqs, seqIndex);
        const int pos = s.startPos + rows[2 * rowIndex + 1];
        tokenRow = s.queryOffset + rows[2 * rowIndex + 1];
        const int first = windowStart(pos, a.window);
        const int splitTokens = decodeSplitTokens(pos + 1 - first, nSplits, a.kv.blockSize);
        begin = first + split * splitTokens;
        end = min(pos + 1, begin + splitTokens);
    }

    const float scaleLog2 = a.scale * kLog2e;
    // Scores are in units of log2(e) (q carries it), so is their cap.
    const float softcapLog2 = a.softcap * kLog2e;
    float q[MAXH][DPL];
    float m[MAXH];
    float l[MAXH];
    float acc[MAXH][DPL];
#pragma unroll
    for (int h = 0; h < MAXH; ++h) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
            const int d = lane * DPL + i;
            q[h][i] = h < nh && d < D && begin < end
                          ? a.q[(int64_t(tokenRow) * a.nHeads + h0 + h) * D + d] * scaleLog2
                          : 0.0f;
            acc[h][i] = 0.0f;
        }
    }

    const __half* kPool = static_cast<const __half*>(a.kv.k);
    const __half* vPool = static_cast<const __half*>(a.kv.v);
    const int shift = blockShift(a);
    // The warp's positions are begin + warp, + kWarps, ...; kLoads of them
    // are loaded before any is used, so that their latencies overlap: first
    // their block-table entries, then their rows. The order of the softmax
    // updates stays position order.
    for (int t0 = begin + warp; t0 < end; t0 += kWarps * kLoads) {
        float k[kLoads][DPL];
        float v[kLoads][DPL];
        bool present[kLoads];
        int block[kLoads];
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
            const int t = t0 + u * kWarps;
            block[u] = t < end ? a.tables[s.tableOffset + (t >> shift)] : -1;
        }
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
            present[u] = block[u] >= 0;  // the same on every lane
            if (present[u]) {
                const int slot = (t0 + u * kWarps) & (a.kv.blockSize - 1);
                if constexpr (Q8) {
                    const int64_t at = kvSlotRow(a, block[u], slot, kvHead) * a.kv.rowBytes();
                    loadQ8Row<DPL>(static_cast<const uint8_t*>(a.kv.k) + at, lane, D, k[u]);
                    loadQ8Row<DPL>(static_cast<const uint8_t*>(a.kv.v) + at, lane, D, v[u]);
                } else {
                    const int64_t offset = kvSlotOffset(a, block[u], slot, kvHead);
                    loadHalfRow<DPL>(kPool + offset, lane, D, k[u]);
                    loadHalfRow<DPL>(vPool + offset, lane, D, v[u]);
                }
            } else {
                PAGODA_UNROLL
                for (int i = 0; i < DPL; ++i) k[u][i] = v[u][i] = 0.0f;
            }
        }
        // Every head's score of every row: each lane's share of the dot
        // products, then all of them summed over the warp at once.
        float dots[MAXH * kLoads];
#pragma unroll
        for (int h = 0; h < MAXH; ++h) {
#pragma unroll
            for (int u = 0; u < kLoads; ++u) {
                float sum = 0.0f;
#pragma unroll
                for (int i = 0; i < DPL; ++i) sum += q[h][i] * k[u][i];
                dots[h * kLoads + u] = sum;
            }
        }
        warpSumsAll(dots, lane);
        if constexpr (CAP) {
#pragma unroll
            for (int i = 0; i < MAXH * kLoads; ++i) dots[i] = softcapValue(dots[i], softcapLog2);
        }
        // Per head, one update of the running maximum, one rescale and one
        // exponential per score.
#pragma unroll
        for (int h = 0; h < MAXH; ++h) {
            if (h >= nh) break;
            float dot[kLoads];
            float mNew = m[h];
#pragma unroll
            for (int u = 0; u < kLoads; ++u) {
                dot[u] = present[u] ? dots[h * kLoads + u] : -INFINITY;
                mNew = fmaxf(mNew, dot[u]);
            }
            if (mNew == -INFINITY) continue;  // none of the rows is present
            // 2^-inf = 0: the first present rows leave nothing to rescale.
            const float correction = exp2Approx(m[h] - mNew);
            l[h] *= correction;
#pragma unroll
            for (int i = 0; i < DPL; ++i) acc[h][i] *= correction;
#pragma unroll
            for (int u = 0; u < kLoads; ++u) {
                if (!present[u]) continue;
                const float p = exp2Approx(dot[u] - mNew);
                l[h] += p;
#pragma unroll
                for (int i = 0; i < DPL; ++i) acc[h][i] = fmaf(p, v[u][i], acc[h][i]);
            }
            m[h] = mNew;
        }
    }

#pragma unroll
    for (int h = 0; h < MAXH; ++h) {
        if (lane == 0) {
            warpMaxes[warp][h] = m[h];
            warpSums[warp][h] = l[h];
        }
#pragma unroll
        for (int i = 0; i < DPL; ++i) warpAcc[warp][h][lane * DPL + i] = acc[h][i];
    }
    __syncthreads();

    for (int index = threadIdx.x; index < nh * D; index += blockDim.x) {
        const int h = index / D;
        const int d = index % D;
        float mMax = -INFINITY;
        for (int w = 0; w < kWarps; ++w) mMax = fmaxf(mMax, warpMaxes[w][h]);
        float sum = 0.0f;
        float total = 0.0f;
        if (mMax != -INFINITY) {
            for (int w = 0; w < kWarps; ++w) {
                const float weight = exp2f(warpMaxes[w][h] - mMax);
                sum += warpSums[w][h] * weight;
                total += warpAcc[w][h][d] * weight;
            }
        }
        if (nSplits == 1) {
            a.out[(int64_t(tokenRow) * a.nHeads + h0 + h) * D + d] = sum > 0.0f ? total / sum : 0.0f;
        } else {
            const Partials part(partials, nRows, a.nHeads, nSplits);
            const int64_t slot = (int64_t(rowIndex) * a.nHeads + h0 + h) * nSplits + split;
            if (d == 0) {
                part.max[slot] = mMax;
                part.sum[slot] = sum;
            }
            part.acc[slot * D + d] = total;
        }
    }
}

// Calls f(std::integral_constant<int, DPL>{}, std::integral_constant<int,
// MAXH>{}, std::bool_constant<Q8>{}, std::bool_constant<CAP>{}) for the
// decodeAttentionKernel instantiation of head dim `headDim` with `group`
// query heads per KV head (MAXH = decodeHeadsPerCta) over f16 or (q8) Q8_0
// pools, with scores soft-capped or not; false for a head dim without one
// (odd, or over kMaxHeadDim; for Q8_0, not a multiple of 32). Host code:
// the launcher's and the emulator's dispatch.
template <class F>
bool visitDecodeKernel(int headDim, int group, bool q8, bool softcap, F&& f) {
    if (headDim < 2 || headDim > kMaxHeadDim || headDim % 2 != 0 || group < 1) return false;
    if (q8 && headDim % kKvQ8Block != 0) return false;
    auto withHeads = [&](auto dpl) {
        constexpr int kDpl = decltype(dpl)::value;
        auto withCap = [&](auto maxH, auto rows) {
            if (softcap) {
                f(dpl, maxH, rows, std::true_type{});
            } else {
                f(dpl, maxH, rows, std::false_type{});
            }
        };
        auto withFormat = [&](auto maxH) {
            if (q8) {
                withCap(maxH, std::true_type{});
            } else {
                withCap(maxH, std::false_type{});
            }
        };
        switch (decodeHeadsPerCta(headDim, group)) {
        case 1: withFormat(std::integral_constant<int, 1>{}); break;
        case 2: withFormat(std::integral_constant<int, 2>{}); break;
        case 4: withFormat(std::integral_constant<int, 4>{}); break;
        default:
            if constexpr (kDpl < 8) withFormat(std::integral_constant<int, 8>{});  // 8 heads: head dims 64 and 128
            break;
        }
    };
    if (headDim == 64) {
        withHeads(std::integral_constant<int, 2>{});
    } else if (headDim == 128) {
        withHeads(std::integral_constant<int, 4>{});
    } else {
        withHeads(std::integral_constant<int, 8>{});
    }
    return true;
}

// Merges the splits of each (row, head). grid: (nHeads, nRows).
__global__ void decodeReduceKernel(AttentionArgs a, const int32_t* rows, int nRows, int nSplits,
                                   const float* partials) {
    awaitPrecedingKernel();
    const int h = blockIdx.x;
    const int rowIndex = blockIdx.y;
    const int D = a.kv.headDim;
    const int seqIndex = rows[2 * rowIndex];
    const int query = rows[2 * rowIndex + 1];
    const int tokenRow = seqIndex < 0 ? query : loadSeq(a.seqs, seqIndex).queryOffset + query;
    const Partials part(const_cast<float*>(partials), nRows, a.nHeads, nSplits);
    const int64_t first = (int64_t(rowIndex) * a.nHeads + h) * nSplits;
    float mMax = -INFINITY;
    for (int s = 0; s < nSplits; ++s) mMax = fmaxf(mMax, part.max[first + s]);
    float sum = 0.0f;
    if (mMax != -INFINITY) {
        for (int s = 0; s < nSplits; ++s) sum += part.sum[first + s] * exp2f(part.max[first + s] - mMax);
    }
    float* out = a.out + (int64_t(tokenRow) * a.nHeads + h) * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float total = 0.0f;
        if (mMax != -INFINITY) {
            for (int s = 0; s < nSplits; ++s) {
                total += part.acc[(first + s) * D + d] * exp2f(part.max[first + s] - mMax);
            }
        }
        out[d] = sum > 0.0f ? total / sum : 0.0f;
    }
}

}  // namespace pagoda::cuda::decode

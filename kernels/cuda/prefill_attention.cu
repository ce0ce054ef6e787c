#include "kernels/cuda/prefill_attention.h"

#include <string>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kBr = 16 * kWarps;  // query rows per CTA, 16 per warp (== kPrefillTileRows)
constexpr int kBc = 64;           // K/V positions per tile
static_assert(kBr == kPrefillTileRows);

// D[16x8] += A[16x16] · B[16x8], f16 inputs, f32 accumulators. Fragment
// layouts (PTX ISA, mma.m16n8k16): with g = lane / 4 and c = lane % 4,
// a0 = A[g][2c..2c+1], a1 = A[g+8][2c..], a2 = A[g][2c+8..], a3 = A[g+8][2c+8..];
// b0 = B[2c..2c+1][g], b1 = B[2c+8..2c+9][g];
// d0, d1 = D[g][2c..2c+1], d2, d3 = D[g+8][2c..2c+1].
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t packHalf2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ uint32_t loadWord(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }

// grid: (nTiles, nHeads); block: kWarps warps, warp w owns query rows
// 16w..16w+15 of the tile. Shared memory: K tile [kBc][D + 8] and V tile
// transposed [D][kBc + 8] (the padding makes the fragment loads
// bank-conflict free). Softmax in base 2.
template <int D>
__global__ void __launch_bounds__(kWarps * 32) prefillAttentionKernel(AttentionArgs a, const int32_t* tiles) {
    constexpr int kKStride = D + 8;
    constexpr int kVStride = kBc + 8;
    constexpr int kChunks = D / 8;  // 16-byte chunks per K/V row
    constexpr int kThreads = kWarps * 32;
    constexpr int kLoads = kBc * kChunks / kThreads;  // 16-byte K (and V) chunks per thread per tile
    static_assert(kBc % 16 == 0 && kChunks % 2 == 0 && kLoads * kThreads == kBc * kChunks);
    __shared__ __align__(16) __half kTile[kBc * kKStride];
    __shared__ __align__(16) __half vTile[D * kVStride];

    const int h = blockIdx.y;
    const int seqIndex = tiles[2 * blockIdx.x];
    const int firstQuery = tiles[2 * blockIdx.x + 1];
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

    // This lane's two rows of the tile.
    const int row0 = warp * 16 + g;
    const int row1 = row0 + 8;
    const bool valid0 = row0 < nValid;
    const bool valid1 = row1 < nValid;
    const int qPos0 = posFirst + row0;
    const int qPos1 = posFirst + row1;
    const int lo0 = windowStart(qPos0, a.window);
    const int lo1 = windowStart(qPos1, a.window);
    const int64_t rowStride = int64_t(a.nHeads) * D;
    const float* q0 = a.q + int64_t(s.queryOffset + firstQuery + row0) * rowStride + int64_t(h) * D;
    const float* q1 = q0 + 8 * rowStride;

    uint32_t qFrag[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        const int col = kk * 16 + 2 * c;
        const float2 zero = make_float2(0.0f, 0.0f);
        const float2 a0 = valid0 ? *reinterpret_cast<const float2*>(q0 + col) : zero;
        const float2 a1 = valid1 ? *reinterpret_cast<const float2*>(q1 + col) : zero;
        const float2 a2 = valid0 ? *reinterpret_cast<const float2*>(q0 + col + 8) : zero;
        const float2 a3 = valid1 ? *reinterpret_cast<const float2*>(q1 + col + 8) : zero;
        qFrag[kk][0] = packHalf2(a0.x, a0.y);
        qFrag[kk][1] = packHalf2(a1.x, a1.y);
        qFrag[kk][2] = packHalf2(a2.x, a2.y);
        qFrag[kk][3] = packHalf2(a3.x, a3.y);
    }

    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m0 = -INFINITY;
    float m1 = -INFINITY;
    float l0 = 0.0f;  // this lane's share of row0's sum; the quad's lanes are added at the end
    float l1 = 0.0f;

    const __half* kPool = static_cast<const __half*>(a.kv.k);
    const __half* vPool = static_cast<const __half*>(a.kv.v);
    for (int kv0 = kvBegin; kv0 < kvEnd; kv0 += kBc) {
        // Every load of the tile is issued before the first store, so that
        // their latencies overlap (a load-store loop waits for each in turn).
        uint4 kv[kLoads];
        uint4 vv[kLoads];
        int tOf[kLoads];
        int dOf[kLoads];
#pragma unroll
        for (int i = 0; i < kLoads; ++i) {
            // A warp takes 16 positions x 32 bytes: whole sectors read, and
            // the transposed V stores 2-way bank conflicted (a warp over 2 or
            // 4 whole rows would put 8 or 16 of its lanes in one bank).
            const int chunk = threadIdx.x + i * kThreads;
            const int tLow = chunk % 16;
            const int rest = chunk / 32;
            tOf[i] = (rest % (kBc / 16)) * 16 + tLow;
            dOf[i] = ((rest / (kBc / 16)) * 2 + (chunk / 16) % 2) * 8;
            const int pos = kv0 + tOf[i];
            kv[i] = make_uint4(0, 0, 0, 0);
            vv[i] = make_uint4(0, 0, 0, 0);
            if (pos < kvEnd) {
                const int64_t offset = kvRowOffset(a, s, pos, kvHead);
                if (offset >= 0) {
                    kv[i] = *reinterpret_cast<const uint4*>(kPool + offset + dOf[i]);
                    vv[i] = *reinterpret_cast<const uint4*>(vPool + offset + dOf[i]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < kLoads; ++i) {
            *reinterpret_cast<uint4*>(&kTile[tOf[i] * kKStride + dOf[i]]) = kv[i];
            const __half* vh = reinterpret_cast<const __half*>(&vv[i]);
#pragma unroll
            for (int j = 0; j < 8; ++j) vTile[(dOf[i] + j) * kVStride + tOf[i]] = vh[j];
        }
        __syncthreads();

        // S = Q · Kᵀ for this warp's 16 rows and the tile's kBc positions.
        float sc[kBc / 8][4];
#pragma unroll
        for (int n = 0; n < kBc / 8; ++n) {
            sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
            const __half* kRow = &kTile[(n * 8 + g) * kKStride + 2 * c];
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) mma16816(sc[n], qFrag[kk], loadWord(kRow + kk * 16), loadWord(kRow + kk * 16 + 8));
        }

        // Mask, scale, and the running row maxima.
        float tileMax0 = -INFINITY;
        float tileMax1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int pos = kv0 + n * 8 + 2 * c + e;
                const bool ok0 = valid0 && pos <= qPos0 && pos >= lo0;
                const bool ok1 = valid1 && pos <= qPos1 && pos >= lo1;
                sc[n][e] = ok0 ? sc[n][e] * scaleLog2 : -INFINITY;
                sc[n][2 + e] = ok1 ? sc[n][2 + e] * scaleLog2 : -INFINITY;
                tileMax0 = fmaxf(tileMax0, sc[n][e]);
                tileMax1 = fmaxf(tileMax1, sc[n][2 + e]);
            }
        }
        tileMax0 = fmaxf(tileMax0, __shfl_xor_sync(kFullMask, tileMax0, 1));
        tileMax0 = fmaxf(tileMax0, __shfl_xor_sync(kFullMask, tileMax0, 2));
        tileMax1 = fmaxf(tileMax1, __shfl_xor_sync(kFullMask, tileMax1, 1));
        tileMax1 = fmaxf(tileMax1, __shfl_xor_sync(kFullMask, tileMax1, 2));
        const float mNew0 = fmaxf(m0, tileMax0);
        const float mNew1 = fmaxf(m1, tileMax1);
        // A row with nothing unmasked yet keeps a zero reference, so that
        // exp2(-inf - reference) is 0 rather than NaN.
        const float ref0 = mNew0 == -INFINITY ? 0.0f : mNew0;
        const float ref1 = mNew1 == -INFINITY ? 0.0f : mNew1;
        const float correction0 = exp2f(m0 - ref0);
        const float correction1 = exp2f(m1 - ref1);
        m0 = mNew0;
        m1 = mNew1;
        float sum0 = 0.0f;
        float sum1 = 0.0f;
#pragma unroll
        for (int n = 0; n < kBc / 8; ++n) {
            sc[n][0] = exp2f(sc[n][0] - ref0);
            sc[n][1] = exp2f(sc[n][1] - ref0);
            sc[n][2] = exp2f(sc[n][2] - ref1);
            sc[n][3] = exp2f(sc[n][3] - ref1);
            sum0 += sc[n][0] + sc[n][1];
            sum1 += sc[n][2] + sc[n][3];
        }
        l0 = l0 * correction0 + sum0;
        l1 = l1 * correction1 + sum1;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            o[n][0] *= correction0;
            o[n][1] *= correction0;
            o[n][2] *= correction1;
            o[n][3] *= correction1;
        }

        // O += P · V: the S accumulators of n-tiles 2kk and 2kk+1 are
        // exactly the A fragment of k-step kk.
#pragma unroll
        for (int kk = 0; kk < kBc / 16; ++kk) {
            const uint32_t p[4] = {packHalf2(sc[2 * kk][0], sc[2 * kk][1]), packHalf2(sc[2 * kk][2], sc[2 * kk][3]),
                                   packHalf2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                   packHalf2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < D / 8; ++n) {
                const __half* vRow = &vTile[(n * 8 + g) * kVStride + kk * 16 + 2 * c];
                mma16816(o[n], p, loadWord(vRow), loadWord(vRow + 8));
            }
        }
        __syncthreads();
    }

    l0 += __shfl_xor_sync(kFullMask, l0, 1);
    l0 += __shfl_xor_sync(kFullMask, l0, 2);
    l1 += __shfl_xor_sync(kFullMask, l1, 1);
    l1 += __shfl_xor_sync(kFullMask, l1, 2);
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f;
    const float inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    float* out0 = a.out + int64_t(s.queryOffset + firstQuery + row0) * rowStride + int64_t(h) * D + 2 * c;
    float* out1 = out0 + 8 * rowStride;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        if (valid0) *reinterpret_cast<float2*>(out0 + n * 8) = make_float2(o[n][0] * inv0, o[n][1] * inv0);
        if (valid1) *reinterpret_cast<float2*>(out1 + n * 8) = make_float2(o[n][2] * inv1, o[n][3] * inv1);
    }
}

}  // namespace

Status prefillAttention(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles) {
    const int D = args.kv.headDim;
    if (D != 64 && D != 128) return Status::error("prefillAttention: head dim " + std::to_string(D) + " (64 or 128)");
    if (nTiles < 0 || args.kv.nKvHeads < 1 || args.nHeads % args.kv.nKvHeads != 0 || args.nHeads > 65535) {
        return Status::error("prefillAttention: " + std::to_string(nTiles) + " tiles, " +
                             std::to_string(args.nHeads) + " heads over " + std::to_string(args.kv.nKvHeads) +
                             " KV heads");
    }
    if (nTiles == 0) return {};
    const dim3 grid(unsigned(nTiles), unsigned(args.nHeads));
    if (D == 64) {
        prefillAttentionKernel<64><<<grid, kWarps * 32, 0, stream>>>(args, tiles);
    } else {
        prefillAttentionKernel<128><<<grid, kWarps * 32, 0, stream>>>(args, tiles);
    }
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

#include "kernels/cuda/decode_attention.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention_kernel.cuh"
#include "kernels/cuda/launch.cuh"

namespace pagoda::cuda {
namespace {

using decode::decodeAttentionKernel;
using decode::decodeReduceKernel;
using decode::kWarps;
using decode::visitDecodeKernel;

template <int DPL, int MAXH, bool Q8, bool CAP>
void launchDecode(const LaunchStream& stream, const AttentionArgs& args, const int32_t* rows, int nRows,
                  const DecodeSplitPlan& split, float* partials) {
    const int group = args.nHeads / args.kv.nKvHeads;
    const dim3 grid(unsigned(split.nSplits), unsigned(args.kv.nKvHeads * ((group + MAXH - 1) / MAXH)), unsigned(nRows));
    launchKernel(stream, decodeAttentionKernel<DPL, MAXH, Q8, CAP>, grid, kWarps * 32, 0, args, rows, nRows,
                 split.nSplits, partials);
}

}  // namespace

Status decodeAttention(const LaunchStream& stream, const AttentionArgs& args, const int32_t* rows, int nRows,
                       const DecodeSplitPlan& split, float* partials) {
    const int D = args.kv.headDim;
    if (D < 2 || D > kMaxHeadDim || D % 2 != 0 || args.kv.nKvHeads < 1 || args.nHeads < 1 ||
        args.nHeads % args.kv.nKvHeads != 0) {
        return Status::error("decodeAttention: head dim " + std::to_string(D) + ", " + std::to_string(args.nHeads) +
                             " heads over " + std::to_string(args.kv.nKvHeads) + " KV heads");
    }
    if (nRows < 0 || nRows > 65535 || split.nSplits < 1 || split.nSplits > kMaxSplits ||
        (split.nSplits > 1 && partials == nullptr)) {
        return Status::error("decodeAttention: " + std::to_string(nRows) + " rows, " +
                             std::to_string(split.nSplits) + " splits");
    }
    if (nRows == 0) return {};
    const int group = args.nHeads / args.kv.nKvHeads;
    const auto launch = [&](auto dpl, auto maxH, auto q8, auto cap) {
        launchDecode<decltype(dpl)::value, decltype(maxH)::value, decltype(q8)::value, decltype(cap)::value>(
            stream, args, rows, nRows, split, partials);
    };
    const bool known = visitDecodeKernel(D, group, args.kv.q8, args.softcap > 0.0f, launch);
    if (!known) return Status::error("decodeAttention: no kernel for q8_0 rows of head dim " + std::to_string(D));
    PAGODA_CUDA_CHECK(cudaGetLastError());
    if (split.nSplits > 1) {
        launchKernel(stream, decodeReduceKernel, dim3(unsigned(args.nHeads), unsigned(nRows)), 128, 0, args, rows,
                     nRows, split.nSplits, partials);
        PAGODA_CUDA_CHECK(cudaGetLastError());
    }
    return {};
}

StatusOr<int> decodeCtasPerSm(int headDim, int group, bool q8) {
    int ctas = 0;
    cudaError_t error = cudaSuccess;
    // The soft-capped kernels' occupancy is not asked for: it only steers
    // the split count (a heuristic), and soft-capping models are few.
    const bool known = visitDecodeKernel(headDim, group, q8, false, [&](auto dpl, auto maxH, auto rows, auto cap) {
        error = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &ctas,
            decodeAttentionKernel<decltype(dpl)::value, decltype(maxH)::value, decltype(rows)::value,
                                  decltype(cap)::value>,
            kWarps * 32, 0);
    });
    if (!known) {
        return Status::error("decode attention has no kernel for head dim " + std::to_string(headDim) +
                             " (even, at most " + std::to_string(kMaxHeadDim) + (q8 ? "; q8_0: a multiple of 32" : "") +
                             ") and group " + std::to_string(group));
    }
    PAGODA_CUDA_CHECK(error);
    return std::max(1, ctas);
}

}  // namespace pagoda::cuda

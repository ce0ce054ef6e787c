#include "kernels/cuda/prefill_attention.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/prefill_attention_kernel.cuh"

namespace pagoda::cuda {
namespace {

using prefill::kThreads;
using prefill::prefillAttentionKernel;

template <int D, int Bc, bool Q8>
Status launchPrefill(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles) {
    constexpr size_t bytes = prefillSharedBytes(D, Bc);
    // Above 48 KiB a kernel's dynamic shared memory must be opted into.
    PAGODA_CUDA_CHECK(cudaFuncSetAttribute(prefillAttentionKernel<D, Bc, Q8>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    const unsigned ctas = unsigned(nTiles) * unsigned(args.nHeads);
    prefillAttentionKernel<D, Bc, Q8><<<ctas, kThreads, bytes, stream>>>(args, tiles);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

// The f16 or the Q8_0 kernel of the pools' rows.
template <int D, int Bc>
Status launchPrefill(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles) {
    return args.kv.q8 ? launchPrefill<D, Bc, true>(stream, args, tiles, nTiles)
                      : launchPrefill<D, Bc, false>(stream, args, tiles, nTiles);
}

}  // namespace

Status prefillAttention(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles, int kvTile) {
    // Head dims without a kernel plan no tiles (hasPrefillKernel).
    if (nTiles == 0) return {};
    const int D = args.kv.headDim;
    if (D != 64 && D != 128) return Status::error("prefillAttention: head dim " + std::to_string(D) + " (64 or 128)");
    if (nTiles < 0 || args.kv.nKvHeads < 1 || args.nHeads % args.kv.nKvHeads != 0 ||
        int64_t(nTiles) * args.nHeads > std::numeric_limits<int32_t>::max()) {
        return Status::error("prefillAttention: " + std::to_string(nTiles) + " tiles, " +
                             std::to_string(args.nHeads) + " heads over " + std::to_string(args.kv.nKvHeads) +
                             " KV heads");
    }
    if (!(args.scale > 0.0f) || !std::isfinite(args.scale)) {
        // The online softmax scales row maxima after taking them.
        return Status::error("prefillAttention: scale " + std::to_string(args.scale) + " (positive and finite)");
    }
    if (D == 64 && kvTile == 64) return launchPrefill<64, 64>(stream, args, tiles, nTiles);
    if (D == 128 && kvTile == 64) return launchPrefill<128, 64>(stream, args, tiles, nTiles);
    if (D == 128 && kvTile == 32) return launchPrefill<128, 32>(stream, args, tiles, nTiles);
    return Status::error("prefillAttention: K/V tiles of " + std::to_string(kvTile) + " positions at head dim " +
                         std::to_string(D) + " (prefillKvTile)");
}

}  // namespace pagoda::cuda

#include "kernels/cuda/prefill_attention.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/prefill_attention_kernel.cuh"

namespace pagoda::cuda {
namespace {

using prefill::kThreads;
using prefill::prefillAttentionKernel;
using prefill::prefillSharedBytes;

template <int D>
Status launchPrefill(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles) {
    constexpr size_t bytes = prefillSharedBytes<D>();
    // Above 48 KiB a kernel's dynamic shared memory must be opted into.
    PAGODA_CUDA_CHECK(cudaFuncSetAttribute(prefillAttentionKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    const dim3 grid(unsigned(nTiles), unsigned(args.nHeads));
    prefillAttentionKernel<D><<<grid, kThreads, bytes, stream>>>(args, tiles);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace

Status prefillAttention(cudaStream_t stream, const AttentionArgs& args, const int32_t* tiles, int nTiles) {
    // Head dims without a kernel plan no tiles (hasPrefillKernel).
    if (nTiles == 0) return {};
    const int D = args.kv.headDim;
    if (D != 64 && D != 128) return Status::error("prefillAttention: head dim " + std::to_string(D) + " (64 or 128)");
    if (nTiles < 0 || args.kv.nKvHeads < 1 || args.nHeads % args.kv.nKvHeads != 0 || args.nHeads > 65535) {
        return Status::error("prefillAttention: " + std::to_string(nTiles) + " tiles, " +
                             std::to_string(args.nHeads) + " heads over " + std::to_string(args.kv.nKvHeads) +
                             " KV heads");
    }
    return D == 64 ? launchPrefill<64>(stream, args, tiles, nTiles) : launchPrefill<128>(stream, args, tiles, nTiles);
}

}  // namespace pagoda::cuda

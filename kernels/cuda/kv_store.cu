#include "kernels/cuda/kv_store.h"

#include <cuda_fp16.h>

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {
namespace {

// grid: nTokens; threads over nKvHeads * headDim.
__global__ void storeKvKernel(__half* kPool, __half* vPool, const float* k, const float* v, const int32_t* slots,
                              int nKvHeads, int blockSize, int headDim) {
    const int slot = slots[blockIdx.x];
    if (slot < 0) return;
    const int width = nKvHeads * headDim;
    const int64_t block = slot / blockSize;
    const int offset = slot % blockSize;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const int head = i / headDim;
        const int d = i % headDim;
        const int64_t dst = ((block * nKvHeads + head) * blockSize + offset) * headDim + d;
        kPool[dst] = __float2half_rn(k[int64_t(blockIdx.x) * width + i]);
        vPool[dst] = __float2half_rn(v[int64_t(blockIdx.x) * width + i]);
    }
}

}  // namespace

Status storeKv(cudaStream_t stream, const DeviceKvView& pools, void* kPool, void* vPool, const float* k,
               const float* v, const int32_t* slots, int nTokens) {
    if (nTokens < 0 || pools.nKvHeads < 1 || pools.blockSize < 1 || pools.headDim < 1) {
        return Status::error("storeKv: " + std::to_string(nTokens) + " tokens, " + std::to_string(pools.nKvHeads) +
                             " KV heads, block size " + std::to_string(pools.blockSize) + ", head dim " +
                             std::to_string(pools.headDim));
    }
    if (nTokens == 0) return {};
    storeKvKernel<<<nTokens, 256, 0, stream>>>(static_cast<__half*>(kPool), static_cast<__half*>(vPool), k, v, slots,
                                               pools.nKvHeads, pools.blockSize, pools.headDim);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

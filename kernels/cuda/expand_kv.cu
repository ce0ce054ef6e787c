#include "kernels/cuda/expand_kv.h"

#include <cuda_fp16.h>

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {
namespace {

// grid: (nCopies, nHeads); one block of blockSize * headDim halves per K and V.
__global__ void expandKvKernel(const __half* srcK, const __half* srcV, int nKvHeads, int nHeads, int blockElements,
                               const int32_t* copies, __half* dstK, __half* dstV) {
    const int h = blockIdx.y;
    const int64_t src = (int64_t(copies[2 * blockIdx.x]) * nKvHeads + h / (nHeads / nKvHeads)) * blockElements;
    const int64_t dst = (int64_t(copies[2 * blockIdx.x + 1]) * nHeads + h) * blockElements;
    for (int i = threadIdx.x; i < blockElements; i += blockDim.x) {
        dstK[dst + i] = srcK[src + i];
        dstV[dst + i] = srcV[src + i];
    }
}

}  // namespace

Status expandKv(cudaStream_t stream, const DeviceKvView& src, int nHeads, const int32_t* copies, int nCopies,
                void* dstK, void* dstV) {
    if (nCopies < 0 || src.nKvHeads < 1 || nHeads % src.nKvHeads != 0 || nHeads > 65535) {
        return Status::error("expandKv: " + std::to_string(nCopies) + " blocks, " + std::to_string(nHeads) +
                             " heads over " + std::to_string(src.nKvHeads) + " KV heads");
    }
    if (nCopies == 0) return {};
    expandKvKernel<<<dim3(unsigned(nCopies), unsigned(nHeads)), 256, 0, stream>>>(
        static_cast<const __half*>(src.k), static_cast<const __half*>(src.v), src.nKvHeads, nHeads,
        src.blockSize * src.headDim, copies, static_cast<__half*>(dstK), static_cast<__half*>(dstV));
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

#include "kernels/cuda/expand_kv.h"

#include <cuda_fp16.h>

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {
namespace {

// grid: (nCopies, nHeads); one head's rows of a block, `units` 16-bit
// words (f16 elements, or Q8_0 rows, whose bytes come in pairs), per K and V.
__global__ void expandKvKernel(const uint16_t* srcK, const uint16_t* srcV, int nKvHeads, int nHeads, int units,
                               const int32_t* copies, uint16_t* dstK, uint16_t* dstV) {
    const int h = blockIdx.y;
    const int64_t src = (int64_t(copies[2 * blockIdx.x]) * nKvHeads + h / (nHeads / nKvHeads)) * units;
    const int64_t dst = (int64_t(copies[2 * blockIdx.x + 1]) * nHeads + h) * units;
    for (int i = threadIdx.x; i < units; i += blockDim.x) {
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
        static_cast<const uint16_t*>(src.k), static_cast<const uint16_t*>(src.v), src.nKvHeads, nHeads,
        src.blockSize * src.rowBytes() / 2, copies, static_cast<uint16_t*>(dstK), static_cast<uint16_t*>(dstV));
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

#include "kernels/cuda/dequantize.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/quant_blocks.h"

namespace pagoda::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 65535;

// Each thread writes 8 consecutive elements (one 16-byte store) per
// iteration of a grid-stride loop over the rows' 8-element groups.
// w: [rows][cols / kElements] blocks, from row rowBegin; out: [n][cols] f16
template <DType Q>
__global__ void __launch_bounds__(kThreads)
    dequantizeKernel(const typename QuantTraits<Q>::Block* w, int64_t cols, int64_t rowBegin, int64_t groups,
                     uint4* out) {
    constexpr int kChunks = QuantTraits<Q>::kElements / 32;
    const int64_t groupsPerRow = cols / 8;
    const int64_t blocksPerRow = cols / QuantTraits<Q>::kElements;
    for (int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; g < groups;
         g += int64_t(gridDim.x) * blockDim.x) {
        const int64_t row = rowBegin + g / groupsPerRow;
        const int64_t group = g % groupsPerRow;  // elements 8 group .. 8 group + 7 of the row
        const int64_t chunk = group / 4;
        float v[8];
        QuantTraits<Q>::decode8(w[row * blocksPerRow + chunk / kChunks], int(chunk % kChunks), int(group % 4), v);
        alignas(16) __half2 h[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
        out[g] = *reinterpret_cast<const uint4*>(h);
    }
}

}  // namespace

Status dequantizeToF16(cudaStream_t stream, const DeviceWeight& w, int64_t rowBegin, int64_t rowEnd, void* out) {
    if (!isCudaQuantType(w.type)) {
        return Status::error("dequantizeToF16: weight type " + std::string(dtypeName(w.type)) + " is not block-quantized");
    }
    const int64_t block = dtypeInfo(w.type).blockElements;
    if (w.cols < block || w.cols % block != 0 || rowBegin < 0 || rowEnd > w.rows || rowBegin > rowEnd) {
        return Status::error("dequantizeToF16: rows [" + std::to_string(rowBegin) + ", " + std::to_string(rowEnd) +
                             ") of a " + std::to_string(w.rows) + " x " + std::to_string(w.cols) + " " +
                             std::string(dtypeName(w.type)) + " matrix");
    }
    if (!quantBlocksAligned(w)) {
        return Status::error("dequantizeToF16: " + std::string(dtypeName(w.type)) + " blocks misaligned");
    }
    if (reinterpret_cast<uintptr_t>(out) % 16 != 0) return Status::error("dequantizeToF16: out is not 16-byte aligned");
    const int64_t groups = (rowEnd - rowBegin) * (w.cols / 8);
    if (groups == 0) return {};
    const unsigned grid = unsigned(std::min(ceilDiv(groups, kThreads), kMaxGrid));
    visitQuantType(w.type, [&](auto q) {
        constexpr DType Q = decltype(q)::value;
        dequantizeKernel<Q><<<grid, kThreads, 0, stream>>>(static_cast<const typename QuantTraits<Q>::Block*>(w.data),
                                                           w.cols, rowBegin, groups, static_cast<uint4*>(out));
    });
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

Status dequantizedGemm(const BlasHandles& handles, cudaStream_t stream, const DeviceWeight& w, const float* x,
                       float* y, int64_t nTokens, int64_t panelRows, void* panel, float* product, void* gemmScratch) {
    if (panelRows < 1) return Status::error("dequantizedGemm: panels of " + std::to_string(panelRows) + " rows");
    const bool panels = panelRows < w.rows;
    for (int64_t r0 = 0; r0 < w.rows; r0 += panelRows) {
        const int64_t n = std::min(panelRows, w.rows - r0);
        PAGODA_CUDA_RETURN_IF_ERROR(dequantizeToF16(stream, w, r0, r0 + n, panel));
        PAGODA_CUDA_RETURN_IF_ERROR(
            gemm(handles, stream, {DType::F16, panel, n, w.cols}, x, panels ? product : y, nTokens, gemmScratch));
        if (panels) {
            PAGODA_CUDA_CHECK(cudaMemcpy2DAsync(y + r0, size_t(w.rows) * sizeof(float), product,
                                                size_t(n) * sizeof(float), size_t(n) * sizeof(float), size_t(nTokens),
                                                cudaMemcpyDeviceToDevice, stream));
        }
    }
    return {};
}

}  // namespace pagoda::cuda

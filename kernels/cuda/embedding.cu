#include "kernels/cuda/embedding.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/quant_blocks.h"

namespace pagoda::cuda {
namespace {

// grid: n (one block per id); table: [rows][rowBytes]; out: [n][cols]
__global__ void embedRowsKernel(DType type, const uint8_t* table, size_t rowBytes, int64_t rows, int64_t cols,
                                const int32_t* ids, float* out) {
    awaitPrecedingKernel();
    const int32_t id = ids[blockIdx.x];
    float* o = out + int64_t(blockIdx.x) * cols;
    const bool valid = id >= 0 && id < rows;
    const uint8_t* row = table + (valid ? size_t(id) * rowBytes : 0);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = valid ? dequantElement(type, row, c) : 0.0f;
}

}  // namespace

Status embedRows(const LaunchStream& stream, const DeviceWeight& table, const int32_t* ids, int n, float* out) {
    if (!isCudaWeightType(table.type)) {
        return Status::error("embedRows: table type " + std::string(dtypeName(table.type)) + " has no CUDA kernel");
    }
    const int64_t block = dtypeInfo(table.type).blockElements;
    if (n < 0 || table.rows < 1 || table.cols < 1 || table.cols % block != 0) {
        return Status::error("embedRows: " + std::to_string(n) + " ids into a " + std::to_string(table.rows) + " x " +
                             std::to_string(table.cols) + " " + std::string(dtypeName(table.type)) +
                             " table (columns must be a multiple of " + std::to_string(block) + ")");
    }
    if (!quantBlocksAligned(table)) {
        return Status::error("embedRows: " + std::string(dtypeName(table.type)) + " blocks misaligned");
    }
    if (n == 0) return {};
    launchKernel(stream, embedRowsKernel, unsigned(n), 256, 0, table.type, static_cast<const uint8_t*>(table.data),
                                            rowBytes(table.type, size_t(table.cols)), table.rows, table.cols, ids, out);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

#include "kernels/cuda/rope.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kv_store.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rope_kv_kernels.cuh"

namespace pagoda::cuda {

namespace {

Status checkShape(const char* op, int nTokens, int nHeads, const RopeShape& shape) {
    if (nTokens < 0 || nHeads < 1 || shape.headDim < 2 || shape.ropeDim < 2 || shape.ropeDim % 2 != 0 ||
        shape.ropeDim > shape.headDim) {
        return Status::error(std::string(op) + ": " + std::to_string(nTokens) + " tokens of " +
                             std::to_string(nHeads) + " heads, head dim " + std::to_string(shape.headDim) +
                             ", rope dim " + std::to_string(shape.ropeDim));
    }
    return {};
}

}  // namespace

Status rope(const LaunchStream& stream, float* x, int nTokens, int nHeads, const int32_t* positions,
            const RopeShape& shape) {
    PAGODA_CUDA_RETURN_IF_ERROR(checkShape("rope", nTokens, nHeads, shape));
    if (nTokens == 0) return {};
    const dim3 grid(unsigned(nTokens), unsigned((nHeads * (shape.ropeDim / 2) + pos::kThreads - 1) / pos::kThreads));
    launchKernel(stream, pos::ropeKernel, grid, pos::kThreads, 0, x, nHeads, shape, positions);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

Status storeKv(const LaunchStream& stream, const DeviceKvView& pools, void* kPool, void* vPool, const float* k,
               const float* v, const int32_t* slots, int nTokens) {
    if (nTokens < 0 || pools.nKvHeads < 1 || pools.blockSize < 1 || pools.headDim < 1 ||
        (pools.q8 && pools.headDim % kKvQ8Block != 0)) {
        return Status::error("storeKv: " + std::to_string(nTokens) + " tokens, " + std::to_string(pools.nKvHeads) +
                             " KV heads, block size " + std::to_string(pools.blockSize) + ", head dim " +
                             std::to_string(pools.headDim) + (pools.q8 ? " (q8_0 rows)" : ""));
    }
    if (nTokens == 0) return {};
    launchKernel(stream, pos::storeKvKernel, unsigned(nTokens), pos::kStoreThreads, 0, kPool, vPool, pools.q8, k, v,
                 slots, pools.nKvHeads, pools.blockSize, pools.headDim);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

Status ropeStoreKv(const LaunchStream& stream, float* q, float* k, const float* v, int nTokens, int nHeads,
                   const int32_t* positions, const int32_t* slots, const RopeShape& shape, const DeviceKvView& pools,
                   void* kPool, void* vPool) {
    PAGODA_CUDA_RETURN_IF_ERROR(checkShape("ropeStoreKv", nTokens, nHeads, shape));
    if (shape.ropeDim / 2 > pos::kMaxPairs || shape.headDim != pools.headDim || pools.nKvHeads < 1 ||
        pools.blockSize < 1 || (pools.q8 && pools.headDim % kKvQ8Block != 0)) {
        return Status::error("ropeStoreKv: rope dim " + std::to_string(shape.ropeDim) + " (at most " +
                             std::to_string(2 * pos::kMaxPairs) + ") of heads of " + std::to_string(shape.headDim) +
                             " into pools of " + std::to_string(pools.nKvHeads) + " KV heads of " +
                             std::to_string(pools.headDim) + ", blocks of " + std::to_string(pools.blockSize));
    }
    if (nTokens == 0) return {};
    launchKernel(stream, pos::ropeStoreKvKernel, unsigned(nTokens), pos::kStoreThreads, 0, q, k, v, nHeads,
                 pools.nKvHeads, shape, positions, slots, kPool, vPool, pools.q8, pools.blockSize);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

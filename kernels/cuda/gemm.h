#pragma once
// Products with F32, F16 and BF16 weight matrices through cuBLAS, FP32
// accumulation: F16/BF16 weights with cuBLASLt (activations converted to the
// weight type first, output f32), F32 weights with cublasSgemm (no TF32).

#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// cuBLASLt's heuristic assumes 256-byte aligned matrices unless told
// otherwise (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES, default
// 256, cublasLt.h), and the algorithm it picks may need that alignment.
// The engine's activation views are only 64-byte aligned, so each plan is made for the
// alignment of the buffers it runs on.
struct GemmAlignment {
    uint32_t w = 256;  // the weight matrix
    uint32_t x = 256;  // the converted activations
    uint32_t y = 256;  // the output
};

// The largest power of two up to 256 that divides the address.
uint32_t gemmPointerAlignment(const void* p);

// cuBLASLt descriptors and the algorithm its heuristic chose, per problem
// shape and buffer alignment; building a plan costs tens of microseconds, so plans are kept.
class GemmPlanCache {
public:
    struct Plan;
    GemmPlanCache();
    ~GemmPlanCache();
    GemmPlanCache(const GemmPlanCache&) = delete;
    GemmPlanCache& operator=(const GemmPlanCache&) = delete;

    // The plan for y[n][m] = x[n][k] * W[m][k]^T with W of `type`, for
    // buffers with the given alignments (gemmPointerAlignment).
    StatusOr<const Plan*> plan(cublasLtHandle_t lt, DType type, int64_t m, int64_t n, int64_t k,
                               const GemmAlignment& alignment, size_t workspaceBytes);

private:
    std::map<std::tuple<DType, int64_t, int64_t, int64_t, uint32_t, uint32_t, uint32_t>, std::unique_ptr<Plan>>
        m_plans;
};

// What the GEMM launcher needs from the device context.
struct BlasHandles {
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;  // device, for cuBLAS and cuBLASLt (graph capture needs our own)
    size_t workspaceBytes = 0;
    GemmPlanCache* plans = nullptr;
};

// Bytes of scratch gemm() needs: x converted to the weight's 16-bit type.
size_t gemmScratchBytes(const DeviceWeight& w, int64_t nTokens);

// y[t][r] = sum_c W[r][c] * x[t][c]. w: F32, F16 or BF16; x: device
// [nTokens][w.cols] f32; y: device [nTokens][w.rows] f32 (not aliasing x);
// scratch: device, gemmScratchBytes(w, nTokens) bytes.
Status gemm(const BlasHandles& handles, cudaStream_t stream, const DeviceWeight& w, const float* x, float* y,
            int64_t nTokens, void* scratch);

// gemm() in two steps, so that products with one input convert it once:
// x rounded to the 16-bit type of w (F16 or BF16) into scratch
// (gemmScratchBytes(w, nTokens) bytes), then the product of F16/BF16
// weights with activations so converted.
Status convertActivations(cudaStream_t stream, const DeviceWeight& w, const float* x, int64_t nTokens,
                          void* scratch);
Status gemmConverted(const BlasHandles& handles, cudaStream_t stream, const DeviceWeight& w, const void* xConverted,
                     float* y, int64_t nTokens);

}  // namespace pagoda::cuda

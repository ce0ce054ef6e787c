#include "kernels/cuda/gemm.h"

#include <cublas_v2.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda {
namespace {

// out[i] = x[i] rounded to the 16-bit type. x: [n] f32; out: [n]
template <class T>
__global__ void convertKernel(const float* x, T* out, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        if constexpr (std::is_same_v<T, __half>) {
            out[i] = __float2half_rn(x[i]);
        } else {
            out[i] = __float2bfloat16_rn(x[i]);
        }
    }
}

struct MatmulDescDeleter {
    void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
    void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct PreferenceDeleter {
    void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};

}  // namespace

struct GemmPlanCache::Plan {
    std::unique_ptr<cublasLtMatmulDescOpaque_t, MatmulDescDeleter> desc;
    std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter> a;  // W: k x m column-major (row-major [m][k])
    std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter> b;  // x: k x n column-major
    std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter> c;  // y: m x n column-major
    cublasLtMatmulAlgo_t algo{};
};

GemmPlanCache::GemmPlanCache() = default;
GemmPlanCache::~GemmPlanCache() = default;

uint32_t gemmPointerAlignment(const void* p) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(p);
    uint32_t alignment = 256;
    while (alignment > 1 && address % alignment != 0) alignment /= 2;
    return alignment;
}

StatusOr<const GemmPlanCache::Plan*> GemmPlanCache::plan(cublasLtHandle_t lt, DType type, int64_t m, int64_t n,
                                                         int64_t k, const GemmAlignment& alignment,
                                                         size_t workspaceBytes) {
    const auto key = std::make_tuple(type, m, n, k, alignment.w, alignment.x, alignment.y);
    if (auto found = m_plans.find(key); found != m_plans.end()) return static_cast<const Plan*>(found->second.get());
    // Prefill chunk sizes vary; keep the cache from growing without bound.
    constexpr size_t kMaxPlans = 4096;
    if (m_plans.size() >= kMaxPlans) m_plans.clear();

    const cudaDataType_t abType = type == DType::F16 ? CUDA_R_16F : CUDA_R_16BF;
    auto plan = std::make_unique<Plan>();
    cublasLtMatmulDesc_t desc = nullptr;
    PAGODA_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    plan->desc.reset(desc);
    const cublasOperation_t transA = CUBLAS_OP_T;
    const cublasOperation_t transB = CUBLAS_OP_N;
    PAGODA_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof transA));
    PAGODA_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof transB));
    cublasLtMatrixLayout_t layout = nullptr;
    PAGODA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&layout, abType, uint64_t(k), uint64_t(m), k));
    plan->a.reset(layout);
    PAGODA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&layout, abType, uint64_t(k), uint64_t(n), k));
    plan->b.reset(layout);
    PAGODA_CUDA_CHECK(cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, uint64_t(m), uint64_t(n), m));
    plan->c.reset(layout);

    cublasLtMatmulPreference_t preference = nullptr;
    PAGODA_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&preference));
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PreferenceDeleter> preferenceOwner(preference);
    const uint64_t maxWorkspace = workspaceBytes;
    PAGODA_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &maxWorkspace, sizeof maxWorkspace));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment.w},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment.x},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment.y},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment.y},
    };
    for (const auto& [attribute, bytes] : alignments) {
        PAGODA_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof bytes));
    }
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    PAGODA_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, plan->a.get(), plan->b.get(), plan->c.get(),
                                                     plan->c.get(), preference, 1, &result, &found));
    if (found == 0) {
        return Status::error("cuBLASLt has no algorithm for a " + std::string(dtypeName(type)) + " GEMM of m " +
                             std::to_string(m) + ", n " + std::to_string(n) + ", k " + std::to_string(k));
    }
    plan->algo = result.algo;
    const Plan* raw = plan.get();
    m_plans.emplace(key, std::move(plan));
    return raw;
}

size_t gemmScratchBytes(const DeviceWeight& w, int64_t nTokens) {
    return w.type == DType::F32 ? 0 : size_t(nTokens) * size_t(w.cols) * 2;
}

Status convertActivations(cudaStream_t stream, const DeviceWeight& w, const float* x, int64_t nTokens,
                          void* scratch) {
    if (w.type != DType::F16 && w.type != DType::BF16) {
        return Status::error("convertActivations: weight type " + std::string(dtypeName(w.type)) + " (f16 or bf16)");
    }
    const int64_t n = nTokens * w.cols;
    if (n <= 0) return {};
    const int blocks = int(std::min<int64_t>(ceilDiv(n, 256), 65535));
    if (w.type == DType::F16) {
        convertKernel<<<blocks, 256, 0, stream>>>(x, static_cast<__half*>(scratch), n);
    } else {
        convertKernel<<<blocks, 256, 0, stream>>>(x, static_cast<__nv_bfloat16*>(scratch), n);
    }
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

Status gemmConverted(const BlasHandles& handles, cudaStream_t stream, const DeviceWeight& w, const void* xConverted,
                     float* y, int64_t nTokens) {
    if (w.type != DType::F16 && w.type != DType::BF16) {
        return Status::error("gemm: weight type " + std::string(dtypeName(w.type)) + " on converted activations");
    }
    if (nTokens < 0 || w.rows < 1 || w.cols < 1) {
        return Status::error("gemm: " + std::to_string(nTokens) + " tokens through a " + std::to_string(w.rows) +
                             " x " + std::to_string(w.cols) + " matrix");
    }
    if (nTokens == 0) return {};
    const float alpha = 1.0f;
    const float beta = 0.0f;
    PAGODA_CUDA_ASSIGN_OR_RETURN(const GemmPlanCache::Plan* plan,
                                 handles.plans->plan(handles.lt, w.type, w.rows, nTokens, w.cols,
                                                     GemmAlignment{gemmPointerAlignment(w.data),
                                                                   gemmPointerAlignment(xConverted),
                                                                   gemmPointerAlignment(y)},
                                                     handles.workspaceBytes));
    PAGODA_CUDA_CHECK(cublasLtMatmul(handles.lt, plan->desc.get(), &alpha, w.data, plan->a.get(), xConverted,
                                     plan->b.get(), &beta, y, plan->c.get(), y, plan->c.get(), &plan->algo,
                                     handles.workspace, handles.workspaceBytes, stream));
    return {};
}

Status gemm(const BlasHandles& handles, cudaStream_t stream, const DeviceWeight& w, const float* x, float* y,
            int64_t nTokens, void* scratch) {
    if (w.type != DType::F32 && w.type != DType::F16 && w.type != DType::BF16) {
        return Status::error("gemm: weight type " + std::string(dtypeName(w.type)) + " (f32, f16 or bf16)");
    }
    if (nTokens < 0 || w.rows < 1 || w.cols < 1) {
        return Status::error("gemm: " + std::to_string(nTokens) + " tokens through a " + std::to_string(w.rows) +
                             " x " + std::to_string(w.cols) + " matrix");
    }
    if (nTokens == 0) return {};
    if (w.type == DType::F32) {
        const float alpha = 1.0f;
        const float beta = 0.0f;
        // cublasSetStream resets the workspace to cuBLAS's own pool, which
        // graph capture cannot use: set ours after it.
        PAGODA_CUDA_CHECK(cublasSetStream(handles.blas, stream));
        PAGODA_CUDA_CHECK(cublasSetWorkspace(handles.blas, handles.workspace, handles.workspaceBytes));
        PAGODA_CUDA_CHECK(cublasSgemm(handles.blas, CUBLAS_OP_T, CUBLAS_OP_N, int(w.rows), int(nTokens), int(w.cols),
                                      &alpha, static_cast<const float*>(w.data), int(w.cols), x, int(w.cols), &beta,
                                      y, int(w.rows)));
        return {};
    }
    PAGODA_CUDA_RETURN_IF_ERROR(convertActivations(stream, w, x, nTokens, scratch));
    return gemmConverted(handles, stream, w, scratch, y, nTokens);
}

}  // namespace pagoda::cuda

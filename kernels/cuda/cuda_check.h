#pragma once
// The one checking macro every CUDA runtime, cuBLAS and cuBLASLt call goes
// through: a failure becomes a Status naming the statement, the error and
// where it happened, returned from the enclosing function.

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// "cudaMalloc(&p, n) failed: cudaErrorMemoryAllocation (2): out of memory
// [kernels/cuda/memory_pool.cpp:42]"; ok for cudaSuccess.
Status checkCall(cudaError_t result, const char* statement, const char* file, int line);
// cuBLAS and cuBLASLt both report cublasStatus_t.
Status checkCall(cublasStatus_t result, const char* statement, const char* file, int line);

// The path from the project root ("kernels/cuda/rope.cu") when `file` is
// inside it, else `file` unchanged.
const char* projectRelativePath(const char* file);

}  // namespace pagoda::cuda

#define PAGODA_CUDA_CHECK(call) \
    PAGODA_CUDA_RETURN_IF_ERROR(::pagoda::cuda::checkCall((call), #call, __FILE__, __LINE__))

#include "kernels/cuda/rms_norm.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rms_norm_kernel.cuh"

namespace pagoda::cuda {
namespace {

Status checkShape(const char* op, int64_t nRows, int64_t n, float eps) {
    if (nRows < 0 || nRows > 2147483647 || n < 1 || !(eps >= 0.0f)) {
        return Status::error(std::string(op) + ": " + std::to_string(nRows) + " rows of " + std::to_string(n) +
                             ", eps " + std::to_string(eps));
    }
    return {};
}

}  // namespace

Status rmsNorm(const LaunchStream& stream, const float* x, const float* weight, float* y, int64_t nRows, int64_t n,
               float eps) {
    PAGODA_CUDA_RETURN_IF_ERROR(checkShape("rmsNorm", nRows, n, eps));
    if (nRows == 0) return {};
    launchKernel(stream, norm::rmsNormKernel, unsigned(nRows), norm::kThreads, 0, x, weight, y, n, eps);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

Status addRmsNorm(const LaunchStream& stream, float* x, const float* delta, const float* weight, float* y,
                  int64_t nRows, int64_t n, float eps) {
    PAGODA_CUDA_RETURN_IF_ERROR(checkShape("addRmsNorm", nRows, n, eps));
    if (nRows == 0) return {};
    launchKernel(stream, norm::addRmsNormKernel, unsigned(nRows), norm::kThreads, 0, x, delta, weight, y, n, eps);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

// The RMSNorm kernels' own source compiled as host C++: cuda_shim.h first,
// then the kernel header (see decode_kernel_host.cpp).
#include "tests/cuda/emulation/cuda_shim.h"

#include "kernels/cuda/rms_norm_kernel.cuh"

#if !defined(PAGODA_EMULATION_SHADOW_CUDA_FP16)
#error "tests/cuda/emulation/shadow must come before CUDA's include directory on the include path"
#endif

#include "tests/cuda/emulation/norm_kernel_host.h"

namespace pagoda::cuda::emulation {
namespace {

LaunchConfig rowPerCta(LaunchConfig config, int64_t nRows) {
    config.gridX = unsigned(nRows);
    config.gridY = 1;
    config.gridZ = 1;
    config.threads = norm::kThreads;
    return config;
}

}  // namespace

Findings runRmsNormKernel(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps,
                          LaunchConfig config) {
    return launch(rowPerCta(config, nRows), [&] { norm::rmsNormKernel(x, weight, y, n, eps); });
}

Findings runAddRmsNormKernel(float* x, const float* delta, const float* weight, float* y, int64_t nRows, int64_t n,
                             float eps, LaunchConfig config) {
    return launch(rowPerCta(config, nRows), [&] { norm::addRmsNormKernel(x, delta, weight, y, n, eps); });
}

}  // namespace pagoda::cuda::emulation

// The RoPE and K/V store kernels' own source compiled as host C++:
// cuda_shim.h first, then the kernel header (see decode_kernel_host.cpp).
#include "tests/cuda/emulation/cuda_shim.h"

#include "kernels/cuda/rope_kv_kernels.cuh"

#if !defined(PAGODA_EMULATION_SHADOW_CUDA_FP16)
#error "tests/cuda/emulation/shadow must come before CUDA's include directory on the include path"
#endif

#include "tests/cuda/emulation/rope_kernel_host.h"

namespace pagoda::cuda::emulation {
namespace {

RopeShape shapeOf(const RopeGeometry& g) {
    return {g.headDim, g.ropeDim, float(g.base), g.neox, g.freqFactors, g.scaling};
}

}  // namespace

Findings runRopeKernel(float* x, int nTokens, int nHeads, const RopeGeometry& g, const int32_t* positions,
                       LaunchConfig config) {
    config.gridX = unsigned(nTokens);
    config.gridY = unsigned((nHeads * (g.ropeDim / 2) + pos::kThreads - 1) / pos::kThreads);
    config.gridZ = 1;
    config.threads = pos::kThreads;
    return launch(config, [&] { pos::ropeKernel(x, nHeads, shapeOf(g), positions); });
}

Findings runStoreKvKernel(void* kPool, void* vPool, const float* k, const float* v, const int32_t* slots,
                          int nTokens, const RopeGeometry& g, LaunchConfig config) {
    config.gridX = unsigned(nTokens);
    config.gridY = 1;
    config.gridZ = 1;
    config.threads = pos::kStoreThreads;
    return launch(config, [&] {
        pos::storeKvKernel(kPool, vPool, g.q8, k, v, slots, g.nKvHeads, g.blockSize, g.headDim);
    });
}

Findings runRopeStoreKvKernel(float* q, float* k, const float* v, const int32_t* positions, const int32_t* slots,
                              void* kPool, void* vPool, int nTokens, const RopeGeometry& g,
                              LaunchConfig config) {
    config.gridX = unsigned(nTokens);
    config.gridY = 1;
    config.gridZ = 1;
    config.threads = pos::kStoreThreads;
    return launch(config, [&] {
        pos::ropeStoreKvKernel(q, k, v, g.nHeads, g.nKvHeads, shapeOf(g), positions, slots, kPool, vPool, g.q8,
                               g.blockSize);
    });
}

}  // namespace pagoda::cuda::emulation

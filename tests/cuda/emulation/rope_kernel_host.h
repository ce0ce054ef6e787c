#pragma once
// The RoPE and K/V store kernels of kernels/cuda/rope_kv_kernels.cuh,
// compiled as host C++ and run by the CTA emulator in the launch shapes
// rope_kv.cu gives them.

#include <cstdint>

#include "kernels/rope_scaling.h"
#include "tests/cuda/emulation/cta_emulator.h"

namespace pagoda::cuda::emulation {

struct RopeGeometry {
    int nHeads = 0;    // of q
    int nKvHeads = 0;  // of k and v
    int headDim = 0;
    int ropeDim = 0;
    double base = 10000.0;
    bool neox = false;
    int blockSize = 0;  // of the pools, [numBlocks][nKvHeads][blockSize] rows of headDim, f16 or Q8_0
    const float* freqFactors = nullptr;  // [ropeDim / 2] or null
    RopeScaling scaling;                 // YaRN when extFactor is 1
    bool q8 = false;                     // Q8_0 rows in the pools
};

// ropeKernel on x ([nTokens][nHeads][headDim]).
Findings runRopeKernel(float* x, int nTokens, int nHeads, const RopeGeometry& g, const int32_t* positions,
                       LaunchConfig config);

// storeKvKernel: k and v rows into the pools at slots.
Findings runStoreKvKernel(void* kPool, void* vPool, const float* k, const float* v, const int32_t* slots,
                          int nTokens, const RopeGeometry& g, LaunchConfig config);

// ropeStoreKvKernel: q and k rotated, then k and v stored.
Findings runRopeStoreKvKernel(float* q, float* k, const float* v, const int32_t* positions, const int32_t* slots,
                              void* kPool, void* vPool, int nTokens, const RopeGeometry& g,
                              LaunchConfig config);

}  // namespace pagoda::cuda::emulation

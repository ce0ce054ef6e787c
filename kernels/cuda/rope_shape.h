#pragma once
// The geometry of rotary position embedding, shared by the RoPE launcher
// and the backend interface.

#include "kernels/rope_scaling.h"

namespace pagoda::cuda {

struct RopeShape {
    int headDim = 0;
    int ropeDim = 0;        // leading dims of each head that rotate (even, <= headDim)
    float base = 10000.0f;  // theta_i = pos * base^(-2i/ropeDim)
    bool neox = false;      // pairs (i, i + ropeDim/2) rather than (2i, 2i+1)
    // [ropeDim / 2] or null: theta_i is divided by freqFactors[i]. Device
    // memory at the kernels; DeviceBackend::rope and ropeStoreKv take the
    // host address of an uploaded vector.
    const float* freqFactors = nullptr;
    RopeScaling scaling;  // context scaling (kernels/rope_scaling.h)
};

}  // namespace pagoda::cuda

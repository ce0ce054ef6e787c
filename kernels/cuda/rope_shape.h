#pragma once
// The geometry of rotary position embedding, shared by the RoPE launcher
// and the backend interface.

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
    // Context scaling, as cpu::RopeParams (kernels/cpu/elementwise.h):
    // theta interpolated by freqScale, YaRN's unscaled theta mixed back in
    // by the ramp between corrLow and corrHigh (extFactor 1), cos and sin
    // scaled by mscale.
    float freqScale = 1.0f;
    float extFactor = 0.0f;
    float corrLow = 0.0f;
    float corrHigh = 0.0f;
    float mscale = 1.0f;
};

}  // namespace pagoda::cuda

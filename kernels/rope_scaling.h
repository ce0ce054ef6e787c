#pragma once
// RoPE's context scaling (the GGUF's rope.scaling.*, as llama.cpp's
// rope_yarn applies it), one struct for the CPU's cpu::RopeParams and the
// CUDA kernels' RopeShape: pair i's angle theta is interpolated to
// freqScale * theta (linear and YaRN: 1 / factor); with extFactor 1 (YaRN)
// the unscaled theta is mixed back in by a ramp, wholly for the pairs up to
// corrLow and not at all from corrHigh on; cos and sin are scaled by
// mscale. Plain C++17: the CUDA sources include it.

namespace pagoda {

struct RopeScaling {
    float freqScale = 1.0f;
    float extFactor = 0.0f;
    float corrLow = 0.0f;
    float corrHigh = 0.0f;
    float mscale = 1.0f;
};

}  // namespace pagoda

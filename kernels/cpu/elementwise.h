#pragma once
// Row-wise transformer primitives on f32 activations.

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu_context.h"
#include "kernels/rope_scaling.h"

namespace pagoda::cpu {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, for nRows rows of n.
// x: [nRows][n], weight: [n], y: [nRows][n] (y may alias x).
void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps);

enum class RopeStyle {
    Normal,  // llama: pairs (x[2i], x[2i+1])
    NeoX,    // qwen2/neox: pairs (x[i], x[i + ropeDim/2])
};

struct RopeParams {
    int headDim = 0;
    int ropeDim = 0;       // leading dims of each head that rotate (<= headDim, even)
    float base = 10000.0f; // theta_i = pos * base^(-2i/ropeDim)
    RopeStyle style = RopeStyle::Normal;
    // [ropeDim / 2] or null: theta_i is divided by freqFactors[i] (the
    // GGUF's rope_freqs.weight: Llama 3.1 and later's frequency scaling,
    // llama.cpp's "freq_factors").
    const float* freqFactors = nullptr;
    RopeScaling scaling;  // context scaling (kernels/rope_scaling.h)
};

// YaRN's ramp for pair i: 1 below corrLow, 0 above corrHigh, linear between.
inline double yarnRamp(double corrLow, double corrHigh, int pair) {
    const double y = (pair - corrLow) / std::max(0.001, corrHigh - corrLow);
    return 1.0 - std::min(1.0, std::max(0.0, y));
}

// Pair i's angle under `scaling`, from its unscaled angle.
inline double scaledRopeTheta(const RopeScaling& scaling, int pair, double theta) {
    const double interpolated = double(scaling.freqScale) * theta;
    if (scaling.extFactor == 0.0f) return interpolated;
    const double mix = yarnRamp(scaling.corrLow, scaling.corrHigh, pair) * double(scaling.extFactor);
    return interpolated * (1.0 - mix) + theta * mix;
}

// Rotates nHeads heads of one token in place. x: [nHeads][headDim].
void rope(float* x, int nHeads, int position, const RopeParams& params);

// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// out[i] = gelu(gate[i]) * up[i] with GELU's tanh form (Gemma's
// gelu_pytorch_tanh, ggml's gelu): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715
// x^3))), computed as x / (1 + exp(-2 sqrt(2/pi) (x + 0.044715 x^3))).
// out may alias gate or up.
void geglu(const float* gate, const float* up, float* out, int64_t n);

// x[i] = cap * tanh(x[i] / cap) (Gemma 2's logit soft-capping), as
// cap * (1 - 2 / (1 + exp(2 x[i] / cap))): within about 1e-7 * cap of it.
void softcap(float* x, int64_t n, float cap);

// In-place numerically stable softmax of x[n].
void softmax(float* x, int64_t n);

// y[i] += x[i]
void addInPlace(float* y, const float* x, int64_t n);

}  // namespace pagoda::cpu

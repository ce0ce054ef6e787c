#pragma once
// Functions of one value that the device kernels compute and the host
// tests check as the very same code (host_device.h): Gemma's GELU-gated
// feed-forward and Gemma 2's soft-capping.

#include <cmath>

#include "kernels/cuda/host_device.h"

namespace pagoda::cuda {

// gelu(g) * u with GELU's tanh form (gelu_pytorch_tanh), as cpu::geglu
// computes it: 0.5 (1 + tanh z) = 1 / (1 + exp(-2z)), z = sqrt(2/pi)
// (g + 0.044715 g^3).
PAGODA_HD float gegluValue(float g, float u) {
    const float z = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return g * u / (1.0f + expf(-2.0f * z));
}

// cap * tanh(x / cap): a score or logit bent smoothly into (-cap, cap).
PAGODA_HD float softcapValue(float x, float cap) { return cap * tanhf(x / cap); }

}  // namespace pagoda::cuda

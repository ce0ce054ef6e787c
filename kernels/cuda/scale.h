#pragma once
// Activations changed in place, value by value: a constant factor (Gemma's
// embedding scale) and soft-capping (Gemma 2's logits).

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// x[i] *= s; device [n].
Status scale(const LaunchStream& stream, float* x, float s, int64_t n);

// x[i] = cap * tanh(x[i] / cap) (softcapValue in activations.h); device
// [n], cap > 0.
Status softcap(const LaunchStream& stream, float* x, float cap, int64_t n);

}  // namespace pagoda::cuda

#pragma once
// Host shadow of kernels/cuda/device_common.cuh for the emulated prefill
// kernel: the constants it uses (the real header's reductions need CUDA's
// own headers). PAGODA_EMULATION_SHADOW_DEVICE_COMMON lets the kernel's
// translation unit check that this file, not the real one, was found.

#define PAGODA_EMULATION_SHADOW_DEVICE_COMMON 1

namespace pagoda::cuda {

constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

}  // namespace pagoda::cuda

#pragma once
// Stands in for CUDA's cuda_fp16.h, which kernels/cuda/device_common.cuh
// includes, in the emulated kernels' translation units: cuda_shim.h defines
// what they use of it (__half, __half2 and their conversions).
// PAGODA_EMULATION_SHADOW_CUDA_FP16 lets such a unit check that this file,
// not CUDA's, was found.

#define PAGODA_EMULATION_SHADOW_CUDA_FP16 1

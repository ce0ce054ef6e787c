#pragma once
// Stands in for CUDA's cuda_bf16.h, which kernels/cuda/device_common.cuh
// includes, in the emulated kernels' translation units; the emulated
// kernels use no bfloat16.

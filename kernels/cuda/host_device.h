#pragma once
// Functions that nvcc (device and host passes) and the host compiler both
// build, so that host tests check the very code the kernels run.

#ifdef __CUDACC__
#define PAGODA_HD __host__ __device__ __forceinline__
#else
#define PAGODA_HD inline
#endif

// Where a kernel compiled for the host reads what the device reads as one
// vector: the device faults on a misaligned address, the host does not, so
// the CTA emulator (tests/cuda/emulation/cuda_shim.h, included first)
// defines this to check; elsewhere it is nothing.
#ifndef PAGODA_EXPECT_ALIGNED
#define PAGODA_EXPECT_ALIGNED(p, bytes) ((void)0)
#endif

// "#pragma unroll" for the device pass only (host compilers warn about it).
#ifdef __CUDA_ARCH__
#define PAGODA_UNROLL _Pragma("unroll")
#else
#define PAGODA_UNROLL
#endif

#pragma once
// Functions that nvcc (device and host passes) and the host compiler both
// build, so that host tests check the very code the kernels run.

#ifdef __CUDACC__
#define PAGODA_HD __host__ __device__ __forceinline__
#else
#define PAGODA_HD inline
#endif

// "#pragma unroll" for the device pass only (host compilers warn about it).
#ifdef __CUDA_ARCH__
#define PAGODA_UNROLL _Pragma("unroll")
#else
#define PAGODA_UNROLL
#endif

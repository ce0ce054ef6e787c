#pragma once
/* The C entry points of the CUDA module, libpagoda_cuda.so, which the
 * engine dlopen()s at run time (engine/backend/cuda_loader.h): the module
 * links cuBLAS and the CUDA runtime, the engine does not, so the programs
 * start where CUDA is absent. Plain C: the loader resolves these by name. */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PAGODA_CUDA_ABI_VERSION 15
#define PAGODA_CUDA_MODULE_FILE "libpagoda_cuda.so"

typedef struct PagodaCudaProbe {
    int available;             /* 1: device `deviceIndex` is usable */
    char reason[512];          /* why not, when !available */
    int deviceIndex;
    int deviceCount;
    char deviceName[256];
    int ccMajor;
    int ccMinor;
    int smCount;
    unsigned long long totalBytes;
    unsigned long long freeBytes;  /* with PAGODA_CUDA_PROBE_FREE_MEMORY; else 0 */
    int freeKnown;                 /* 1: freeBytes is the device's (cudaMemGetInfo) */
    int driverVersion;         /* 13000 = CUDA 13.0; 0: no driver */
    int runtimeVersion;
} PagodaCudaProbe;

/* An opaque handle; C++ callers see a pagoda::cuda::DeviceBackend
 * (device_backend.h), built with the same compiler as the module. */
typedef struct PagodaCudaBackend PagodaCudaBackend;

/* PAGODA_CUDA_ABI_VERSION of the module. */
typedef int (*PagodaCudaAbiVersionFn)(void);
/* Asks a usable device for its free memory, which needs the device's
 * primary context: the CUDA runtime creates it and keeps it (and some of
 * the device's memory) until the process exits. Without it, a probe
 * touches no device: listing devices leaves the ones not chosen alone. */
#define PAGODA_CUDA_PROBE_FREE_MEMORY 1

/* Fills *out; never fails. flags: 0 or PAGODA_CUDA_PROBE_FREE_MEMORY. */
typedef void (*PagodaCudaProbeFn)(int deviceIndex, int flags, PagodaCudaProbe* out);
/* A backend on device `deviceIndex`, or null with the reason in error. */
typedef PagodaCudaBackend* (*PagodaCudaCreateFn)(int deviceIndex, char* error, size_t errorBytes);
typedef void (*PagodaCudaDestroyFn)(PagodaCudaBackend* backend);

#define PAGODA_CUDA_ABI_VERSION_SYMBOL "pagoda_cuda_abi_version"
#define PAGODA_CUDA_PROBE_SYMBOL "pagoda_cuda_probe"
#define PAGODA_CUDA_CREATE_SYMBOL "pagoda_cuda_create"
#define PAGODA_CUDA_DESTROY_SYMBOL "pagoda_cuda_destroy"

#ifdef __cplusplus
}
#endif

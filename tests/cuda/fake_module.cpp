// Stand-ins for broken CUDA modules in the loader tests. Built twice: with
// PAGODA_FAKE_ABI_VERSION, every entry point of module_api.h but a foreign
// ABI version; without, none of them.

#include "kernels/cuda/module_api.h"

#define PAGODA_FAKE_EXPORT extern "C" __attribute__((visibility("default")))

#ifdef PAGODA_FAKE_ABI_VERSION
PAGODA_FAKE_EXPORT int pagoda_cuda_abi_version(void) { return PAGODA_FAKE_ABI_VERSION; }
PAGODA_FAKE_EXPORT void pagoda_cuda_probe(int, PagodaCudaProbe* out) { *out = PagodaCudaProbe{}; }
PAGODA_FAKE_EXPORT PagodaCudaBackend* pagoda_cuda_create(int, char*, size_t) { return nullptr; }
PAGODA_FAKE_EXPORT void pagoda_cuda_destroy(PagodaCudaBackend*) {}
#else
PAGODA_FAKE_EXPORT int pagoda_fake_module_marker(void) { return 0; }
#endif

// The exported C entry points of libpagoda_cuda.so (module_api.h). The
// module is built with hidden visibility: these are its only symbols.

#include "kernels/cuda/module_api.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>
#include <type_traits>

#include "kernels/cuda/module/cuda_backend.h"
#include "kernels/cuda/probe.h"

#define PAGODA_CUDA_EXPORT __attribute__((visibility("default")))

namespace {

void copyText(const std::string& text, char* out, size_t outBytes) {
    if (out == nullptr || outBytes == 0) return;
    const size_t n = std::min(text.size(), outBytes - 1);
    std::memcpy(out, text.data(), n);
    out[n] = '\0';
}

}  // namespace

extern "C" {

PAGODA_CUDA_EXPORT int pagoda_cuda_abi_version(void) { return PAGODA_CUDA_ABI_VERSION; }

PAGODA_CUDA_EXPORT void pagoda_cuda_probe(int deviceIndex, int flags, PagodaCudaProbe* out) {
    *out = PagodaCudaProbe{};
    const bool freeMemory = (flags & PAGODA_CUDA_PROBE_FREE_MEMORY) != 0;
    const pagoda::cuda::DeviceProbe probe = pagoda::cuda::probeDevice(deviceIndex, freeMemory);
    const pagoda::cuda::DeviceInfo& info = probe.info;
    out->available = probe.available ? 1 : 0;
    copyText(probe.reason, out->reason, sizeof out->reason);
    out->deviceIndex = deviceIndex;
    out->deviceCount = probe.deviceCount;
    copyText(info.name, out->deviceName, sizeof out->deviceName);
    out->ccMajor = info.ccMajor;
    out->ccMinor = info.ccMinor;
    out->smCount = info.smCount;
    out->totalBytes = info.totalBytes;
    out->freeBytes = info.freeBytes;
    out->freeKnown = probe.available && freeMemory ? 1 : 0;
    out->driverVersion = info.driverVersion;
    out->runtimeVersion = info.runtimeVersion;
}

PAGODA_CUDA_EXPORT PagodaCudaBackend* pagoda_cuda_create(int deviceIndex, char* error, size_t errorBytes) {
    try {
        auto backend = pagoda::cuda::CudaBackend::create(deviceIndex);
        if (!backend.ok()) {
            copyText(backend.status().message(), error, errorBytes);
            return nullptr;
        }
        pagoda::cuda::DeviceBackend* base = backend.value().release();
        return reinterpret_cast<PagodaCudaBackend*>(base);
    } catch (const std::exception& e) {
        copyText(std::string("creating the CUDA backend: ") + e.what(), error, errorBytes);
        return nullptr;
    }
}

PAGODA_CUDA_EXPORT void pagoda_cuda_destroy(PagodaCudaBackend* backend) {
    delete reinterpret_cast<pagoda::cuda::DeviceBackend*>(backend);
}

}  // extern "C"

static_assert(std::is_same_v<decltype(&pagoda_cuda_abi_version), PagodaCudaAbiVersionFn>);
static_assert(std::is_same_v<decltype(&pagoda_cuda_probe), PagodaCudaProbeFn>);
static_assert(std::is_same_v<decltype(&pagoda_cuda_create), PagodaCudaCreateFn>);
static_assert(std::is_same_v<decltype(&pagoda_cuda_destroy), PagodaCudaDestroyFn>);

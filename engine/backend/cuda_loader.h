#pragma once
// Finding and loading the CUDA module, libpagoda_cuda.so, at run time. The
// engine never links CUDA: the module does (CUDA runtime, cuBLAS), and is
// dlopen()ed here, so the programs start on machines without CUDA and use
// the GPU where the module, the driver and a device are all present. Every
// way this can fail is a reason string ("library not found (searched:
// ...)", "no NVIDIA driver (cudaErrorInsufficientDriver, error 35)", "no
// CUDA device", "compute capability 7.5 < 8.0 (Tesla T4)"), which the
// caller prints when it falls back to the CPU (backend_select.h).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/result.h"
#include "kernels/cuda/device_backend.h"
#include "kernels/cuda/module_api.h"

namespace pagoda {

// Where the module is looked for, in order: $PAGODA_CUDA_MODULE alone when
// set; else next to the executable, <exe>/../<libdir>/pagoda (a relocated
// install), <install libdir>/pagoda, and the build tree's output.
std::vector<std::filesystem::path> defaultCudaModulePaths();

struct CudaModuleDeleter;
using DeviceBackendPtr = std::unique_ptr<cuda::DeviceBackend, CudaModuleDeleter>;

// A loaded module; dlclose()d when the last owner lets go (backends it
// created hold a reference).
class CudaModule : public std::enable_shared_from_this<CudaModule> {
public:
    // The first candidate that exists, loaded and checked (its entry points
    // and ABI version); errors say which step failed and why.
    static Result<std::shared_ptr<CudaModule>> load(const std::vector<std::filesystem::path>& candidates);
    ~CudaModule();
    CudaModule(const CudaModule&) = delete;
    CudaModule& operator=(const CudaModule&) = delete;

    const std::filesystem::path& path() const { return m_path; }
    // With `freeMemory`, a usable device's primary context is created to
    // ask it (module_api.h); listings leave it out.
    PagodaCudaProbe probe(int deviceIndex, bool freeMemory = true) const;
    // A backend on the device; the error comes from the module.
    Result<DeviceBackendPtr> createBackend(int deviceIndex);

private:
    CudaModule(std::filesystem::path path, void* handle) : m_path(std::move(path)), m_handle(handle) {}
    friend struct CudaModuleDeleter;

    std::filesystem::path m_path;
    void* m_handle;
    PagodaCudaProbeFn m_probe = nullptr;
    PagodaCudaCreateFn m_create = nullptr;
    PagodaCudaDestroyFn m_destroy = nullptr;
};

struct CudaModuleDeleter {
    std::shared_ptr<CudaModule> module;
    void operator()(cuda::DeviceBackend* backend) const;
};

// What probing found: a usable device, or why not.
struct CudaProbeResult {
    bool available = false;
    std::string reason;                // when !available
    std::filesystem::path modulePath;  // empty when no module was loaded
    std::shared_ptr<CudaModule> module;
    PagodaCudaProbe device{};          // when a module was loaded
};

// Loads the module and probes device `deviceIndex`; never fails.
CudaProbeResult probeCuda(const std::vector<std::filesystem::path>& modulePaths = defaultCudaModulePaths(),
                          int deviceIndex = 0);

// Every device the module sees, each probed (usable, or why not), in index
// order; when there is none to list (no module, no driver, no device),
// `reason` says why. Never fails. Touches no device: free memory is not
// asked for (freeKnown 0), so no context is made on a device not chosen.
struct CudaDeviceList {
    std::vector<PagodaCudaProbe> devices;
    std::string reason;  // when devices is empty
};
CudaDeviceList listCudaDevices(const std::vector<std::filesystem::path>& modulePaths = defaultCudaModulePaths());

// "NVIDIA H100 80GB HBM3 (compute 9.0, 132 SMs, 79.10 GiB free of 79.65 GiB, driver CUDA 13.0)", or
// with "79.65 GiB" alone where the free memory was not asked for.
std::string describeCudaDevice(const PagodaCudaProbe& device);
// One line per device for listings: "cuda:0: <describeCudaDevice>", or
// "cuda:1: unusable: compute capability 7.5 < 8.0 (Tesla T4)".
std::string cudaDeviceLine(const PagodaCudaProbe& device);

}  // namespace pagoda

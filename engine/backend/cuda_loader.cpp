#include "engine/backend/cuda_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

namespace pagoda {
namespace {

std::filesystem::path executableDir() {
    std::error_code error;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
    return error ? std::filesystem::path() : exe.parent_path();
}

template <class Fn>
Fn symbol(void* handle, const char* name) {
    return reinterpret_cast<Fn>(dlsym(handle, name));
}

std::string versionName(int version) { return fmt::format("CUDA {}.{}", version / 1000, version % 1000 / 10); }

std::string gib(unsigned long long bytes) { return fmt::format("{:.2f} GiB", double(bytes) / double(1ull << 30)); }

}  // namespace

std::vector<std::filesystem::path> defaultCudaModulePaths() {
    if (const char* explicitPath = std::getenv("PAGODA_CUDA_MODULE"); explicitPath != nullptr && *explicitPath) {
        return {explicitPath};
    }
    std::vector<std::filesystem::path> paths;
    auto addUnique = [&](const std::filesystem::path& path) {
        const std::filesystem::path normal = path.lexically_normal();
        for (const auto& known : paths) {
            if (known == normal) return;
        }
        paths.push_back(normal);
    };
    if (const std::filesystem::path dir = executableDir(); !dir.empty()) {
        addUnique(dir / PAGODA_CUDA_MODULE_FILE);
        addUnique(dir / ".." / PAGODA_INSTALL_LIBDIR / "pagoda" / PAGODA_CUDA_MODULE_FILE);
    }
    addUnique(std::filesystem::path(PAGODA_INSTALL_FULL_LIBDIR) / "pagoda" / PAGODA_CUDA_MODULE_FILE);
#ifdef PAGODA_CUDA_BUILD_MODULE
    addUnique(PAGODA_CUDA_BUILD_MODULE);
#endif
    return paths;
}

Result<std::shared_ptr<CudaModule>> CudaModule::load(const std::vector<std::filesystem::path>& candidates) {
    const std::filesystem::path* found = nullptr;
    for (const std::filesystem::path& candidate : candidates) {
        std::error_code error;
        if (std::filesystem::is_regular_file(candidate, error)) {
            found = &candidate;
            break;
        }
    }
    if (found == nullptr) {
        std::string searched;
        for (const std::filesystem::path& candidate : candidates) {
            searched += (searched.empty() ? "" : ", ") + candidate.string();
        }
        return fail("library not found: {} (searched: {})", PAGODA_CUDA_MODULE_FILE,
                    searched.empty() ? "nowhere" : searched);
    }
    dlerror();
    void* handle = dlopen(found->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* why = dlerror();
        return fail("cannot load {}: {}", found->string(), why ? why : "unknown dlopen error");
    }
    std::shared_ptr<CudaModule> module(new CudaModule(*found, handle));
    const auto abiVersion = symbol<PagodaCudaAbiVersionFn>(handle, PAGODA_CUDA_ABI_VERSION_SYMBOL);
    module->m_probe = symbol<PagodaCudaProbeFn>(handle, PAGODA_CUDA_PROBE_SYMBOL);
    module->m_create = symbol<PagodaCudaCreateFn>(handle, PAGODA_CUDA_CREATE_SYMBOL);
    module->m_destroy = symbol<PagodaCudaDestroyFn>(handle, PAGODA_CUDA_DESTROY_SYMBOL);
    for (const auto& [present, name] : {std::pair{abiVersion != nullptr, PAGODA_CUDA_ABI_VERSION_SYMBOL},
                                        std::pair{module->m_probe != nullptr, PAGODA_CUDA_PROBE_SYMBOL},
                                        std::pair{module->m_create != nullptr, PAGODA_CUDA_CREATE_SYMBOL},
                                        std::pair{module->m_destroy != nullptr, PAGODA_CUDA_DESTROY_SYMBOL}}) {
        if (!present) return fail("{} is not a Pagoda CUDA module: it has no symbol {}", found->string(), name);
    }
    if (const int version = abiVersion(); version != PAGODA_CUDA_ABI_VERSION) {
        return fail("{} has module ABI version {}, this program needs {}", found->string(), version,
                    PAGODA_CUDA_ABI_VERSION);
    }
    return module;
}

CudaModule::~CudaModule() { dlclose(m_handle); }

PagodaCudaProbe CudaModule::probe(int deviceIndex, bool freeMemory) const {
    PagodaCudaProbe result{};
    m_probe(deviceIndex, freeMemory ? PAGODA_CUDA_PROBE_FREE_MEMORY : 0, &result);
    result.reason[sizeof result.reason - 1] = '\0';
    result.deviceName[sizeof result.deviceName - 1] = '\0';
    return result;
}

Result<DeviceBackendPtr> CudaModule::createBackend(int deviceIndex) {
    char error[1024] = {};
    PagodaCudaBackend* backend = m_create(deviceIndex, error, sizeof error);
    if (backend == nullptr) return fail("{}", error[0] ? error : "the CUDA module could not create a backend");
    return DeviceBackendPtr(reinterpret_cast<cuda::DeviceBackend*>(backend), CudaModuleDeleter{shared_from_this()});
}

void CudaModuleDeleter::operator()(cuda::DeviceBackend* backend) const {
    module->m_destroy(reinterpret_cast<PagodaCudaBackend*>(backend));
}

CudaProbeResult probeCuda(const std::vector<std::filesystem::path>& modulePaths, int deviceIndex) {
    CudaProbeResult result;
    auto module = CudaModule::load(modulePaths);
    if (!module) {
        result.reason = module.error().message;
        return result;
    }
    result.module = *module;
    result.modulePath = result.module->path();
    result.device = result.module->probe(deviceIndex);
    result.available = result.device.available != 0;
    if (!result.available) result.reason = result.device.reason;
    return result;
}

CudaDeviceList listCudaDevices(const std::vector<std::filesystem::path>& modulePaths) {
    CudaDeviceList list;
    auto module = CudaModule::load(modulePaths);
    if (!module) {
        list.reason = module.error().message;
        return list;
    }
    const PagodaCudaProbe first = (*module)->probe(0, false);
    if (first.deviceCount < 1) {
        list.reason = first.reason;
        return list;
    }
    list.devices.push_back(first);
    for (int i = 1; i < first.deviceCount; ++i) list.devices.push_back((*module)->probe(i, false));
    return list;
}

std::string cudaDeviceLine(const PagodaCudaProbe& device) {
    if (device.available) return fmt::format("cuda:{}: {}", device.deviceIndex, describeCudaDevice(device));
    return fmt::format("cuda:{}: unusable: {}", device.deviceIndex, device.reason);
}

std::string describeCudaDevice(const PagodaCudaProbe& device) {
    const std::string memory = device.freeKnown ? fmt::format("{} free of {}", gib(device.freeBytes), gib(device.totalBytes))
                                                : gib(device.totalBytes);
    return fmt::format("{} (compute {}.{}, {} SMs, {}, driver {})", device.deviceName, device.ccMajor, device.ccMinor,
                       device.smCount, memory, versionName(device.driverVersion));
}

}  // namespace pagoda

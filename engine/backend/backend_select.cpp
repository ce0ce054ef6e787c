#include "engine/backend/backend_select.h"

#include <fmt/format.h>

#include "engine/backend/cuda_ops.h"

namespace pagoda {

Result<BackendChoice> parseBackendChoice(std::string_view name) {
    if (name == "auto") return BackendChoice::Auto;
    if (name == "cpu") return BackendChoice::Cpu;
    if (name == "cuda") return BackendChoice::Cuda;
    return fail("unknown backend '{}' (auto, cpu or cuda)", name);
}

bool sameBackendChoice(const BackendOptions& a, const BackendOptions& b) {
    return a.choice == b.choice && (a.choice == BackendChoice::Cpu || a.cudaDevice == b.cudaDevice);
}

namespace {

// The first device listed as usable; 0 (whose probe then says why not) when
// there is none.
int firstUsableCudaDevice(const CudaDeviceList& listed) {
    for (const PagodaCudaProbe& device : listed.devices) {
        if (device.available) return device.deviceIndex;
    }
    return 0;
}

}  // namespace

Result<SelectedBackend> selectBackend(const BackendOptions& options, const CudaDeviceList* listed) {
    SelectedBackend selected;
    selected.options = options;
    if (options.choice != BackendChoice::Cpu) {
        int index = options.cudaDevice;
        if (index == kFirstUsableCudaDevice) {
            index = firstUsableCudaDevice(listed != nullptr ? *listed : listCudaDevices(options.cudaModulePaths));
        }
        const CudaProbeResult probe = probeCuda(options.cudaModulePaths, index);
        // The device's index only where there is a choice of devices.
        selected.cudaName = probe.device.deviceCount > 1 || index != 0 ? fmt::format("cuda:{}", index) : "cuda";
        const std::string& device = selected.cudaName;
        std::string reason = probe.reason;
        if (probe.available) {
            auto cuda = CudaOps::create(probe.module, index);
            if (cuda) {
                selected.cuda = cuda->get();
                selected.cudaDevice = index;
                selected.ops = std::move(*cuda);
                selected.note = fmt::format("{}: {}; using cuda", device, describeCudaDevice(probe.device));
                return selected;
            }
            reason = cuda.error().message;
        }
        if (options.choice == BackendChoice::Cuda) return fail("{}: unavailable: {}", device, reason);
        selected.note = fmt::format("{}: unavailable: {}; using cpu", device, reason);
    } else {
        selected.note = "cpu: chosen";
    }
    selected.ops = std::make_unique<CpuOps>(options.cpu);
    return selected;
}

Result<void> prepareModel(SelectedBackend& backend, const Model& model,
                          const std::function<void(uint64_t done, uint64_t total)>& progress,
                          const std::shared_ptr<const SharedCudaWeights>& shared) {
    if (backend.cuda == nullptr) return {};
    // Another model's or device's weights are refused: then they upload.
    if (shared != nullptr && backend.cuda->useWeights(model, shared)) return {};
    Result<void> uploaded = backend.cuda->uploadModel(model, progress);
    if (uploaded || backend.options.choice == BackendChoice::Cuda) return uploaded;
    backend.note = fmt::format("{}: {}; using cpu", backend.cudaName, uploaded.error().message);
    backend.cuda = nullptr;
    backend.cudaDevice = -1;
    backend.ops = std::make_unique<CpuOps>(backend.options.cpu);
    return {};
}

bool weightsFitBeside(uint64_t weightBytes, uint64_t freeBytes) {
    return weightBytes <= freeBytes && freeBytes - weightBytes >= kRoomBesideWeightsBytes;
}

}  // namespace pagoda

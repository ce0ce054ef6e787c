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

Result<SelectedBackend> selectBackend(const BackendOptions& options) {
    SelectedBackend selected;
    selected.options = options;
    if (options.choice != BackendChoice::Cpu) {
        const CudaProbeResult probe = probeCuda(options.cudaModulePaths, options.cudaDevice);
        // The device's index only where there is a choice of devices.
        const std::string device = probe.device.deviceCount > 1 || options.cudaDevice != 0
                                       ? fmt::format("cuda:{}", options.cudaDevice)
                                       : "cuda";
        std::string reason = probe.reason;
        if (probe.available) {
            auto cuda = CudaOps::create(probe.module, options.cudaDevice);
            if (cuda) {
                selected.cuda = cuda->get();
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
                          const std::function<void(uint64_t done, uint64_t total)>& progress) {
    if (backend.cuda == nullptr) return {};
    Result<void> uploaded = backend.cuda->uploadModel(model, progress);
    if (uploaded || backend.options.choice == BackendChoice::Cuda) return uploaded;
    backend.note = fmt::format("cuda: {}; using cpu", uploaded.error().message);
    backend.cuda = nullptr;
    backend.ops = std::make_unique<CpuOps>(backend.options.cpu);
    return {};
}

}  // namespace pagoda

#include "engine/backend/backend_select.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

#include "engine/backend/cuda_ops.h"
#include "engine/backend/layer_split_ops.h"
#include "engine/cache/kv_budget.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/transformer/transformer.h"
#include "kernels/format_bytes.h"

namespace pagoda {

Result<int> parseGpuLayers(std::string_view text) {
    if (text == "auto") return kGpuLayersThatFit;
    int layers = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), layers);
    if (error != std::errc() || end != text.data() + text.size() || layers < 0) {
        return fail("GPU layers '{}': 'auto' or a count of layers (0 or more)", text);
    }
    return layers;
}

Result<BackendChoice> parseBackendChoice(std::string_view name) {
    if (name == "auto") return BackendChoice::Auto;
    if (name == "cpu") return BackendChoice::Cpu;
    if (name == "cuda") return BackendChoice::Cuda;
    return fail("unknown backend '{}' (auto, cpu or cuda)", name);
}

bool sameBackendChoice(const BackendOptions& a, const BackendOptions& b) {
    return a.choice == b.choice &&
           (a.choice == BackendChoice::Cpu || (a.cudaDevice == b.cudaDevice && a.gpuLayers == b.gpuLayers));
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

namespace {

void useCpu(SelectedBackend& backend, const std::string& why) {
    backend.note = fmt::format("{}: {}; using cpu", backend.cudaName, why);
    backend.cuda = nullptr;
    backend.cudaDevice = -1;
    backend.ops = std::make_unique<CpuOps>(backend.options.cpu);
}

// backend.ops becomes the CPU for layers [0, firstLayer) and the CUDA
// backend, which holds the others, for the rest.
Result<void> splitByLayer(SelectedBackend& backend, const Model& model, int firstLayer, const std::string& why) {
    if (firstLayer == 0) return {};
    const int nLayers = model.config().nLayers;
    auto split = LayerSplitOps::create(std::make_unique<CpuOps>(backend.options.cpu), std::move(backend.ops),
                                       firstLayer, nLayers);
    if (!split) {  // the CUDA backend went with it
        useCpu(backend, split.error().message);
        return std::unexpected(split.error());
    }
    backend.ops = std::move(*split);
    backend.note += fmt::format("; {} on {}, {} on the cpu{}", describeLayers(firstLayer, nLayers), backend.cudaName,
                                describeLayers(0, firstLayer), why.empty() ? "" : " (" + why + ")");
    return {};
}

}  // namespace

Result<void> prepareModel(SelectedBackend& backend, const Model& model,
                          const std::function<void(uint64_t done, uint64_t total)>& progress,
                          const std::shared_ptr<const SharedCudaWeights>& shared) {
    if (backend.cuda == nullptr) return {};
    const int nLayers = model.config().nLayers;
    const int asked = backend.options.gpuLayers;
    // Shared weights hold the layers asked for (any, when automatic);
    // another model's or device's are refused. Else they upload.
    const bool sameLayers = shared != nullptr && (asked == kGpuLayersThatFit ||
                                                  nLayers - shared->firstLayer == std::min(asked, nLayers));
    if (sameLayers && backend.cuda->useWeights(model, shared)) {
        return splitByLayer(backend, model, shared->firstLayer, "as the weights it shares");
    }
    const bool mustCuda = backend.options.choice == BackendChoice::Cuda;
    if (asked == 0) {
        if (mustCuda) return fail("{}: 0 GPU layers asked for with the cuda backend", backend.cudaName);
        useCpu(backend, "0 GPU layers asked for");
        return {};
    }
    if (asked == kGpuLayersThatFit) {
        // Every layer when they fit with room beside, else as many as do;
        // when not even one does, every layer if the upload takes them.
        const GpuRoom& room = backend.options.room;
        const uint64_t free = backend.cuda->memory().deviceFree;
        const int fit = gpuLayersThatFit(model, free, room);
        if (fit > 0 && fit < nLayers && backend.cuda->uploadModel(model, progress, nLayers - fit)) {
            return splitByLayer(backend, model, nLayers - fit,
                                fmt::format("all {} with a context of {} tokens need {}, {} free", nLayers,
                                            roomContextTokens(model, room),
                                            formatBytes(deviceBytesNeeded(model, nLayers, room)), formatBytes(free)));
        }
    }
    const int firstAsked = asked == kGpuLayersThatFit ? 0 : std::max(0, nLayers - asked);
    Result<void> uploaded = backend.cuda->uploadModel(model, progress, firstAsked);
    if (uploaded) return splitByLayer(backend, model, firstAsked, "");
    if (mustCuda) return uploaded;
    useCpu(backend, uploaded.error().message);
    return {};
}

void copyWeightsForTheCpu(SelectedBackend& backend, Model& model) {
    const std::optional<LayerSplit> split = backend.ops ? backend.ops->layerSplit() : std::nullopt;
    if (backend.cuda != nullptr && !split) return;  // the GPU holds every layer
    if (model.weightBytesInMemory() > 0) return;     // copied already (by the backend that loaded it)
    // A split's CPU side: the tensors of its layers (the token embedding is
    // read a few rows a step).
    const int cpuLayers = split ? split->secondFrom : -1;
    const uint64_t bytes = model.bytesToCopy(cpuLayers);
    const char* mapped = std::getenv("PAGODA_MAP_WEIGHTS");
    std::string why;
    if (!backend.options.copyWeightsToMemory) {
        why = "as asked";
    } else if (mapped != nullptr && *mapped != '\0') {
        why = "PAGODA_MAP_WEIGHTS is set";
    } else if (const Result<uint64_t> available = availableHostMemory(); !available) {
        why = available.error().message;
    } else if (*available < bytes + kRoomBesideCopyBytes) {
        why = fmt::format("{} available, the copy needs {} and {} to spare", formatBytes(*available),
                          formatBytes(bytes), formatBytes(kRoomBesideCopyBytes));
    } else if (const Result<void> copied = model.copyWeightsToMemory(cpuLayers); !copied) {
        why = copied.error().message;
    } else {
        backend.note += fmt::format("; the cpu reads the weights from memory ({} copied{})", formatBytes(bytes),
                                    split ? ", " + describeLayers(0, cpuLayers) : "");
        return;
    }
    backend.note += fmt::format("; the cpu reads the weights from the file mapping ({})", why);
}

int roomContextTokens(const Model& model, const GpuRoom& room) {
    return model.config().contextWithin(room.contextTokens > 0 ? room.contextTokens : kRoomContextTokens);
}

uint64_t deviceBytesNeeded(const Model& model, int gpuLayers, const GpuRoom& room) {
    const ModelConfig& c = model.config();
    const KvLayout oneContext = kvLayoutForTokens(c, roomContextTokens(model, room), 16, room.kvType);
    const uint64_t kv = oneContext.bytes() / uint64_t(c.nLayers) * uint64_t(gpuLayers);
    const uint64_t activations = Transformer::activationBytes(c, std::max(room.maxBatchTokens, 1));
    return CudaOps::weightBytes(model, c.nLayers - gpuLayers) + CudaOps::deviceBytesFor(kv + activations);
}

int gpuLayersThatFit(const Model& model, uint64_t freeBytes, const GpuRoom& room) {
    for (int gpuLayers = model.config().nLayers; gpuLayers > 0; --gpuLayers) {
        if (deviceBytesNeeded(model, gpuLayers, room) <= freeBytes) return gpuLayers;
    }
    return 0;
}

bool weightsFitBeside(uint64_t weightBytes, uint64_t freeBytes) {
    return weightBytes <= freeBytes && freeBytes - weightBytes >= kRoomBesideWeightsBytes;
}

}  // namespace pagoda

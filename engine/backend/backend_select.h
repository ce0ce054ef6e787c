#pragma once
// Which backend runs the model: the CUDA module when it loads and finds a
// usable device, else the CPU, with the reason it is not CUDA.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend/cpu_ops.h"
#include "engine/backend/cuda_loader.h"
#include "engine/core/result.h"
#include "kernels/dtype.h"

namespace pagoda {

class CudaOps;
class Model;
struct SharedCudaWeights;

enum class BackendChoice {
    Auto,  // CUDA when possible, else the CPU
    Cpu,
    Cuda,  // CUDA or an error
};

// "auto", "cpu", "cuda"
Result<BackendChoice> parseBackendChoice(std::string_view name);

constexpr int kFirstUsableCudaDevice = -1;
// BackendOptions::gpuLayers: every layer when the model's weights fit the
// GPU with room beside them (GpuRoom), else as many as fit so, the rest on
// the CPU (when not even one does: every layer if they fit at all).
constexpr int kGpuLayersThatFit = -1;

// The context GpuRoom plans for when none is set and the model's is
// longer: Ollama's default context on GPUs of less than 24 GiB
// (ollama/ollama, docs/context-length.mdx).
constexpr int kRoomContextTokens = 4096;

// What the automatic GPU layers keep room for on the device beside the
// weights of the layers they take: the K and V of one sequence at the
// context on those layers, and the activations of a step, within what the
// automatic KV budget takes there (CudaOps::kvMemoryBeside). An automatic
// pool then holds at least one whole context.
struct GpuRoom {
    int contextTokens = 0;  // the context set; 0: the model's, up to kRoomContextTokens
    DType kvType = DType::F16;
    int maxBatchTokens = 256;  // tokens per step (the activations)
};

// "auto" (kGpuLayersThatFit) or a count >= 0.
Result<int> parseGpuLayers(std::string_view text);

struct BackendOptions {
    BackendChoice choice = BackendChoice::Auto;
    CpuOpsOptions cpu;
    std::vector<std::filesystem::path> cudaModulePaths = defaultCudaModulePaths();
    // Which CUDA device (listCudaDevices, cuda_loader.h, lists them); by
    // default the first usable one.
    int cudaDevice = kFirstUsableCudaDevice;
    // How many of the model's layers run on the GPU (the last ones, with
    // the output; the CPU embeds the tokens and runs the ones before):
    // kGpuLayersThatFit, or a count (every layer from the model's count on;
    // 0: none, the CPU runs the model).
    int gpuLayers = kGpuLayersThatFit;
    GpuRoom room;  // what the automatic GPU layers leave room for
    // Where the CPU runs layers, copy the weights into memory
    // (copyWeightsForTheCpu); false: read them from the file mapping
    // (pagoda-cli --mmap, as llama.cpp's).
    bool copyWeightsToMemory = true;
};

// Whether two options choose the same backend: the same choice, and for a
// GPU the same device and GPU layers (the CPU's threads, where the module
// is looked for and the room, which counts only when a model loads, are
// not compared).
bool sameBackendChoice(const BackendOptions& a, const BackendOptions& b);

struct SelectedBackend {
    std::unique_ptr<Ops> ops;
    CudaOps* cuda = nullptr;  // ops, or its GPU side when it splits the model by layer
    // One line for the user: "cuda: NVIDIA H100 ... ; using cuda", or
    // "cuda: unavailable: no NVIDIA driver (...); using cpu"; "cuda:1: ..."
    // where the machine has several devices or another than the first was
    // asked for.
    std::string note;
    std::string cudaName;  // how the notes name the CUDA device: "cuda", or "cuda:1" where there is a choice
    int cudaDevice = -1;   // the device ops runs on; -1 on the CPU
    BackendOptions options;  // what was asked for (prepareModel may still fall back to the CPU)
};

// Errors only for BackendChoice::Cuda without a usable device.
// `listed`: the caller's listCudaDevices of the same module paths, so that
// finding the first usable device does not list them again.
Result<SelectedBackend> selectBackend(const BackendOptions& options, const CudaDeviceList* listed = nullptr);

// Makes the model's weights usable by the backend: uploads them once to the
// device for CUDA (progress: bytes done, total); nothing for the CPU, which
// reads the memory-mapped file. options.gpuLayers says how many layers go
// to the GPU; fewer than the model's make backend.ops a LayerSplitOps over
// the CPU and the GPU, the note saying so ("...; layers 20-31 on cuda,
// layers 0-19 on the cpu (all 32 need 15.0 GiB, 9.1 GiB free)"). When the
// upload fails (the weights do not fit), BackendChoice::Auto falls back to
// the CPU, the note saying why ("cuda: out of device memory: the model's
// weights need ...; using cpu"); BackendChoice::Cuda returns the error.
// `shared`: the model's weights that another CudaOps put on a device
// (CudaOps::sharedWeights); on that device the backend runs on them, with
// their layers, and nothing is uploaded, unless options.gpuLayers asks for
// another count of layers than they hold.
Result<void> prepareModel(SelectedBackend& backend, const Model& model,
                          const std::function<void(uint64_t done, uint64_t total)>& progress = {},
                          const std::shared_ptr<const SharedCudaWeights>& shared = {});

// The context `room` plans for with this model: the one set, else the
// model's up to kRoomContextTokens; never more than the model's.
int roomContextTokens(const Model& model, const GpuRoom& room);
// The device memory the last gpuLayers layers of the model need to run
// with `room`: their weights (with the output), and what the automatic KV
// budget must find beside them for one context's K and V on those layers
// and the activations (CudaOps::deviceBytesFor).
uint64_t deviceBytesNeeded(const Model& model, int gpuLayers, const GpuRoom& room);

// How many of the model's layers (the last ones, with the output) the
// automatic GPU layers (kGpuLayersThatFit) take on a device with freeBytes
// free: every layer when deviceBytesNeeded fits, else as many as fit so; 0
// when not even one does (prepareModel then tries every layer with the
// upload's own headroom, then the CPU).
int gpuLayersThatFit(const Model& model, uint64_t freeBytes, const GpuRoom& room = {});

// Where the CPU runs any of the model's layers (the CPU backend, or the
// CPU side of a split), copies the model file from its mapping into memory
// (Model::copyWeightsToMemory; for a split only the tensors of the CPU's
// layers): decode then reads the weights faster
// (docs/PERFORMANCE.md). Only when the host's available memory holds the
// file with kRoomBesideCopyBytes to spare, the options ask for it
// (BackendOptions::copyWeightsToMemory) and PAGODA_MAP_WEIGHTS is unset
// (set: the weights stay mapped, as before, for comparison). The note
// says what was done and why ("; the cpu reads the weights from memory (1.2
// GiB copied)", or from the file mapping and why). Call once, before
// anything runs the model: no engine may be reading it.
void copyWeightsForTheCpu(SelectedBackend& backend, Model& model);
constexpr uint64_t kRoomBesideCopyBytes = 1ull << 30;

// What the app assumes a model needs on a device beside its weights when
// it has only the file's size to go on (before the model is read): the
// upload's headroom (256 MiB), activations and workspace (1 GiB,
// Ops::kvMemoryAvailable) and the start of a KV pool.
constexpr uint64_t kRoomBesideWeightsBytes = 2ull << 30;
// Whether a model of `weightBytes` loads beside what the device holds now
// (freeBytes free): weightBytes + kRoomBesideWeightsBytes <= freeBytes.
// The app unloads the model on a GPU first when the next one for that GPU
// does not.
bool weightsFitBeside(uint64_t weightBytes, uint64_t freeBytes);

}  // namespace pagoda

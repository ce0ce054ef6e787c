// Loading the CUDA module and falling back to the CPU, with the reason
// named: module missing, not a library, not a Pagoda module, another ABI,
// no driver or no device (whatever this machine has).

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "engine/backend/backend_select.h"
#include "engine/backend/cuda_loader.h"
#include "engine/backend/cuda_ops.h"
#include "engine/backend/layer_split_ops.h"
#include "engine/kv/kv_cache.h"
#include "kernels/format_bytes.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"
#include "tests/cuda/model_test_util.h"

namespace pagoda {
namespace {

namespace fs = std::filesystem;

// The fake module's device memory (PAGODA_FAKE_DEVICE_MIB) until the end of the scope.
class FakeDeviceMib {
public:
    explicit FakeDeviceMib(uint64_t mib) { set(mib); }
    ~FakeDeviceMib() { unsetenv("PAGODA_FAKE_DEVICE_MIB"); }
    void set(uint64_t mib) { EXPECT_EQ(setenv("PAGODA_FAKE_DEVICE_MIB", std::to_string(mib).c_str(), 1), 0); }
};

// The fake module with its small device, one CPU thread for the fallback.
BackendOptions fakeDeviceOptions() {
    BackendOptions options;
    options.cudaModulePaths = {PAGODA_TEST_FAKE_SMALL_DEVICE_MODULE};
    options.cpu.threads = 1;
    return options;
}

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "pagoda-cuda-XXXXXX").string();
        m_path = mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(m_path); }
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

TEST(CudaLoader, AMissingModuleListsWhereItWasSought) {
    TempDir dir;
    const fs::path candidate = dir.path() / PAGODA_CUDA_MODULE_FILE;
    auto module = CudaModule::load({candidate, dir.path() / "elsewhere" / PAGODA_CUDA_MODULE_FILE});
    ASSERT_FALSE(module);
    EXPECT_EQ(module.error().message, "library not found: libpagoda_cuda.so (searched: " + candidate.string() + ", " +
                                          (dir.path() / "elsewhere" / PAGODA_CUDA_MODULE_FILE).string() + ")");
    EXPECT_EQ(CudaModule::load({}).error().message, "library not found: libpagoda_cuda.so (searched: nowhere)");
}

TEST(CudaLoader, AFileThatIsNoLibraryCannotBeLoaded) {
    TempDir dir;
    const fs::path bogus = dir.path() / PAGODA_CUDA_MODULE_FILE;
    std::ofstream(bogus) << "not an ELF file\n";
    auto module = CudaModule::load({bogus});
    ASSERT_FALSE(module);
    EXPECT_TRUE(module.error().message.starts_with("cannot load " + bogus.string() + ": ")) << module.error().message;
}

TEST(CudaLoader, ALibraryWithoutTheEntryPointsIsNoModule) {
    auto module = CudaModule::load({PAGODA_TEST_FAKE_EMPTY_MODULE});
    ASSERT_FALSE(module);
    EXPECT_EQ(module.error().message, std::string(PAGODA_TEST_FAKE_EMPTY_MODULE) +
                                          " is not a Pagoda CUDA module: it has no symbol pagoda_cuda_abi_version");
}

TEST(CudaLoader, AModuleOfAnotherAbiVersionIsRefused) {
    auto module = CudaModule::load({PAGODA_TEST_FAKE_OLD_ABI_MODULE});
    ASSERT_FALSE(module);
    EXPECT_EQ(module.error().message,
              std::string(PAGODA_TEST_FAKE_OLD_ABI_MODULE) + " has module ABI version 999, this program needs " +
                  std::to_string(PAGODA_CUDA_ABI_VERSION));
}

TEST(CudaLoader, TheFirstExistingCandidateIsLoaded) {
    TempDir dir;
    auto module = CudaModule::load({dir.path() / PAGODA_CUDA_MODULE_FILE, PAGODA_TEST_CUDA_MODULE});
    ASSERT_TRUE(module) << module.error().message;
    EXPECT_EQ((*module)->path(), fs::path(PAGODA_TEST_CUDA_MODULE));
}

TEST(CudaLoader, TheRealModuleReportsADeviceOrWhyThereIsNone) {
    const CudaProbeResult probe = probeCuda({PAGODA_TEST_CUDA_MODULE});
    ASSERT_TRUE(probe.module) << probe.reason;
    EXPECT_EQ(probe.modulePath, fs::path(PAGODA_TEST_CUDA_MODULE));
    EXPECT_GT(probe.device.runtimeVersion, 0);
    if (probe.available) {
        EXPECT_GE(probe.device.ccMajor, 8);
        EXPECT_GT(probe.device.totalBytes, 0u);
        EXPECT_NE(describeCudaDevice(probe.device).find(probe.device.deviceName), std::string::npos);
    } else if (probe.device.driverVersion == 0) {
        // This machine: CUDA installed, no NVIDIA driver.
        EXPECT_EQ(probe.reason, "no NVIDIA driver (cudaErrorInsufficientDriver, error 35)");
    } else {
        EXPECT_FALSE(probe.reason.empty());
    }
}

TEST(CudaLoader, ExplicitModulePathFromTheEnvironment) {
    ASSERT_EQ(setenv("PAGODA_CUDA_MODULE", "/opt/x/libpagoda_cuda.so", 1), 0);
    EXPECT_EQ(defaultCudaModulePaths(), std::vector<fs::path>{"/opt/x/libpagoda_cuda.so"});
    ASSERT_EQ(unsetenv("PAGODA_CUDA_MODULE"), 0);
    const std::vector<fs::path> paths = defaultCudaModulePaths();
    ASSERT_GE(paths.size(), 2u);
    for (const fs::path& path : paths) EXPECT_EQ(path.filename(), PAGODA_CUDA_MODULE_FILE);
    EXPECT_EQ(paths.back(), fs::path(PAGODA_TEST_CUDA_MODULE).lexically_normal()) << "the build tree's module comes last";
}

TEST(BackendSelect, FallsBackToTheCpuNamingWhyNotCuda) {
    TempDir dir;
    BackendOptions options;
    options.cudaModulePaths = {dir.path() / PAGODA_CUDA_MODULE_FILE};
    options.cpu.threads = 1;
    auto selected = selectBackend(options);
    ASSERT_TRUE(selected) << selected.error().message;
    EXPECT_EQ(selected->cuda, nullptr);
    EXPECT_EQ(selected->note, "cuda: unavailable: library not found: libpagoda_cuda.so (searched: " +
                                  options.cudaModulePaths[0].string() + "); using cpu");
    EXPECT_TRUE(selected->ops->description().starts_with("cpu: 1 threads"));

    options.choice = BackendChoice::Cuda;
    auto required = selectBackend(options);
    ASSERT_FALSE(required);
    EXPECT_TRUE(required.error().message.starts_with("cuda: unavailable: library not found")) << required.error().message;

    options.choice = BackendChoice::Cpu;
    auto cpu = selectBackend(options);
    ASSERT_TRUE(cpu);
    EXPECT_EQ(cpu->note, "cpu: chosen");
}

TEST(BackendSelect, UsesTheRealModuleWhenItFindsADeviceElseTheCpu) {
    BackendOptions options;
    options.cudaModulePaths = {PAGODA_TEST_CUDA_MODULE};
    options.cpu.threads = 1;
    auto selected = selectBackend(options);
    ASSERT_TRUE(selected) << selected.error().message;
    const CudaProbeResult probe = probeCuda({PAGODA_TEST_CUDA_MODULE});
    if (probe.available) {
        ASSERT_NE(selected->cuda, nullptr) << selected->note;
        EXPECT_TRUE(selected->note.ends_with("; using cuda")) << selected->note;
        EXPECT_TRUE(selected->ops->description().starts_with("cuda: ")) << selected->ops->description();
    } else {
        EXPECT_EQ(selected->cuda, nullptr);
        EXPECT_EQ(selected->note, "cuda: unavailable: " + probe.reason + "; using cpu");
    }
}

TEST(BackendSelect, AutoFallsBackToTheCpuWhenTheDeviceCannotHoldTheModel) {
    const test::BuiltModel built = test::buildModel(*syntheticPreset("tiny"));
    ASSERT_NE(built.model, nullptr);
    BackendOptions options = fakeDeviceOptions();

    auto selected = selectBackend(options);
    ASSERT_TRUE(selected) << selected.error().message;
    ASSERT_NE(selected->cuda, nullptr) << selected->note;
    // The first usable device: the second.
    EXPECT_TRUE(selected->note.starts_with("cuda:1: Fake GPU (compute 9.0")) << selected->note;
    EXPECT_EQ(selected->cudaDevice, 1);
    ASSERT_TRUE(prepareModel(*selected, *built.model));
    EXPECT_EQ(selected->cuda, nullptr);
    EXPECT_EQ(selected->cudaDevice, -1);
    EXPECT_EQ(selected->note, "cuda:1: out of device memory: Fake GPU has 1.00 MiB; using cpu");
    EXPECT_TRUE(selected->ops->description().starts_with("cpu: 1 threads")) << selected->ops->description();

    options.choice = BackendChoice::Cuda;
    auto required = selectBackend(options);
    ASSERT_TRUE(required) << required.error().message;
    auto prepared = prepareModel(*required, *built.model);
    ASSERT_FALSE(prepared);
    EXPECT_EQ(prepared.error().message, "out of device memory: Fake GPU has 1.00 MiB");
    EXPECT_NE(required->cuda, nullptr);
}

// gemma3 goes on the device with its post-norms: the weights uploaded are
// qwen3's of the same shape (QK-norm too) and two norm vectors a layer.
TEST(BackendSelect, Gemma3GoesOnTheDeviceWithItsPostNorms) {
    const FakeDeviceMib device(300);
    auto uploaded = [](const std::string& architecture) -> uint64_t {
        SyntheticSpec spec = *syntheticPreset("tiny");
        spec.architecture = architecture;
        const test::BuiltModel built = test::buildModel(spec);
        EXPECT_NE(built.model, nullptr);
        if (built.model == nullptr) return 0;
        auto selected = selectBackend(fakeDeviceOptions());
        EXPECT_TRUE(selected && selected->cuda != nullptr);
        if (!selected || selected->cuda == nullptr) return 0;
        const Result<void> prepared = prepareModel(*selected, *built.model);
        EXPECT_TRUE(prepared) << prepared.error().message;
        EXPECT_NE(selected->cuda, nullptr) << architecture << ": " << selected->note;
        return selected->cuda != nullptr ? selected->cuda->memory().inUseBy(cuda::MemoryUse::Weights) : 0;
    };
    const SyntheticSpec tiny = *syntheticPreset("tiny");
    EXPECT_EQ(uploaded("gemma3"), uploaded("qwen3") + 2ull * tiny.nLayers * tiny.dim * sizeof(float));
}

// A second backend on the device runs on the weights the first uploaded:
// the device holds one copy, until the last backend using it is gone.
TEST(BackendSelect, ASecondBackendRunsOnTheWeightsTheFirstUploaded) {
    const FakeDeviceMib device(300);
    const test::BuiltModel built = test::buildModel(*syntheticPreset("tiny"));
    const test::BuiltModel other = test::buildModel(*syntheticPreset("tiny"));
    ASSERT_NE(built.model, nullptr);
    ASSERT_NE(other.model, nullptr);
    BackendOptions options;
    options.cudaModulePaths = {PAGODA_TEST_FAKE_SMALL_DEVICE_MODULE};
    options.choice = BackendChoice::Cuda;
    const auto freeBytes = [&] { return probeCuda(options.cudaModulePaths, 1).device.freeBytes; };
    const uint64_t empty = freeBytes();
    ASSERT_EQ(empty, 300ull << 20);

    auto first = selectBackend(options);
    ASSERT_TRUE(first) << first.error().message;
    ASSERT_TRUE(prepareModel(*first, *built.model));
    std::shared_ptr<const SharedCudaWeights> uploaded = first->cuda->sharedWeights();
    ASSERT_NE(uploaded, nullptr);
    const uint64_t weights = uploaded->weights->bytes();
    ASSERT_GT(weights, 0u);
    EXPECT_EQ(freeBytes(), empty - weights);
    EXPECT_EQ(first->ops->description().find("shared"), std::string::npos) << first->ops->description();

    auto second = selectBackend(options);
    ASSERT_TRUE(second) << second.error().message;
    ASSERT_TRUE(prepareModel(*second, *built.model, {}, uploaded));
    ASSERT_NE(second->cuda, nullptr);
    EXPECT_EQ(freeBytes(), empty - weights);
    EXPECT_EQ(second->cuda->sharedWeights(), uploaded);
    EXPECT_EQ(second->cuda->memory().inUseBy(cuda::MemoryUse::Weights), weights);
    EXPECT_TRUE(second->ops->description().ends_with(", weights shared with another engine"))
        << second->ops->description();

    // Another model's weights are not taken for this one's: it uploads its own.
    auto third = selectBackend(options);
    ASSERT_TRUE(third) << third.error().message;
    auto refused = third->cuda->useWeights(*other.model, uploaded);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message, "the shared weights are another model's");
    ASSERT_TRUE(prepareModel(*third, *other.model, {}, uploaded));
    EXPECT_EQ(freeBytes(), empty - 2 * weights);
    EXPECT_NE(third->cuda->sharedWeights(), uploaded);
    third = std::unexpected(Error{"gone"});
    EXPECT_EQ(freeBytes(), empty - weights);

    // The weights outlive the backend that uploaded them while another uses them.
    first = std::unexpected(Error{"gone"});
    EXPECT_EQ(freeBytes(), empty - weights);
    second = std::unexpected(Error{"gone"});
    EXPECT_EQ(freeBytes(), empty - weights) << "the test's own reference holds them";
    uploaded.reset();
    EXPECT_EQ(freeBytes(), empty);
}

// What the automatic GPU layers leave room for, worked out by hand: one
// context's f16 K and V on the GPU's layers and a step's activations,
// within the 90% less 1 GiB that the automatic KV budget takes of what the
// weights leave free.
uint64_t neededByHand(const Model& model, int gpuLayers, int context, int stepTokens) {
    const ModelConfig& c = model.config();
    const uint64_t kv = 2ull * uint64_t(c.nKvHeads) * uint64_t(c.headDim) * 2 * uint64_t((context + 15) / 16 * 16) *
                        uint64_t(gpuLayers);
    const uint64_t beside = kv + Transformer::activationBytes(c, stepTokens) + (1ull << 30);
    return CudaOps::weightBytes(model, c.nLayers - gpuLayers) + (beside + 8) / 9 * 10;
}

TEST(BackendSelect, TheRoomBesideTheWeightsIsOneContextOfKvAndAStep) {
    SyntheticSpec spec;
    spec.dim = 256;
    spec.nLayers = 4;
    spec.nHeads = 4;
    spec.nKvHeads = 2;
    spec.ffnDim = 512;
    spec.contextLength = 16384;
    const test::BuiltModel built = test::buildModel(spec);
    ASSERT_NE(built.model, nullptr);
    const Model& model = *built.model;
    EXPECT_EQ(roomContextTokens(model, {}), kRoomContextTokens);  // the model's is longer
    EXPECT_EQ(roomContextTokens(model, {1000, DType::F16, 256}), 1000);
    EXPECT_EQ(roomContextTokens(model, {20000, DType::F16, 256}), 16384);
    for (const int layers : {1, 4}) {
        EXPECT_EQ(deviceBytesNeeded(model, layers, {}), neededByHand(model, layers, 4096, 256)) << layers;
        EXPECT_EQ(deviceBytesNeeded(model, layers, {1000, DType::F16, 64}), neededByHand(model, layers, 1000, 64));
    }
    // F32 K and V take twice the f16's.
    const uint64_t f16 = deviceBytesNeeded(model, 4, {16384, DType::F16, 256});
    const uint64_t f32 = deviceBytesNeeded(model, 4, {16384, DType::F32, 256});
    const uint64_t kv16 = 2ull * 2 * 64 * 2 * 16384 * 4;
    EXPECT_GE(f32 - f16, kv16 / 9 * 10);
    EXPECT_LE(f32 - f16, kv16 / 9 * 10 + 20);
    // What the device needs is what the automatic budget then finds.
    for (const uint64_t kv : {uint64_t(1), uint64_t(12345), uint64_t(5) << 30}) {
        EXPECT_GE(CudaOps::kvMemoryBeside(CudaOps::deviceBytesFor(kv)), kv);
        EXPECT_LT(CudaOps::kvMemoryBeside(CudaOps::deviceBytesFor(kv) - 10), kv);
    }
    const uint64_t all = deviceBytesNeeded(model, 4, {});
    EXPECT_EQ(gpuLayersThatFit(model, all, {}), 4);
    EXPECT_EQ(gpuLayersThatFit(model, all - 1, {}), 3);
    EXPECT_EQ(gpuLayersThatFit(model, deviceBytesNeeded(model, 1, {}) - 1, {}), 0);
    // A shorter context leaves room for more layers.
    const uint64_t three = deviceBytesNeeded(model, 3, {16384, DType::F16, 256});
    EXPECT_EQ(gpuLayersThatFit(model, three, {16384, DType::F16, 256}), 3);
    EXPECT_EQ(gpuLayersThatFit(model, three, {2048, DType::F16, 256}), 4);
}

// A model larger than the device runs its last layers there and the rest
// on the CPU: as many as fit with room for a context (deviceBytesNeeded), or
// as many as asked for. The fake device counts what each backend holds on it.
TEST(BackendSelect, ALargeModelRunsItsLastLayersOnTheGpuAndTheRestOnTheCpu) {
    SyntheticSpec spec;
    spec.dim = 256;
    spec.nLayers = 8;
    spec.nHeads = 4;
    spec.nKvHeads = 4;
    spec.ffnDim = 768;
    spec.tiedOutput = false;
    const test::BuiltModel built = test::buildModel(spec);
    ASSERT_NE(built.model, nullptr);
    const Model& model = *built.model;
    // A device where 4 of the 8 layers (about 3.3 MiB of weights each, and
    // 0.5 MiB of K and V for the model's 512 tokens) fit with the room.
    const uint64_t four = deviceBytesNeeded(model, 4, {});
    ASSERT_GT(deviceBytesNeeded(model, 5, {}), (four + (1 << 20) - 1) >> 20 << 20);
    FakeDeviceMib device((four + (1 << 20) - 1) >> 20);
    BackendOptions options = fakeDeviceOptions();
    const uint64_t free = probeCuda(options.cudaModulePaths, 1).device.freeBytes;
    ASSERT_EQ(gpuLayersThatFit(model, free), 4);

    auto fitted = selectBackend(options);
    ASSERT_TRUE(fitted) << fitted.error().message;
    ASSERT_TRUE(prepareModel(*fitted, model));
    ASSERT_NE(fitted->cuda, nullptr) << fitted->note;
    const std::optional<LayerSplit> split = fitted->ops->layerSplit();
    ASSERT_TRUE(split.has_value()) << fitted->ops->description();
    EXPECT_EQ(split->secondFrom, 4);
    EXPECT_EQ(split->second, fitted->cuda);
    EXPECT_TRUE(fitted->note.ends_with(fmt::format("; using cuda; layers 4-7 on cuda:1, layers 0-3 on the cpu (all 8 "
                                                   "with a context of 512 tokens need {}, {} free)",
                                                   formatBytes(deviceBytesNeeded(model, 8, {})), formatBytes(free))))
        << fitted->note;
    EXPECT_TRUE(fitted->ops->description().starts_with("cuda: Fake GPU"));
    EXPECT_TRUE(fitted->ops->description().ends_with("; layers 4-7 of 8 (layers 0-3 on cpu: 1 threads, avx2)") ||
                fitted->ops->description().ends_with("; layers 4-7 of 8 (layers 0-3 on cpu: 1 threads, avx512)"))
        << fitted->ops->description();
    // Int8 products reach each backend as its own: Cpu the CPU's layers only.
    const auto int8Parts = [&](Int8Matmul mode) {
        fitted->ops->setInt8Matmul(mode);
        const std::string d = fitted->ops->description();
        const size_t cpu = d.find("on cpu: ");
        return std::pair{d.substr(0, cpu).find("int8 matmul") != std::string::npos,
                         d.find("int8 matmul", cpu) != std::string::npos};
    };
    EXPECT_EQ(int8Parts(Int8Matmul::Cpu), std::pair(false, true));
    EXPECT_EQ(int8Parts(Int8Matmul::On), std::pair(true, true));
    EXPECT_EQ(int8Parts(Int8Matmul::Off), std::pair(false, false));
    // The device holds the weights of layers 4-7 and the output, and the
    // KV pools of those 4 layers only (f16 K and V).
    const uint64_t weights = fitted->cuda->memory().inUseBy(cuda::MemoryUse::Weights);
    EXPECT_LE(weights, CudaOps::weightBytes(model, 4));
    EXPECT_GT(weights, CudaOps::weightBytes(model, 5));
    const KvLayout layout = kvLayoutForTokens(model.config(), 256, 16, DType::F16);
    auto pools = fitted->ops->createKvStorage(layout);
    ASSERT_TRUE(pools) << pools.error().message;
    EXPECT_EQ(fitted->cuda->memory().inUseBy(cuda::MemoryUse::KvCache), layout.bytes() / 2);
    EXPECT_NE((*pools)->view(0).k, nullptr) << "layer 0's pools are in host memory";
    EXPECT_EQ((*pools)->view(4).k, nullptr) << "layer 4's are on the device";
    // Q8_0 pools likewise, at 1.0625 bytes an element; f32 ones the device does not hold.
    const KvLayout q8 = kvLayoutForTokens(model.config(), 256, 16, DType::Q8_0);
    pools = fitted->ops->createKvStorage(q8);
    ASSERT_TRUE(pools) << pools.error().message;
    EXPECT_EQ(fitted->cuda->memory().inUseBy(cuda::MemoryUse::KvCache), q8.bytes() / 2);
    const auto f32 = fitted->ops->createKvStorage(kvLayoutForTokens(model.config(), 256, 16, DType::F32));
    ASSERT_FALSE(f32);
    EXPECT_NE(f32.error().message.find("keeps the KV cache in f16 or q8_0"), std::string::npos) << f32.error().message;
    pools = std::unexpected(Error{"gone"});
    // The automatic KV budget then holds the model's whole context.
    auto beside = kvMemoryBesideActivations(*fitted->ops, nullptr, model.config(), 256);
    ASSERT_TRUE(beside) << beside.error().message;
    EXPECT_GE(*beside, kvLayoutForTokens(model.config(), 512, 16, DType::F16).bytes());

    // A second engine on those weights runs the same split.
    auto sharing = selectBackend(options);
    ASSERT_TRUE(sharing) << sharing.error().message;
    ASSERT_TRUE(prepareModel(*sharing, model, {}, fitted->cuda->sharedWeights()));
    ASSERT_TRUE(sharing->ops->layerSplit().has_value());
    EXPECT_EQ(sharing->ops->layerSplit()->secondFrom, 4);
    EXPECT_TRUE(sharing->note.ends_with("; layers 4-7 on cuda:1, layers 0-3 on the cpu (as the weights it shares)"))
        << sharing->note;
    // One asking for another count of GPU layers uploads its own.
    BackendOptions two = options;
    two.gpuLayers = 2;
    auto own = selectBackend(two);
    ASSERT_TRUE(own) << own.error().message;
    ASSERT_TRUE(prepareModel(*own, model, {}, fitted->cuda->sharedWeights()));
    ASSERT_TRUE(own->ops->layerSplit().has_value()) << own->note;
    EXPECT_EQ(own->ops->layerSplit()->secondFrom, 6);
    EXPECT_NE(own->cuda->sharedWeights(), fitted->cuda->sharedWeights());
    own = std::unexpected(Error{"gone"});
    sharing = std::unexpected(Error{"gone"});
    fitted = std::unexpected(Error{"gone"});

    // As many as asked for.
    options.gpuLayers = 2;
    auto asked = selectBackend(options);
    ASSERT_TRUE(asked) << asked.error().message;
    ASSERT_TRUE(prepareModel(*asked, model));
    ASSERT_TRUE(asked->ops->layerSplit().has_value()) << asked->note;
    EXPECT_EQ(asked->ops->layerSplit()->secondFrom, 6);
    EXPECT_TRUE(asked->note.ends_with("; using cuda; layers 6-7 on cuda:1, layers 0-5 on the cpu")) << asked->note;
    asked = std::unexpected(Error{"gone"});

    // Every layer, asked for: they load if the upload takes them, without
    // the room the automatic count leaves.
    options.gpuLayers = 8;
    auto all = selectBackend(options);
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_TRUE(prepareModel(*all, model));
    ASSERT_NE(all->cuda, nullptr) << all->note;
    EXPECT_FALSE(all->ops->layerSplit().has_value());
    EXPECT_TRUE(all->note.ends_with("; using cuda")) << all->note;
    all = std::unexpected(Error{"gone"});
    // On a device they do not fit: the CPU, or an error when CUDA must run them.
    device.set(200);
    all = selectBackend(options);
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_TRUE(prepareModel(*all, model));
    EXPECT_EQ(all->cuda, nullptr);
    EXPECT_TRUE(all->note.starts_with("cuda:1: out of device memory")) << all->note;
    options.choice = BackendChoice::Cuda;
    auto required = selectBackend(options);
    ASSERT_TRUE(required) << required.error().message;
    EXPECT_FALSE(prepareModel(*required, model));

    // None: the CPU runs the model.
    options.gpuLayers = 0;
    auto none = selectBackend(options);
    ASSERT_TRUE(none) << none.error().message;
    const auto refused = prepareModel(*none, model);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message, "cuda:1: 0 GPU layers asked for with the cuda backend");
    options.choice = BackendChoice::Auto;
    none = selectBackend(options);
    ASSERT_TRUE(none) << none.error().message;
    ASSERT_TRUE(prepareModel(*none, model));
    EXPECT_EQ(none->cuda, nullptr);
    EXPECT_EQ(none->note, "cuda:1: 0 GPU layers asked for; using cpu");
}

TEST(BackendSelect, GpuLayersAreAutoOrACount) {
    EXPECT_EQ(parseGpuLayers("auto").value(), kGpuLayersThatFit);
    EXPECT_EQ(parseGpuLayers("0").value(), 0);
    EXPECT_EQ(parseGpuLayers("33").value(), 33);
    for (const char* bad : {"-1", "", "12x", "all"}) {
        const auto parsed = parseGpuLayers(bad);
        ASSERT_FALSE(parsed) << bad;
        EXPECT_EQ(parsed.error().message, fmt::format("GPU layers '{}': 'auto' or a count of layers (0 or more)", bad));
    }
}

TEST(BackendSelect, WeightsFitBesideWithTwoGiBToSpare) {
    constexpr uint64_t kGiB = 1ull << 30;
    EXPECT_TRUE(weightsFitBeside(14 * kGiB, 16 * kGiB));
    EXPECT_FALSE(weightsFitBeside(14 * kGiB + 1, 16 * kGiB));
    EXPECT_FALSE(weightsFitBeside(20 * kGiB, 16 * kGiB));
    EXPECT_TRUE(weightsFitBeside(0, kRoomBesideWeightsBytes));
    EXPECT_FALSE(weightsFitBeside(0, kRoomBesideWeightsBytes - 1));
}

TEST(CudaDevices, ListsEveryDeviceAndWhyOneIsUnusable) {
    const CudaDeviceList list = listCudaDevices({PAGODA_TEST_FAKE_SMALL_DEVICE_MODULE});
    ASSERT_EQ(list.devices.size(), 2u) << list.reason;
    EXPECT_TRUE(list.reason.empty());
    EXPECT_EQ(cudaDeviceLine(list.devices[0]), "cuda:0: unusable: compute capability 7.5 < 8.0 (Fake old GPU)");
    // A listing asks no device for its free memory (which would make a
    // context on it); the choice does.
    EXPECT_EQ(cudaDeviceLine(list.devices[1]), "cuda:1: Fake GPU (compute 9.0, 1 SMs, 0.00 GiB, driver CUDA 13.0)");
    EXPECT_EQ(list.devices[1].freeKnown, 0);
    const CudaProbeResult chosen = probeCuda({PAGODA_TEST_FAKE_SMALL_DEVICE_MODULE}, 1);
    EXPECT_EQ(chosen.device.freeKnown, 1);
    EXPECT_EQ(describeCudaDevice(chosen.device), "Fake GPU (compute 9.0, 1 SMs, 0.00 GiB free of 0.00 GiB, driver CUDA 13.0)");

    TempDir dir;
    const CudaDeviceList none = listCudaDevices({dir.path() / PAGODA_CUDA_MODULE_FILE});
    EXPECT_TRUE(none.devices.empty());
    EXPECT_TRUE(none.reason.starts_with("library not found: libpagoda_cuda.so")) << none.reason;

    // This machine's own: its devices, or why there are none.
    const CudaDeviceList real = listCudaDevices({PAGODA_TEST_CUDA_MODULE});
    EXPECT_NE(real.devices.empty(), real.reason.empty()) << real.reason;
    for (size_t i = 0; i < real.devices.size(); ++i) EXPECT_EQ(real.devices[i].deviceIndex, int(i));
}

TEST(BackendSelect, ADeviceThatCannotBeUsedFallsBackToTheCpuNamingIt) {
    BackendOptions options = fakeDeviceOptions();
    options.cudaDevice = 0;
    auto selected = selectBackend(options);
    ASSERT_TRUE(selected) << selected.error().message;
    EXPECT_EQ(selected->cuda, nullptr);
    EXPECT_EQ(selected->note, "cuda:0: unavailable: compute capability 7.5 < 8.0 (Fake old GPU); using cpu");

    options.cudaDevice = 5;
    options.choice = BackendChoice::Cuda;
    auto required = selectBackend(options);
    ASSERT_FALSE(required);
    EXPECT_EQ(required.error().message, "cuda:5: unavailable: CUDA device 5 asked for, 2 present");
}

}  // namespace
}  // namespace pagoda

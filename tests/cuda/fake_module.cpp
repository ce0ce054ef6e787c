// Stand-ins for CUDA modules in the loader tests. Built three ways:
// - with PAGODA_FAKE_ABI_VERSION: every entry point of module_api.h but a
//   foreign ABI version;
// - with PAGODA_FAKE_SMALL_DEVICE: a module that finds two devices: the
//   first too old to use, so that listing and choosing devices are tested,
//   the second of PAGODA_FAKE_DEVICE_MIB (1 MiB when unset), which holds
//   weights (which backends share, as the module's) and a KV pool, counted
//   against its size across every backend of the process, and runs nothing
//   (every other operation fails). At 1 MiB
//   no model fits, so falling back to the CPU after the upload is tested;
//   larger, a model loads there and idles, so making room on a GPU for the
//   next model is tested on machines without one;
// - without either: none of the entry points.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "kernels/cuda/device_backend.h"
#include "kernels/cuda/module_api.h"
#include "kernels/cuda/weight_upload.h"
#include "kernels/dtype.h"
#include "kernels/format_bytes.h"

#define PAGODA_FAKE_EXPORT extern "C" __attribute__((visibility("default")))

#if defined(PAGODA_FAKE_ABI_VERSION)
PAGODA_FAKE_EXPORT int pagoda_cuda_abi_version(void) { return PAGODA_FAKE_ABI_VERSION; }
PAGODA_FAKE_EXPORT void pagoda_cuda_probe(int, int, PagodaCudaProbe* out) { *out = PagodaCudaProbe{}; }
PAGODA_FAKE_EXPORT PagodaCudaBackend* pagoda_cuda_create(int, char*, size_t) { return nullptr; }
PAGODA_FAKE_EXPORT void pagoda_cuda_destroy(PagodaCudaBackend*) {}
#elif defined(PAGODA_FAKE_SMALL_DEVICE)
namespace {

using namespace pagoda::cuda;

constexpr const char* kName = "Fake GPU";
constexpr const char* kOldName = "Fake old GPU";

uint64_t deviceBytes() {
    const char* mib = std::getenv("PAGODA_FAKE_DEVICE_MIB");
    return (mib != nullptr ? std::strtoull(mib, nullptr, 10) : 1ull) << 20;
}

// Held on the device by every backend of the process.
std::atomic<uint64_t> g_held{0};

// Weights held until their last backend lets go, as the module's are.
class FakeWeights final : public DeviceWeights {
public:
    explicit FakeWeights(uint64_t bytes) : m_bytes(bytes) { g_held += bytes; }
    ~FakeWeights() override { g_held -= m_bytes; }
    int deviceIndex() const override { return 1; }
    uint64_t bytes() const override { return m_bytes; }

private:
    uint64_t m_bytes;
};

class SmallDevice final : public DeviceBackend {
public:
    SmallDevice() {
        m_info.index = 1;
        m_info.name = kName;
        m_info.ccMajor = 9;
        m_info.totalBytes = deviceBytes();
        m_info.freeBytes = freeBytes();
    }
    ~SmallDevice() override { g_held -= m_kv; }
    const DeviceInfo& device() const override { return m_info; }
    std::shared_ptr<const DeviceWeights> weights() const override { return m_weights; }
    Status uploadWeights(const std::vector<HostMatrix>& matrices, const std::vector<HostVector>& vectors,
                         const UploadProgressFn&) override {
        uint64_t bytes = 0;
        for (const HostMatrix& m : matrices) bytes += pagoda::rowBytes(m.type, size_t(m.cols)) * uint64_t(m.rows);
        for (const HostVector& v : vectors) bytes += uint64_t(v.n) * sizeof(float);
        if (m_weights) return Status::error("the backend has weights already");
        if (bytes + kUploadHeadroomBytes > freeBytes()) {
            return Status::error("out of device memory: Fake GPU has " + pagoda::formatBytes(freeBytes()));
        }
        m_weights = std::make_shared<FakeWeights>(bytes);
        return {};
    }
    Status useWeights(std::shared_ptr<const DeviceWeights> weights) override {
        if (m_weights) return Status::error("the backend has weights already");
        m_weights = std::dynamic_pointer_cast<const FakeWeights>(weights);
        if (!m_weights) return Status::error("no weights to share, or weights from another CUDA module");
        return {};
    }
    Status createKvPool(const KvPoolShape& shape) override {
        hold(m_kv, 0);
        const uint64_t rowBytes = shape.q8 ? uint64_t(shape.headDim) / 32 * 34 : 2ull * shape.headDim;
        const uint64_t bytes = 2 * rowBytes * shape.nLayers * shape.nKvHeads * shape.blockSize * shape.numBlocks;
        if (bytes > freeBytes()) return Status::error("out of device memory: Fake GPU has " + pagoda::formatBytes(freeBytes()));
        hold(m_kv, bytes);
        return {};
    }
    StatusOr<DeviceBuffer> allocate(size_t, MemoryUse) override { return unusable(); }
    Status copyToDevice(const void*, void*, size_t) override { return unusable(); }
    Status copyToHostSync(const void*, void*, size_t) override { return unusable(); }
    Status copyOnDevice(void*, const void*, size_t) override { return unusable(); }
    Status copyKvBlocks(const int32_t*, int) override { return unusable(); }
    Status synchronize() override { return unusable(); }
    MemoryAccounting memory() override {
        MemoryAccounting books;
        const uint64_t weights = m_weights ? m_weights->bytes() : 0;
        books.inUse[size_t(MemoryUse::Weights)] = weights;
        books.inUse[size_t(MemoryUse::KvCache)] = m_kv;
        books.reserved = weights + m_kv;
        books.deviceFree = freeBytes();
        books.deviceTotal = deviceBytes();
        return books;
    }
    StatusOr<double> measureCopyBandwidthSync(size_t, int) override { return unusable(); }
    StatusOr<double> measureGemmTflopsSync(int, int) override { return unusable(); }
    Status embed(const void*, const int32_t*, int, float*) override { return unusable(); }
    Status rmsNorm(const float*, const float*, float*, int64_t, int64_t, float) override { return unusable(); }
    Status addRmsNorm(float*, const float*, const float*, float*, int64_t, int64_t, float) override {
        return unusable();
    }
    Status matmul(const void*, const float*, float*, int64_t) override { return unusable(); }
    Status matmuls(const void* const*, float* const*, int, const float*, int64_t) override { return unusable(); }
    Status rope(float*, int, int, const int32_t*, const RopeShape&) override { return unusable(); }
    Status storeKv(int, const float*, const float*, const int32_t*, int) override { return unusable(); }
    Status ropeStoreKv(int, float*, float*, const float*, int, int, const int32_t*, const int32_t*,
                       const RopeShape&) override {
        return unusable();
    }
    Status attention(const AttentionCall&) override { return unusable(); }
    Status swiglu(const float*, const float*, float*, int64_t) override { return unusable(); }
    Status geglu(const float*, const float*, float*, int64_t) override { return unusable(); }
    Status scale(float*, float, int64_t) override { return unusable(); }
    Status softcap(float*, float, int64_t) override { return unusable(); }
    Status matmulSwiglu(const void*, const void*, const float*, float*, float*, int64_t) override {
        return unusable();
    }
    Status add(float*, const float*, int64_t) override { return unusable(); }
    Status addBias(float*, const float*, int64_t, int64_t) override { return unusable(); }
    StatusOr<GraphMode> beginDecodeGraph(const DecodeStep&) override { return unusable(); }
    Status endDecodeGraph(bool) override { return unusable(); }
    void dropDecodeGraphs() override {}
    void setInt8Matmul(bool) override {}
    void setDependentLaunch(bool) override {}

private:
    static Status unusable() { return Status::error("the fake device runs nothing"); }
    static uint64_t freeBytes() { return deviceBytes() - g_held; }
    // Replaces what `mine` held with `bytes`.
    static void hold(uint64_t& mine, uint64_t bytes) {
        g_held -= mine;
        mine = bytes;
        g_held += bytes;
    }

    DeviceInfo m_info;
    std::shared_ptr<const FakeWeights> m_weights;
    uint64_t m_kv = 0;
};

}  // namespace

PAGODA_FAKE_EXPORT int pagoda_cuda_abi_version(void) { return PAGODA_CUDA_ABI_VERSION; }
PAGODA_FAKE_EXPORT void pagoda_cuda_probe(int deviceIndex, int flags, PagodaCudaProbe* out) {
    *out = PagodaCudaProbe{};
    out->deviceIndex = deviceIndex;
    out->deviceCount = 2;
    out->driverVersion = 13000;
    out->runtimeVersion = 13000;
    if (deviceIndex == 1) {
        out->available = 1;
        std::strcpy(out->deviceName, kName);
        out->ccMajor = 9;
        out->smCount = 1;
        out->totalBytes = deviceBytes();
        if (flags & PAGODA_CUDA_PROBE_FREE_MEMORY) {
            out->freeBytes = deviceBytes() - g_held;
            out->freeKnown = 1;
        }
    } else if (deviceIndex == 0) {
        std::strcpy(out->deviceName, kOldName);
        out->ccMajor = 7;
        out->ccMinor = 5;
        std::strcpy(out->reason, "compute capability 7.5 < 8.0 (Fake old GPU)");
    } else {
        std::snprintf(out->reason, sizeof out->reason, "CUDA device %d asked for, 2 present", deviceIndex);
    }
}
PAGODA_FAKE_EXPORT PagodaCudaBackend* pagoda_cuda_create(int deviceIndex, char* error, size_t errorBytes) {
    if (deviceIndex != 1) {
        std::snprintf(error, errorBytes, "CUDA device %d: not usable", deviceIndex);
        return nullptr;
    }
    return reinterpret_cast<PagodaCudaBackend*>(static_cast<DeviceBackend*>(new SmallDevice));
}
PAGODA_FAKE_EXPORT void pagoda_cuda_destroy(PagodaCudaBackend* backend) {
    delete reinterpret_cast<DeviceBackend*>(backend);
}
#else
PAGODA_FAKE_EXPORT int pagoda_fake_module_marker(void) { return 0; }
#endif

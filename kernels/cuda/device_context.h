#pragma once
// What the CUDA backend's kernels run with, owned by one object (no
// globals): the device, one stream, the cuBLAS and cuBLASLt handles, their
// workspace and GEMM plans, and the device memory pool.

#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include <functional>
#include <memory>

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/memory_pool.h"
#include "kernels/cuda/probe.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

struct StreamDeleter {
    void operator()(cudaStream_t stream) const { cudaStreamDestroy(stream); }
};
using StreamPtr = std::unique_ptr<CUstream_st, StreamDeleter>;

struct EventDeleter {
    void operator()(cudaEvent_t event) const { cudaEventDestroy(event); }
};
using EventPtr = std::unique_ptr<CUevent_st, EventDeleter>;

struct CublasDeleter {
    void operator()(cublasHandle_t handle) const;
};
using CublasPtr = std::unique_ptr<cublasContext, CublasDeleter>;

struct CublasLtDeleter {
    void operator()(cublasLtHandle_t handle) const { cublasLtDestroy(handle); }
};
using CublasLtPtr = std::unique_ptr<cublasLtContext, CublasLtDeleter>;

// cudaMalloc / cudaFree / cudaMemGetInfo on the current device.
class CudaRawAllocator final : public RawAllocator {
public:
    void* allocate(size_t bytes) override;
    void release(void* data) override;
    void memoryInfo(uint64_t& freeBytes, uint64_t& totalBytes) override;
};

class CudaContext {
public:
    static constexpr size_t kBlasWorkspaceBytes = 32u << 20;

    // Makes `deviceIndex` current and creates the stream, handles and
    // workspace. Errors name the failing call (the probe should have said
    // whether there is a usable device).
    static StatusOr<std::unique_ptr<CudaContext>> create(int deviceIndex);
    // Waits for the stream, then frees everything.
    ~CudaContext();
    CudaContext(const CudaContext&) = delete;
    CudaContext& operator=(const CudaContext&) = delete;

    const DeviceInfo& device() const { return m_device; }
    // Makes this context's device the calling thread's current one. CUDA
    // keeps the current device per host thread, and a backend is made on
    // one thread (the app's loader) and run on another (its engine), so
    // every entry point of the backend calls this first: a cudaGetDevice
    // when the device is current already. A failing cudaSetDevice is left
    // for the call after it to report (its launch fails on the wrong
    // device's stream).
    void makeCurrent() const;
    // Shared memory of one SM, all CTAs on it together (H100: 228 KiB).
    size_t sharedBytesPerSm() const { return m_sharedBytesPerSm; }
    cudaStream_t stream() const { return m_stream.get(); }
    MemoryPool& memory() { return *m_pool; }
    BlasHandles blas();

    // Blocks the host until the stream's work is done.
    Status synchronize();
    StatusOr<EventPtr> createEvent();
    // Milliseconds per call of `launch` (which issues work on the stream):
    // one call as a warm-up, then CUDA events around `repetitions` calls.
    StatusOr<double> timeMs(int repetitions, const std::function<Status()>& launch);
    // Device-to-device copy bandwidth in GB/s (bytes read + written), from
    // `repetitions` copies of `bytes` (timeMs): the decode roofline.
    StatusOr<double> copyBandwidthGBs(size_t bytes, int repetitions);

private:
    CudaContext() = default;

    DeviceInfo m_device;
    size_t m_sharedBytesPerSm = 0;
    CudaRawAllocator m_raw;
    std::unique_ptr<MemoryPool> m_pool;
    StreamPtr m_stream;
    CublasPtr m_cublas;
    CublasLtPtr m_cublasLt;
    DeviceBuffer m_blasWorkspace;
    GemmPlanCache m_gemmPlans;
};

}  // namespace pagoda::cuda

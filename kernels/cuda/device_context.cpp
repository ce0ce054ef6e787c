#include "kernels/cuda/device_context.h"

#include <cublas_v2.h>

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {

void CublasDeleter::operator()(cublasHandle_t handle) const { cublasDestroy(handle); }

void* CudaRawAllocator::allocate(size_t bytes) {
    void* data = nullptr;
    if (cudaMalloc(&data, bytes) != cudaSuccess) {
        cudaGetLastError();  // out of memory is not sticky: clear it
        return nullptr;
    }
    return data;
}

void CudaRawAllocator::release(void* data) { cudaFree(data); }

void CudaRawAllocator::memoryInfo(uint64_t& freeBytes, uint64_t& totalBytes) {
    size_t freeNow = 0;
    size_t total = 0;
    if (cudaMemGetInfo(&freeNow, &total) != cudaSuccess) cudaGetLastError();
    freeBytes = freeNow;
    totalBytes = total;
}

StatusOr<std::unique_ptr<CudaContext>> CudaContext::create(int deviceIndex) {
    std::unique_ptr<CudaContext> context(new CudaContext());
    const DeviceProbe probe = probeDevice(deviceIndex);
    if (!probe.available) return Status::error("CUDA device " + std::to_string(deviceIndex) + ": " + probe.reason);
    context->m_device = probe.info;
    PAGODA_CUDA_CHECK(cudaSetDevice(deviceIndex));
    int sharedPerSm = 0;
    PAGODA_CUDA_CHECK(cudaDeviceGetAttribute(&sharedPerSm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, deviceIndex));
    context->m_sharedBytesPerSm = size_t(sharedPerSm);
    context->m_pool = std::make_unique<MemoryPool>(context->m_raw);

    cudaStream_t stream = nullptr;
    PAGODA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    context->m_stream.reset(stream);
    cublasHandle_t blas = nullptr;
    PAGODA_CUDA_CHECK(cublasCreate(&blas));
    context->m_cublas.reset(blas);
    cublasLtHandle_t lt = nullptr;
    PAGODA_CUDA_CHECK(cublasLtCreate(&lt));
    context->m_cublasLt.reset(lt);
    PAGODA_CUDA_ASSIGN_OR_RETURN(context->m_blasWorkspace,
                                 context->m_pool->allocate(kBlasWorkspaceBytes, MemoryUse::Workspace));
    PAGODA_CUDA_CHECK(cublasSetStream(blas, stream));
    PAGODA_CUDA_CHECK(cublasSetWorkspace(blas, context->m_blasWorkspace.data(), kBlasWorkspaceBytes));
    return context;
}

CudaContext::~CudaContext() {
    makeCurrent();
    if (m_stream) cudaStreamSynchronize(m_stream.get());
}

void CudaContext::makeCurrent() const {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != m_device.index) cudaSetDevice(m_device.index);
}

BlasHandles CudaContext::blas() {
    return BlasHandles{m_cublas.get(), m_cublasLt.get(), m_blasWorkspace.data(), m_blasWorkspace.bytes(),
                       &m_gemmPlans};
}

Status CudaContext::synchronize() {
    PAGODA_CUDA_CHECK(cudaStreamSynchronize(m_stream.get()));
    return {};
}

StatusOr<EventPtr> CudaContext::createEvent() {
    cudaEvent_t event = nullptr;
    PAGODA_CUDA_CHECK(cudaEventCreate(&event));
    return EventPtr(event);
}

StatusOr<double> CudaContext::timeMs(int repetitions, const std::function<Status()>& launch) {
    if (repetitions < 1) return Status::error("timeMs: " + std::to_string(repetitions) + " repetitions");
    PAGODA_CUDA_ASSIGN_OR_RETURN(EventPtr start, createEvent());
    PAGODA_CUDA_ASSIGN_OR_RETURN(EventPtr stop, createEvent());
    PAGODA_CUDA_RETURN_IF_ERROR(launch());
    PAGODA_CUDA_CHECK(cudaEventRecord(start.get(), stream()));
    for (int r = 0; r < repetitions; ++r) PAGODA_CUDA_RETURN_IF_ERROR(launch());
    PAGODA_CUDA_CHECK(cudaEventRecord(stop.get(), stream()));
    PAGODA_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    float ms = 0.0f;
    PAGODA_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    return double(ms) / repetitions;
}

StatusOr<double> CudaContext::copyBandwidthGBs(size_t bytes, int repetitions) {
    if (bytes == 0 || repetitions < 1) return Status::error("copyBandwidthGBs: nothing to copy");
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer src, memory().allocate(bytes, MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dst, memory().allocate(bytes, MemoryUse::Workspace));
    PAGODA_CUDA_CHECK(cudaMemsetAsync(src.data(), 1, bytes, stream()));
    PAGODA_CUDA_ASSIGN_OR_RETURN(const double ms, timeMs(repetitions, [&] {
        return checkCall(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream()),
                         "cudaMemcpyAsync", __FILE__, __LINE__);
    }));
    return 2.0 * double(bytes) / (ms * 1e-3) / 1e9;
}

}  // namespace pagoda::cuda

#pragma once
// Shared by the CUDA kernel tests: a fixture owning a CudaContext that
// skips with "no CUDA device: <reason>" where there is none, device
// upload/download helpers, and random inputs.

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cuda/device_context.h"
#include "kernels/cuda/probe.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda::test {

class CudaKernelTest : public ::testing::Test {
public:
    void SetUp() override {
        const DeviceProbe probe = probeDevice(0);
        if (!probe.available) GTEST_SKIP() << "no CUDA device: " << probe.reason;
        auto context = CudaContext::create(0);
        ASSERT_TRUE(context.ok()) << context.status().message();
        m_context = std::move(context.value());
    }

    cudaStream_t stream() const { return m_context->stream(); }
    CudaContext& context() { return *m_context; }

    template <class T>
    DeviceBuffer upload(const std::vector<T>& host) {
        auto buffer = m_context->memory().allocate(std::max<size_t>(1, host.size()) * sizeof(T), MemoryUse::Workspace);
        EXPECT_TRUE(buffer.ok()) << buffer.status().message();
        // On the kernels' stream: cudaMemcpy from pageable memory may return
        // before its DMA is done, and the non-blocking stream would not wait
        // for the legacy default stream.
        if (!host.empty()) {
            EXPECT_EQ(cudaMemcpyAsync(buffer->data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice,
                                      stream()),
                      cudaSuccess);
        }
        return std::move(buffer.value());
    }

    template <class T>
    std::vector<T> download(const DeviceBuffer& buffer, size_t n) {
        std::vector<T> host(n);
        EXPECT_EQ(cudaStreamSynchronize(stream()), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(host.data(), buffer.data(), n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
        return host;
    }

    // Fails the test on an error status, naming it.
    static void expectOk(const Status& status) { EXPECT_TRUE(status.ok()) << status.message(); }

    // The context dies after the test body's buffers.
    std::unique_ptr<CudaContext> m_context;
};

inline std::vector<float> randomFloats(std::mt19937_64& rng, size_t n, float amplitude = 1.0f) {
    std::uniform_real_distribution<float> dist(-amplitude, amplitude);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

}  // namespace pagoda::cuda::test

// pagoda-cuda-microbench: where quantized products should switch from the
// kernels that read blocks in place (quantMatmul: matvec up to 8 tokens,
// f32 tiles beyond) to f16 panels of the weights through cuBLASLt
// (dequantizedGemm). This times both paths on one device for a range of
// token counts and prints the ratio; CudaBackend's switch
// (kDequantizedMinTokens, 8 tokens) was set from its output on an H200. Times are
// CUDA events around `reps` launches, after a warm-up (CudaContext::timeMs);
// never asserted on.
//
// usage: pagoda-cuda-microbench [--rows R] [--cols C] [--reps N]

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/probe.h"
#include "kernels/cuda/quant_matmul.h"

namespace pagoda::cuda {
namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "pagoda-cuda-microbench: %s\n", what.c_str());
    return 1;
}

StatusOr<DeviceBuffer> upload(CudaContext& context, const void* host, size_t bytes) {
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer buffer, context.memory().allocate(bytes, MemoryUse::Workspace));
    PAGODA_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), host, bytes, cudaMemcpyHostToDevice, context.stream()));
    PAGODA_CUDA_CHECK(cudaStreamSynchronize(context.stream()));
    return buffer;
}

Status run(int64_t rows, int64_t cols, int reps) {
    PAGODA_CUDA_ASSIGN_OR_RETURN(std::unique_ptr<CudaContext> context, CudaContext::create(0));
    const std::vector<int64_t> tokenCounts = {8, 12, 16, 17, 24, 32, 48, 64, 128, 256};
    const int64_t maxTokens = tokenCounts.back();
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(size_t(maxTokens * cols));
    for (float& v : x) v = normal(rng);
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dX, upload(*context, x.data(), x.size() * sizeof(float)));
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dY, context->memory().allocate(size_t(maxTokens * rows) * sizeof(float),
                                                                             MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer panel, context->memory().allocate(size_t(rows * cols) * sizeof(uint16_t),
                                                                                MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(
        DeviceBuffer scratch,
        context->memory().allocate(gemmScratchBytes({DType::F16, nullptr, rows, cols}, maxTokens), MemoryUse::Workspace));

    std::printf("%lld x %lld weights, %d launches each; microseconds per product\n", (long long)rows, (long long)cols,
                reps);
    std::printf("%-6s %7s %12s %12s %9s\n", "type", "tokens", "in place", "f16 panels", "ratio");
    for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
        const size_t stride = rowBytes(type, size_t(cols));
        std::vector<uint8_t> weights(stride * size_t(rows));
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            for (float& v : row) v = normal(rng);
            cpu::quantizeRow(type, row.data(), weights.data() + size_t(r) * stride, cols);
        }
        PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dW, upload(*context, weights.data(), weights.size()));
        const DeviceWeight w{type, dW.data(), rows, cols};
        for (int64_t n : tokenCounts) {
            PAGODA_CUDA_ASSIGN_OR_RETURN(const double inPlace, context->timeMs(reps, [&] {
                return quantMatmul(context->stream(), w, dX.as<float>(), dY.as<float>(), n);
            }));
            PAGODA_CUDA_ASSIGN_OR_RETURN(const double panels, context->timeMs(reps, [&] {
                return dequantizedGemm(context->blas(), context->stream(), w, dX.as<float>(), dY.as<float>(), n, rows,
                                       panel.data(), nullptr, scratch.data());
            }));
            std::printf("%-6s %7lld %12.1f %12.1f %8.2fx\n", std::string(dtypeName(type)).c_str(), (long long)n,
                        1e3 * inPlace, 1e3 * panels, inPlace / panels);
        }
    }
    return {};
}

}  // namespace
}  // namespace pagoda::cuda

int main(int argc, char** argv) {
    int64_t rows = 4096;
    int64_t cols = 4096;
    int reps = 20;
    if (argc % 2 == 0) return pagoda::cuda::fail("usage: pagoda-cuda-microbench [--rows R] [--cols C] [--reps N]");
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string option = argv[i];
        const long long value = std::atoll(argv[i + 1]);
        if (option == "--rows" && value > 0) {
            rows = value;
        } else if (option == "--cols" && value >= 256 && value % 256 == 0) {
            cols = value;
        } else if (option == "--reps" && value > 0) {
            reps = int(value);
        } else {
            return pagoda::cuda::fail("bad option " + option + " " + argv[i + 1] +
                                      " (--rows R, --cols C a multiple of 256, --reps N)");
        }
    }
    const pagoda::cuda::DeviceProbe probe = pagoda::cuda::probeDevice(0);
    if (!probe.available) return pagoda::cuda::fail("no CUDA device: " + probe.reason);
    const pagoda::cuda::Status status = pagoda::cuda::run(rows, cols, reps);
    if (!status.ok()) return pagoda::cuda::fail(status.message());
    return 0;
}

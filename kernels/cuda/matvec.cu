#include "kernels/cuda/matvec.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/matvec_kernel.cuh"

namespace pagoda::cuda {
namespace {

template <DType T, int NT>
void launchTokens(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    const dim3 grid(unsigned(ceilDiv(w.rows, mv::kRows)), unsigned(ceilDiv(nTokens, NT)));
    mv::matvecKernel<T, NT><<<grid, mv::kWarps * 32, 0, stream>>>(
        static_cast<const uint8_t*>(w.data), int64_t(rowBytes(w.type, size_t(w.cols))), x, y, w.rows, w.cols,
        nTokens);
}

template <DType T>
void launch(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    switch (mv::tokenGroup(nTokens)) {
    case 1: launchTokens<T, 1>(stream, w, x, y, nTokens); break;
    case 4: launchTokens<T, 4>(stream, w, x, y, nTokens); break;
    default: launchTokens<T, 8>(stream, w, x, y, nTokens); break;
    }
}

}  // namespace

bool matvecTakes(const DeviceWeight& w) {
    if (w.rows < 1 || w.cols < 8 || w.cols % 8 != 0) return false;
    if (isCudaQuantType(w.type)) return w.cols % dtypeInfo(w.type).blockElements == 0;
    const bool floatType = w.type == DType::F32 || w.type == DType::F16 || w.type == DType::BF16;
    return floatType && reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
}

Status matvec(cudaStream_t stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    if (!matvecTakes(w)) {
        return Status::error("matvec: a " + std::to_string(w.rows) + " x " + std::to_string(w.cols) + " " +
                             std::string(dtypeName(w.type)) +
                             " matrix (f32, f16, bf16 with 16-byte aligned rows, or block-quantized; columns a "
                             "multiple of 8 and of the block size)");
    }
    if (nTokens < 0 || nTokens > kMatvecMaxTokens) {
        return Status::error("matvec: " + std::to_string(nTokens) + " tokens (at most " +
                             std::to_string(kMatvecMaxTokens) + ")");
    }
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) return Status::error("matvec: x is not 16-byte aligned");
    if (nTokens == 0) return {};
    switch (w.type) {
    case DType::F32: launch<DType::F32>(stream, w, x, y, nTokens); break;
    case DType::F16: launch<DType::F16>(stream, w, x, y, nTokens); break;
    case DType::BF16: launch<DType::BF16>(stream, w, x, y, nTokens); break;
    default: visitQuantType(w.type, [&](auto q) { launch<decltype(q)::value>(stream, w, x, y, nTokens); }); break;
    }
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

#include "kernels/cuda/matvec.h"

#include <string>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/matvec_q8_kernel.cuh"

namespace pagoda::cuda {
namespace {

template <DType T, int NT, mv::Product P>
void launchTokens(const LaunchStream& stream, const mv::Matrices& m, int64_t cols, const float* x, int64_t nTokens) {
    const unsigned ctas = P == mv::Product::Plain ? m.firstCta[m.count] : unsigned(ceilDiv(m.rows[0], mv::kRows / 2));
    const dim3 grid(ctas, unsigned(ceilDiv(nTokens, NT)));
    launchKernel(stream, mv::matvecKernel<T, NT, P>, grid, mv::kWarps * 32, 0, m, int64_t(rowBytes(T, size_t(cols))),
                 x, cols, nTokens);
}

template <DType T, mv::Product P>
void launch(const LaunchStream& stream, const mv::Matrices& m, int64_t cols, const float* x, int64_t nTokens) {
    switch (mv::tokenGroup(nTokens)) {
    case 1: launchTokens<T, 1, P>(stream, m, cols, x, nTokens); break;
    case 4: launchTokens<T, 4, P>(stream, m, cols, x, nTokens); break;
    default: launchTokens<T, 8, P>(stream, m, cols, x, nTokens); break;
    }
}

template <DType T, int NT, mv::Product P>
void launchInt8Tokens(const LaunchStream& stream, const mv::Matrices& m, const Int8Activations& x) {
    const unsigned ctas = P == mv::Product::Plain ? m.firstCta[m.count] : unsigned(ceilDiv(m.rows[0], mv::kRows / 2));
    const dim3 grid(ctas, unsigned(ceilDiv(x.nTokens, NT)));
    launchKernel(stream, mv::matvecQ8Kernel<T, NT, P>, grid, mv::kWarps * 32, 0, m,
                 int64_t(rowBytes(T, size_t(x.cols))), mv::Q8Activations{x.q, x.ds}, x.cols, x.nTokens);
}

template <mv::Product P>
Status launchInt8(const LaunchStream& stream, DType type, const mv::Matrices& m, const Int8Activations& x) {
    const bool known = visitQuantType(type, [&](auto q) {
        constexpr DType T = decltype(q)::value;
        switch (mv::tokenGroup(x.nTokens)) {
        case 1: launchInt8Tokens<T, 1, P>(stream, m, x); break;
        case 4: launchInt8Tokens<T, 4, P>(stream, m, x); break;
        default: launchInt8Tokens<T, 8, P>(stream, m, x); break;
        }
    });
    if (!known) return Status::error("matvec: no int8 kernel for " + std::string(dtypeName(type)));
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

template <mv::Product P>
Status launchType(const LaunchStream& stream, DType type, const mv::Matrices& m, int64_t cols, const float* x,
                  int64_t nTokens) {
    switch (type) {
    case DType::F32: launch<DType::F32, P>(stream, m, cols, x, nTokens); break;
    case DType::F16: launch<DType::F16, P>(stream, m, cols, x, nTokens); break;
    case DType::BF16: launch<DType::BF16, P>(stream, m, cols, x, nTokens); break;
    default: visitQuantType(type, [&](auto q) { launch<decltype(q)::value, P>(stream, m, cols, x, nTokens); }); break;
    }
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

std::string describe(const DeviceWeight& w) {
    return "a " + std::to_string(w.rows) + " x " + std::to_string(w.cols) + " " + std::string(dtypeName(w.type)) +
           " matrix";
}

// The launch's matrices, checked as matvecs documents.
StatusOr<mv::Matrices> matrices(const DeviceWeight* w, float* const* y, int count, const float* x, int64_t nTokens) {
    mv::Matrices m;
    m.count = count;
    for (int i = 0; i < count; ++i) {
        if (!matvecTakes(w[i])) {
            return Status::error("matvec: " + describe(w[i]) +
                                 " (f32, f16, bf16 with 16-byte aligned rows, or block-quantized with aligned blocks; "
                                 "columns a multiple of 8 and of the block size)");
        }
        if (w[i].type != w[0].type || w[i].cols != w[0].cols) {
            return Status::error("matvec: " + describe(w[i]) + " in one launch with " + describe(w[0]));
        }
        m.w[i] = static_cast<const uint8_t*>(w[i].data);
        m.y[i] = y[i];
        m.rows[i] = w[i].rows;
        m.firstCta[i + 1] = m.firstCta[i] + unsigned(ceilDiv(w[i].rows, mv::kRows));
    }
    if (nTokens < 0 || nTokens > kMatvecMaxTokens) {
        return Status::error("matvec: " + std::to_string(nTokens) + " tokens (at most " +
                             std::to_string(kMatvecMaxTokens) + ")");
    }
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) return Status::error("matvec: x is not 16-byte aligned");
    return m;
}

// The int8 launch's matrices: as matrices() checks them, and each with an
// int8 kernel, its columns those of x.
StatusOr<mv::Matrices> int8Matrices(const DeviceWeight* w, float* const* y, int count, const Int8Activations& x) {
    for (int i = 0; i < count; ++i) {
        if (!matvecInt8Takes(w[i]) || w[i].cols != x.cols) {
            return Status::error("matvec: no int8 product of " + describe(w[i]) + " with " + std::to_string(x.cols) +
                                 " int8 activations (the block-quantized types; Q4_K, Q5_K with 16-byte aligned rows)");
        }
    }
    return matrices(w, y, count, reinterpret_cast<const float*>(x.q), x.nTokens);
}

// Bytes of the int8 activations' q, rounded up to keep ds 16-byte aligned.
size_t int8QuantBytes(int64_t cols, int64_t nTokens) { return (size_t(cols) * size_t(nTokens) + 15) / 16 * 16; }

}  // namespace

size_t int8ActivationBytes(int64_t cols, int64_t nTokens) {
    return int8QuantBytes(cols, nTokens) + size_t(nTokens) * size_t(cols / mv::kQ8Block) * 2 * sizeof(float);
}

StatusOr<Int8Activations> quantizeActivations(const LaunchStream& stream, const float* x, int64_t cols, int64_t nTokens,
                                              void* workspace) {
    if (cols < mv::kQ8Block || cols % mv::kQ8Block != 0 || nTokens < 0 ||
        reinterpret_cast<uintptr_t>(workspace) % 16 != 0) {
        return Status::error("quantizeActivations: " + std::to_string(nTokens) + " x " + std::to_string(cols) +
                             " (columns a multiple of 32, a 16-byte aligned workspace)");
    }
    Int8Activations out;
    out.q = static_cast<const int8_t*>(workspace);
    out.ds = reinterpret_cast<const float*>(static_cast<const uint8_t*>(workspace) + int8QuantBytes(cols, nTokens));
    out.cols = cols;
    out.nTokens = nTokens;
    const int64_t blocks = nTokens * (cols / mv::kQ8Block);
    if (blocks == 0) return out;
    launchKernel(stream, mv::quantizeActivationsKernel, unsigned(ceilDiv(blocks, mv::kQ8BlocksPerCta)),
                 mv::kQ8BlocksPerCta * 32, 0, x, blocks, const_cast<int8_t*>(out.q), const_cast<float*>(out.ds));
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return out;
}

bool matvecInt8Takes(const DeviceWeight& w) {
    const int alignment = mv::q8Alignment(w.type);
    return alignment > 0 && matvecTakes(w) && reinterpret_cast<uintptr_t>(w.data) % alignment == 0 &&
           rowBytes(w.type, size_t(w.cols)) % size_t(alignment) == 0;
}

Status matvecsInt8(const LaunchStream& stream, const DeviceWeight* w, float* const* y, int count,
                   const Int8Activations& x) {
    if (count < 1 || count > kMatvecMaxMatrices) {
        return Status::error("matvec: " + std::to_string(count) + " matrices in one launch (1 to " +
                             std::to_string(kMatvecMaxMatrices) + ")");
    }
    PAGODA_CUDA_ASSIGN_OR_RETURN(const mv::Matrices m, int8Matrices(w, y, count, x));
    if (x.nTokens == 0) return {};
    return launchInt8<mv::Product::Plain>(stream, w[0].type, m, x);
}

Status matvecSwigluInt8(const LaunchStream& stream, const DeviceWeight& gate, const DeviceWeight& up,
                        const Int8Activations& x, float* out) {
    if (up.rows != gate.rows) return Status::error("matvecSwiglu: gate is " + describe(gate) + ", up " + describe(up));
    const DeviceWeight w[] = {gate, up};
    float* const y[] = {out, nullptr};
    PAGODA_CUDA_ASSIGN_OR_RETURN(const mv::Matrices m, int8Matrices(w, y, 2, x));
    if (x.nTokens == 0) return {};
    return launchInt8<mv::Product::Swiglu>(stream, gate.type, m, x);
}

bool matvecTakes(const DeviceWeight& w) {
    if (w.rows < 1 || w.cols < 8 || w.cols % 8 != 0) return false;
    if (isCudaQuantType(w.type)) return w.cols % dtypeInfo(w.type).blockElements == 0 && quantBlocksAligned(w);
    const bool floatType = w.type == DType::F32 || w.type == DType::F16 || w.type == DType::BF16;
    return floatType && reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
}

Status matvecs(const LaunchStream& stream, const DeviceWeight* w, float* const* y, int count, const float* x,
               int64_t nTokens) {
    if (count < 1 || count > kMatvecMaxMatrices) {
        return Status::error("matvec: " + std::to_string(count) + " matrices in one launch (1 to " +
                             std::to_string(kMatvecMaxMatrices) + ")");
    }
    PAGODA_CUDA_ASSIGN_OR_RETURN(const mv::Matrices m, matrices(w, y, count, x, nTokens));
    if (nTokens == 0) return {};
    return launchType<mv::Product::Plain>(stream, w[0].type, m, w[0].cols, x, nTokens);
}

Status matvecSwiglu(const LaunchStream& stream, const DeviceWeight& gate, const DeviceWeight& up, const float* x,
                    float* out, int64_t nTokens) {
    if (up.rows != gate.rows) return Status::error("matvecSwiglu: gate is " + describe(gate) + ", up " + describe(up));
    const DeviceWeight w[] = {gate, up};
    float* const y[] = {out, nullptr};
    PAGODA_CUDA_ASSIGN_OR_RETURN(const mv::Matrices m, matrices(w, y, 2, x, nTokens));
    if (nTokens == 0) return {};
    return launchType<mv::Product::Swiglu>(stream, gate.type, m, gate.cols, x, nTokens);
}

std::vector<std::vector<int>> matvecGroups(const std::vector<DeviceWeight>& w, const std::vector<bool>& viaMatvec) {
    std::vector<std::vector<int>> groups;
    std::vector<bool> grouped(w.size(), false);
    for (size_t i = 0; i < w.size(); ++i) {
        if (!viaMatvec[i] || grouped[i]) continue;
        std::vector<int> group;
        for (size_t j = i; j < w.size() && int(group.size()) < kMatvecMaxMatrices; ++j) {
            if (viaMatvec[j] && !grouped[j] && w[j].type == w[i].type && w[j].cols == w[i].cols) {
                group.push_back(int(j));
                grouped[j] = true;
            }
        }
        groups.push_back(std::move(group));
    }
    return groups;
}

Status matvec(const LaunchStream& stream, const DeviceWeight& w, const float* x, float* y, int64_t nTokens) {
    return matvecs(stream, &w, &y, 1, x, nTokens);
}

}  // namespace pagoda::cuda

// The matvec kernel's own source compiled as host C++: cuda_shim.h first,
// then the kernel header (see decode_kernel_host.cpp).
#include "tests/cuda/emulation/cuda_shim.h"

#include "kernels/cuda/matvec_q8_kernel.cuh"

#if !defined(PAGODA_EMULATION_SHADOW_CUDA_FP16)
#error "tests/cuda/emulation/shadow must come before CUDA's include directory on the include path"
#endif

#include <string>
#include <utility>

#include "kernels/cuda/device_weight.h"
#include "tests/cuda/emulation/matvec_kernel_host.h"

namespace pagoda::cuda::emulation {
namespace {

// CTAs of a Swiglu launch: each takes mv::kRows / 2 rows of gate and of up.
int64_t matvecSwigluCtas(int64_t rows) { return (rows + mv::kRows / 2 - 1) / (mv::kRows / 2); }

// x: f32 activations, or int8 ones (x8 non-null: matvecQ8Kernel).
template <DType T, int NT, mv::Product P>
Findings runTokens(const mv::Matrices& m, int64_t cols, const float* x, const Int8Input* x8, int64_t nTokens,
                   LaunchConfig config) {
    config.gridX = P == mv::Product::Plain ? m.firstCta[m.count] : unsigned(matvecSwigluCtas(m.rows[0]));
    config.gridY = unsigned((nTokens + NT - 1) / NT);
    config.gridZ = 1;
    config.threads = mv::kWarps * 32;
    const int64_t stride = int64_t(rowBytes(T, size_t(cols)));
    if (x8 != nullptr) {
        if constexpr (T != DType::F32 && T != DType::F16 && T != DType::BF16) {  // the block-quantized types
            const mv::Q8Activations q8{x8->q, x8->ds};
            return launch(config, [&] { mv::matvecQ8Kernel<T, NT, P>(m, stride, q8, cols, nTokens); });
        }
        Findings findings;
        findings.errorCount = 1;
        findings.errors.push_back("no int8 matvec kernel for " + std::string(dtypeName(T)));
        return findings;
    }
    return launch(config, [&] { mv::matvecKernel<T, NT, P>(m, stride, x, cols, nTokens); });
}

template <DType T, mv::Product P>
Findings run(const mv::Matrices& m, int64_t cols, const float* x, const Int8Input* x8, int64_t nTokens,
             LaunchConfig config) {
    switch (mv::tokenGroup(nTokens)) {
    case 1: return runTokens<T, 1, P>(m, cols, x, x8, nTokens, std::move(config));
    case 4: return runTokens<T, 4, P>(m, cols, x, x8, nTokens, std::move(config));
    default: return runTokens<T, 8, P>(m, cols, x, x8, nTokens, std::move(config));
    }
}

template <mv::Product P>
Findings runType(DType type, const mv::Matrices& m, int64_t cols, const float* x, const Int8Input* x8,
                 int64_t nTokens, LaunchConfig config) {
    switch (type) {
    case DType::F32: return run<DType::F32, P>(m, cols, x, x8, nTokens, std::move(config));
    case DType::F16: return run<DType::F16, P>(m, cols, x, x8, nTokens, std::move(config));
    case DType::BF16: return run<DType::BF16, P>(m, cols, x, x8, nTokens, std::move(config));
    default: break;
    }
    Findings findings;
    const bool quantized = visitQuantType(
        type, [&](auto q) { findings = run<decltype(q)::value, P>(m, cols, x, x8, nTokens, std::move(config)); });
    if (!quantized) {
        findings.errorCount = 1;
        findings.errors.push_back("no matvec kernel for " + std::string(dtypeName(type)));
    }
    return findings;
}

}  // namespace

float swigluOnHost(float gate, float up) { return swigluValue(gate, up); }

int matvecTokenGroup(int64_t nTokens) { return mv::tokenGroup(nTokens); }

unsigned matvecFirstCta(const int64_t* rows, int i) {
    unsigned first = 0;
    for (int k = 0; k < i; ++k) first += unsigned((rows[k] + mv::kRows - 1) / mv::kRows);
    return first;
}

Findings runMatvecKernel(DType type, const uint8_t* const* w, const int64_t* rows, float* const* y, int count,
                         int64_t cols, const float* x, const Int8Input* x8, int64_t nTokens, LaunchConfig config) {
    Findings findings;
    if (count < 1 || count > mv::kMaxMatrices) {
        findings.errorCount = 1;
        findings.errors.push_back("no matvec launch of " + std::to_string(count) + " matrices");
        return findings;
    }
    mv::Matrices m;
    m.count = count;
    for (int i = 0; i < count; ++i) {
        m.w[i] = w[i];
        m.y[i] = y[i];
        m.rows[i] = rows[i];
        m.firstCta[i + 1] = matvecFirstCta(rows, i + 1);
    }
    return runType<mv::Product::Plain>(type, m, cols, x, x8, nTokens, std::move(config));
}

Findings runMatvecSwigluKernel(DType type, const uint8_t* gate, const uint8_t* up, int64_t rows, float* out,
                               int64_t cols, const float* x, const Int8Input* x8, int64_t nTokens,
                               LaunchConfig config) {
    mv::Matrices m;
    m.count = 2;
    m.w[0] = gate;
    m.w[1] = up;
    m.y[0] = out;
    m.rows[0] = m.rows[1] = rows;
    return runType<mv::Product::Swiglu>(type, m, cols, x, x8, nTokens, std::move(config));
}

bool hasInt8Matvec(DType type) { return isCudaQuantType(type); }

Findings runQuantizeActivationsKernel(const float* x, int64_t nTokens, int64_t cols, int8_t* q, float* ds,
                                      LaunchConfig config) {
    const int64_t blocks = nTokens * (cols / mv::kQ8Block);
    config.gridX = unsigned((blocks + mv::kQ8BlocksPerCta - 1) / mv::kQ8BlocksPerCta);
    config.gridY = 1;
    config.gridZ = 1;
    config.threads = mv::kQ8BlocksPerCta * 32;
    return launch(config, [&] { mv::quantizeActivationsKernel(x, blocks, q, ds); });
}

}  // namespace pagoda::cuda::emulation

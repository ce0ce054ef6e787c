// The prefill kernel's own source compiled as host C++: cuda_shim.h first,
// then the kernel header, whose include of kernels/cuda/mma_ops.cuh finds
// the shadow copy under shadow/, and kernels/cuda/device_common.cuh's of
// cuda_fp16.h the empty stand-in there. The kernel's shared memory is its
// `extern __shared__` array, defined below.
#define PAGODA_EMULATION_DYNAMIC_SHARED 1
#include "tests/cuda/emulation/cuda_shim.h"

#include "kernels/cuda/prefill_attention_kernel.cuh"

#if !defined(PAGODA_EMULATION_SHADOW_MMA_OPS) || !defined(PAGODA_EMULATION_SHADOW_CUDA_FP16)
#error "tests/cuda/emulation/shadow must come before the project root on the include path"
#endif

#include <span>
#include <string>
#include <utility>

#include "kernels/cuda/attention_plan.h"
#include "tests/cuda/emulation/prefill_kernel_host.h"

namespace pagoda::cuda::prefill {

// What the kernel's `extern __shared__ __half shared[]` names, sized for
// the largest configuration.
alignas(16) __half shared[prefillSharedBytes(128, 64) / sizeof(__half)];

}  // namespace pagoda::cuda::prefill

namespace pagoda::cuda::emulation {
namespace {

using prefill::kBr;
using prefill::kStride;

// Names a shared byte in the kernel's layout: Q [kBr][D+8], then K buffers
// 0 and 1 and V buffers 0 and 1, [Bc][D+8] each, in f16.
template <int D, int Bc>
std::string describeShared(size_t byteOffset) {
    const size_t element = byteOffset / sizeof(__half);
    const size_t row = element / kStride<D>;
    const std::string column = " column " + std::to_string(element % kStride<D>);
    if (row < size_t(kBr)) return "Q row " + std::to_string(row) + column;
    static constexpr const char* kTileNames[] = {"K buffer 0", "K buffer 1", "V buffer 0", "V buffer 1"};
    const size_t tileRow = row - size_t(kBr);
    return std::string(kTileNames[tileRow / Bc]) + " row " + std::to_string(tileRow % Bc) + column;
}

template <int D, int Bc>
Findings run(const AttentionArgs& args, const int32_t* tiles, int nTiles, LaunchConfig config) {
    using prefill::prefillAttentionKernel;
    config.gridX = unsigned(nTiles) * unsigned(args.nHeads);
    config.threads = prefill::kThreads;
    config.shared = std::as_writable_bytes(std::span(prefill::shared));
    config.sharedBytes = prefillSharedBytes(D, Bc);
    config.describeShared = describeShared<D, Bc>;
    return launch(config, [&] {
        if (args.kv.q8) {
            prefillAttentionKernel<D, Bc, true>(args, tiles);
        } else {
            prefillAttentionKernel<D, Bc, false>(args, tiles);
        }
    });
}

}  // namespace

Findings runPrefillKernel(const AttentionArgs& args, const int32_t* tiles, int nTiles, int kvTile,
                          LaunchConfig config) {
    const int D = args.kv.headDim;
    if (D == 64 && kvTile == 64) return run<64, 64>(args, tiles, nTiles, std::move(config));
    if (D == 128 && kvTile == 64) return run<128, 64>(args, tiles, nTiles, std::move(config));
    if (D == 128 && kvTile == 32) return run<128, 32>(args, tiles, nTiles, std::move(config));
    Findings noKernel;
    noKernel.errorCount = 1;
    noKernel.errors.push_back("no prefill kernel for head dim " + std::to_string(D) + " with K/V tiles of " +
                              std::to_string(kvTile));
    return noKernel;
}

}  // namespace pagoda::cuda::emulation

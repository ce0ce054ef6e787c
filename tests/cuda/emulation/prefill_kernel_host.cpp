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

#include <algorithm>
#include <span>
#include <string>
#include <utility>

#include "tests/cuda/emulation/prefill_kernel_host.h"

namespace pagoda::cuda::prefill {

// What the kernel's `extern __shared__ __half shared[]` names, sized for
// the larger head dim.
alignas(16) __half shared[std::max(prefillSharedBytes<64>(), prefillSharedBytes<128>()) / sizeof(__half)];

}  // namespace pagoda::cuda::prefill

namespace pagoda::cuda::emulation {
namespace {

using prefill::kBr;
using prefill::kKvTile;
using prefill::kStride;

// Names a shared byte in the kernel's layout: Q [kBr][D+8], then K buffers
// 0 and 1 and V buffers 0 and 1, [kKvTile][D+8] each, in f16.
template <int D>
std::string describeShared(size_t byteOffset) {
    const size_t element = byteOffset / sizeof(__half);
    const size_t row = element / kStride<D>;
    const std::string column = " column " + std::to_string(element % kStride<D>);
    if (row < size_t(kBr)) return "Q row " + std::to_string(row) + column;
    static constexpr const char* kTileNames[] = {"K buffer 0", "K buffer 1", "V buffer 0", "V buffer 1"};
    const size_t tileRow = row - size_t(kBr);
    return std::string(kTileNames[tileRow / kKvTile<D>]) + " row " + std::to_string(tileRow % kKvTile<D>) + column;
}

template <int D>
Findings run(const AttentionArgs& args, const int32_t* tiles, int nTiles, LaunchConfig config) {
    config.gridX = unsigned(nTiles);
    config.gridY = unsigned(args.nHeads);
    config.threads = prefill::kThreads;
    config.shared = std::as_writable_bytes(std::span(prefill::shared));
    config.sharedBytes = prefill::prefillSharedBytes<D>();
    config.describeShared = describeShared<D>;
    return launch(config, [&] { prefill::prefillAttentionKernel<D>(args, tiles); });
}

}  // namespace

Findings runPrefillKernel(const AttentionArgs& args, const int32_t* tiles, int nTiles, LaunchConfig config) {
    switch (args.kv.headDim) {
        case 64: return run<64>(args, tiles, nTiles, std::move(config));
        case 128: return run<128>(args, tiles, nTiles, std::move(config));
    }
    Findings noKernel;
    noKernel.errorCount = 1;
    noKernel.errors.push_back("no prefill kernel for head dim " + std::to_string(args.kv.headDim));
    return noKernel;
}

}  // namespace pagoda::cuda::emulation

// The decode kernels' own source compiled as host C++: cuda_shim.h first,
// then the kernel header, whose kernels/cuda/device_common.cuh finds the
// empty cuda_fp16.h and cuda_bf16.h under shadow/ instead of CUDA's. The
// kernels' static __shared__ arrays become thread_locals (cuda_shim.h).
#include "tests/cuda/emulation/cuda_shim.h"

#include "kernels/cuda/decode_attention_kernel.cuh"

#if !defined(PAGODA_EMULATION_SHADOW_CUDA_FP16)
#error "tests/cuda/emulation/shadow must come before CUDA's include directory on the include path"
#endif

#include <string>
#include <utility>

#include "tests/cuda/emulation/decode_kernel_host.h"

namespace pagoda::cuda::emulation {
namespace {

template <int DPL, int MAXH, bool Q8, bool CAP>
Findings runAttention(const AttentionArgs& args, const int32_t* rows, int nRows, const DecodeSplitPlan& split,
                      float* partials, LaunchConfig config) {
    const int group = args.nHeads / args.kv.nKvHeads;
    config.gridX = unsigned(split.nSplits);
    config.gridY = unsigned(args.kv.nKvHeads * ((group + MAXH - 1) / MAXH));
    config.gridZ = unsigned(nRows);
    config.threads = decode::kWarps * 32;
    return launch(config, [&] {
        decode::decodeAttentionKernel<DPL, MAXH, Q8, CAP>(args, rows, nRows, split.nSplits, partials);
    });
}

Findings noKernel(std::string message) {
    Findings findings;
    findings.errorCount = 1;
    findings.errors.push_back(std::move(message));
    return findings;
}

// What a CTA finds in a static __shared__ array.
__global__ void staticSharedProbeKernel(float* firstReads) {
    __shared__ float cell[1];
    if (threadIdx.x == 0) firstReads[blockIdx.x] = cell[0];
    __syncthreads();
    if (threadIdx.x == 0) cell[0] = 1.0f;
}

}  // namespace

Findings runDecodeAttentionKernel(const AttentionArgs& args, const int32_t* rows, int nRows,
                                  const DecodeSplitPlan& split, float* partials, LaunchConfig config) {
    const int D = args.kv.headDim;
    Findings findings = noKernel("no decode kernel for head dim " + std::to_string(D) + ", " +
                                 std::to_string(args.nHeads) + " heads over " + std::to_string(args.kv.nKvHeads) +
                                 " KV heads");
    if (args.kv.nKvHeads < 1 || args.nHeads % args.kv.nKvHeads != 0) return findings;
    const int group = args.nHeads / args.kv.nKvHeads;
    decode::visitDecodeKernel(D, group, args.kv.q8, args.softcap > 0.0f, [&](auto dpl, auto maxH, auto q8, auto cap) {
        findings = runAttention<decltype(dpl)::value, decltype(maxH)::value, decltype(q8)::value,
                                decltype(cap)::value>(args, rows, nRows, split, partials, std::move(config));
    });
    return findings;
}

Findings runDecodeReduceKernel(const AttentionArgs& args, const int32_t* rows, int nRows, int nSplits,
                               const float* partials, LaunchConfig config) {
    config.gridX = unsigned(args.nHeads);
    config.gridY = unsigned(nRows);
    config.gridZ = 1;
    config.threads = 128;
    return launch(config, [&] { decode::decodeReduceKernel(args, rows, nRows, nSplits, partials); });
}

Findings runStaticSharedProbe(int nCtas, float* firstReads) {
    LaunchConfig config;
    config.gridX = unsigned(nCtas);
    config.threads = 64;
    return launch(config, [&] { staticSharedProbeKernel(firstReads); });
}

}  // namespace pagoda::cuda::emulation

#pragma once
// The split-context decode attention kernels of
// kernels/cuda/decode_attention_kernel.cuh, compiled as host C++ and run
// by the CTA emulator, each in the launch shape decode_attention.cu gives
// it. A test runs the reduce kernel after the attention kernel when the
// split plan has more than one split, as decodeAttention does.

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "tests/cuda/emulation/cta_emulator.h"

namespace pagoda::cuda::emulation {

// decodeAttentionKernel<DPL, MAXH> as decode_attention.cu picks it
// (decode::visitDecodeKernel) over `rows`
// ([nRows][kRowDescInts], host memory): grid (split.nSplits,
// nKvHeads * ceil(group / MAXH), nRows), decode::kWarps warps. `partials`
// receives the splits' partials when split.nSplits > 1. `config` brings the
// CTA hooks and the thread order; the rest is set here.
Findings runDecodeAttentionKernel(const AttentionArgs& args, const int32_t* rows, int nRows,
                                  const DecodeSplitPlan& split, float* partials, LaunchConfig config);

// decodeReduceKernel: grid (nHeads, nRows), 128 threads.
Findings runDecodeReduceKernel(const AttentionArgs& args, const int32_t* rows, int nRows, int nSplits,
                               const float* partials, LaunchConfig config);

// A kernel that reads a static __shared__ float before any thread of its
// CTA writes it, then writes it: firstReads[b] is what CTA b read.
Findings runStaticSharedProbe(int nCtas, float* firstReads);

}  // namespace pagoda::cuda::emulation

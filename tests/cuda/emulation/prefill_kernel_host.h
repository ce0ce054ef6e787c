#pragma once
// The tensor-core prefill attention kernel of
// kernels/cuda/prefill_attention_kernel.cuh, compiled as host C++ and run
// by the CTA emulator.

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "tests/cuda/emulation/cta_emulator.h"

namespace pagoda::cuda::emulation {

// Runs prefillAttentionKernel<args.kv.headDim, kvTile> (as
// prefill_attention.cu has them: 64 with 64, 128 with 32 or 64) over
// `tiles` ([nTiles][kTileDescInts], host memory) in the launch shape of
// prefill_attention.cu: grid nTiles * args.nHeads, prefill::kThreads
// threads, prefillSharedBytes(D, kvTile) of shared memory. `config` brings
// the copy sources, the CTA hooks and the thread order; the rest is set here.
Findings runPrefillKernel(const AttentionArgs& args, const int32_t* tiles, int nTiles, int kvTile,
                          LaunchConfig config);

}  // namespace pagoda::cuda::emulation

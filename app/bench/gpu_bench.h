#pragma once
// `pagoda-bench gpu`: the CUDA backend on the device. Decode tok/s of
// preset models at several batch sizes against the memory roofline
// measured in the same run (device-to-device copy bandwidth over the bytes
// of weights and KV one step reads), and prefill attention TFLOP/s (causal,
// head dim 128, f16 KV), flash against the naive baseline where its score
// matrix fits.

#include "app/common/args.h"
#include "engine/core/result.h"

namespace pagoda {

// Reads its options from args (all must be used); prints tables and writes
// JSON with --json FILE. Errors when there is no usable CUDA device.
Result<void> runGpuBench(Args& args);

}  // namespace pagoda

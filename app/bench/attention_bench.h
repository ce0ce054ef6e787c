#pragma once
// `pagoda-bench attention`: the CPU attention kernel alone, flash against
// naive and grouped K/V against the expanded ("GQA off") baseline, for
// multi-head, grouped (4:1) and multi-query heads. Prefill is reported in
// GFLOP/s, decode in GB/s of K/V read against the streaming-read bandwidth
// measured in the same run, each with the workspace the call needs.

#include "app/common/args.h"
#include "engine/core/result.h"

namespace pagoda {

// Reads the attention options from args (all must be used; docs/ATTENTION.md
// lists them), prints a table and the aims, and writes JSON with --json FILE.
Result<void> runAttentionBench(Args& args);

}  // namespace pagoda

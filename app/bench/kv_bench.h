#pragma once
// `pagoda-bench kv`: the paged KV cache against the contiguous baseline
// under one memory budget, and the prefix cache on a chat-regenerate
// workload. A simulation of the block manager's bookkeeping over a seeded
// workload with a simple continuous-batching loop (no model, no compute):
// it measures capacity (sequences and tokens that fit), not time.

#include "app/common/args.h"
#include "engine/core/result.h"

namespace pagoda {

// Reads the kv options from args (all must be used), prints the tables and
// writes JSON with --json FILE.
Result<void> runKvBench(Args& args);

}  // namespace pagoda

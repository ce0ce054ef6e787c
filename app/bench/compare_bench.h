#pragma once
// `pagoda-bench compare`: one workload (N requests of L prompt tokens and G
// generated tokens, C clients in a closed loop) run by the engine under
// several optimization configs in one process, and under the baseline
// with each optimization switched on alone. Every cell is measured:
// throughput, TTFT and inter-token latency percentiles, peak KV and
// process memory, the most sequences that ran at once, the context limit.

#include "app/common/args.h"
#include "engine/core/result.h"

namespace pagoda {

// Reads its options from args (all must be used; docs/ENGINE.md lists
// them), prints the tables and writes JSON with --json FILE.
Result<void> runCompareBench(Args& args);

}  // namespace pagoda

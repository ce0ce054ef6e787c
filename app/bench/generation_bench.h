#pragma once
// `pagoda-bench generation`: prompt-processing and generation tok/s for one
// model and thread count (median and spread over repetitions), against the
// streaming-read-bandwidth bound measured in the same run.

#include "app/common/args.h"
#include "engine/core/result.h"

namespace pagoda {

// Reads its options from args (all must be used); prints a summary and
// writes JSON with --json FILE.
Result<void> runGenerationBench(Args& args);

}  // namespace pagoda

#pragma once
// Split-context ("flash-decoding") attention of single query rows over
// their sequences' paged K/V: each CTA streams one split of one row's
// context for the query heads sharing one KV head (so GQA/MQA read a KV
// head once per group), keeping an online softmax per warp; a second kernel
// merges the splits. Any even head dim up to 256 (64 and 128 specialized);
// it also serves as the generic path for prefill rows of other head dims.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// rows: device [nRows][kRowDescInts]; partials: device, the plan's
// partialBytes (unused when split.nSplits == 1).
Status decodeAttention(const LaunchStream& stream, const AttentionArgs& args, const int32_t* rows, int nRows,
                       const DecodeSplitPlan& split, float* partials);

// CTAs of the decode kernel for this head dim and group (query heads per
// KV head) that one SM of the current device holds at once, from the
// runtime's occupancy calculator: what AttentionPlanOptions::decodeCtasPerSm
// plans the splits with.
StatusOr<int> decodeCtasPerSm(int headDim, int group, bool q8 = false);

}  // namespace pagoda::cuda

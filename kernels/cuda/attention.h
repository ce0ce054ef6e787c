#pragma once
// One layer's attention on the device, as planned by planAttention: the
// expanded-KV copies (GQA off), then the decode rows and the prefill tiles,
// or every row through the naive path.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_args.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// args: q, out, heads, scale, window and the layer's pools (seqs and
// tables are taken from `packed`, the device copy of plan.packed);
// workspace: device, plan.workspaceBytes().
Status runAttention(const LaunchStream& stream, AttentionArgs args, const AttentionPlan& plan, const int32_t* packed,
                    void* workspace);

}  // namespace pagoda::cuda

#include "kernels/cuda/attention.h"

#include <cstddef>

#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/expand_kv.h"
#include "kernels/cuda/naive_attention.h"
#include "kernels/cuda/prefill_attention.h"

namespace pagoda::cuda {

Status runAttention(const LaunchStream& stream, AttentionArgs args, const AttentionPlan& plan, const int32_t* packed,
                    void* workspace) {
    args.seqs = packed + plan.seqOffset;
    args.tables = packed + plan.tableOffset;
    const int32_t* rows = packed + plan.rowOffset;
    const AttentionWorkspaceLayout layout = attentionWorkspaceLayout(plan);
    std::byte* base = static_cast<std::byte*>(workspace);
    if (plan.expanded) {
        void* k = base + layout.expandedK;
        void* v = base + layout.expandedV;
        PAGODA_CUDA_RETURN_IF_ERROR(expandKv(stream, args.kv, args.nHeads, packed + plan.copyOffset, plan.nCopies, k, v));
        args.kv.k = k;
        args.kv.v = v;
        args.kv.nKvHeads = plan.kvHeads;
    }
    if (plan.naive) {
        return naiveAttention(stream, args, rows, plan.nRows, plan.naiveContext,
                              reinterpret_cast<float*>(base + layout.scores));
    }
    PAGODA_CUDA_RETURN_IF_ERROR(
        decodeAttention(stream, args, rows, plan.nRows, plan.split, reinterpret_cast<float*>(base + layout.partials)));
    return prefillAttention(stream, args, packed + plan.tileOffset, plan.nTiles, plan.prefillKvTile);
}

}  // namespace pagoda::cuda

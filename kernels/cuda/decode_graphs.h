#pragma once
// The instantiated CUDA graphs of the decode step, one per batch-size
// bucket (graph_buckets.h); only the staged metadata (tokens, positions,
// slots, block tables) changes between replays of a bucket's graph.

#include <cuda_runtime_api.h>

#include <map>
#include <memory>

#include "kernels/cuda/status.h"

namespace pagoda::cuda {

struct GraphDeleter {
    void operator()(cudaGraph_t graph) const { cudaGraphDestroy(graph); }
};
struct GraphExecDeleter {
    void operator()(cudaGraphExec_t exec) const { cudaGraphExecDestroy(exec); }
};
using GraphExecPtr = std::unique_ptr<CUgraphExec_st, GraphExecDeleter>;

// Instantiated decode graphs by bucket.
class DecodeGraphs {
public:
    bool has(int bucket) const { return m_graphs.count(bucket) != 0; }
    bool capturing() const { return m_capturing; }
    // Work queued on `stream` until endCapture is recorded, not run.
    Status beginCapture(cudaStream_t stream);
    // Ends the capture and instantiates it as the graph of `bucket`.
    Status endCapture(cudaStream_t stream, int bucket);
    // Abandons a capture after a failed step.
    void abortCapture(cudaStream_t stream);
    Status launch(cudaStream_t stream, int bucket);
    // Every graph bakes in device pointers: drop them when buffers move.
    void clear() { m_graphs.clear(); }

private:
    std::map<int, GraphExecPtr> m_graphs;
    bool m_capturing = false;
};

}  // namespace pagoda::cuda

#include "kernels/cuda/decode_graphs.h"

#include "kernels/cuda/cuda_check.h"

namespace pagoda::cuda {

Status DecodeGraphs::beginCapture(cudaStream_t stream) {
    PAGODA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    m_capturing = true;
    return {};
}

Status DecodeGraphs::endCapture(cudaStream_t stream, int bucket) {
    m_capturing = false;
    cudaGraph_t raw = nullptr;
    PAGODA_CUDA_CHECK(cudaStreamEndCapture(stream, &raw));
    const std::unique_ptr<CUgraph_st, GraphDeleter> graph(raw);
    cudaGraphExec_t exec = nullptr;
    PAGODA_CUDA_CHECK(cudaGraphInstantiate(&exec, graph.get(), 0));
    m_graphs[bucket].reset(exec);
    return {};
}

void DecodeGraphs::abortCapture(cudaStream_t stream) {
    if (!m_capturing) return;
    m_capturing = false;
    cudaGraph_t raw = nullptr;
    cudaStreamEndCapture(stream, &raw);
    if (raw != nullptr) cudaGraphDestroy(raw);
    cudaGetLastError();
}

Status DecodeGraphs::launch(cudaStream_t stream, int bucket) {
    const auto graph = m_graphs.find(bucket);
    if (graph == m_graphs.end()) return Status::error("no decode graph for bucket " + std::to_string(bucket));
    PAGODA_CUDA_CHECK(cudaGraphLaunch(graph->second.get(), stream));
    return {};
}

}  // namespace pagoda::cuda

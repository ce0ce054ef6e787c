#pragma once
// The stream the decode-step launchers start their kernels on, and whether
// they may start them with programmatic dependent launch (PDL; devices of
// compute capability 9.0 and newer, OptimizationConfig::dependentLaunch):
// a kernel's CTAs then launch while the kernel before it in the stream
// finishes, and wait for it inside (awaitPrecedingKernel,
// device_common.cuh) before they touch memory. That hides the gap between
// two dependent kernels, of which a one-token decode step of a 32-layer
// model has some 300.
// It converts from and to a plain stream, so that every caller that passes
// one launches as before.

#include <cuda_runtime_api.h>

namespace pagoda::cuda {

struct LaunchStream {
    LaunchStream(cudaStream_t s, bool dependent = false) : stream(s), dependentLaunch(dependent) {}
    operator cudaStream_t() const { return stream; }

    cudaStream_t stream = nullptr;
    bool dependentLaunch = false;
};

}  // namespace pagoda::cuda

#pragma once
// launchKernel: `kernel<<<grid, block, sharedBytes, stream>>>(args...)`,
// with programmatic dependent launch where the LaunchStream allows it;
// errors, as from <<<>>>, by cudaGetLastError. Every kernel started
// through it calls awaitPrecedingKernel() (device_common.cuh) before its
// first access to global memory. Included by .cu files only.

#include <cuda_runtime.h>

#include <utility>

#include "kernels/cuda/launch.h"

namespace pagoda::cuda {

template <class... Params, class... Args>
void launchKernel(const LaunchStream& stream, void (*kernel)(Params...), dim3 grid, dim3 block, size_t sharedBytes,
                  Args&&... args) {
    cudaLaunchAttribute dependent{};
    dependent.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    dependent.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = sharedBytes;
    config.stream = stream.stream;
    config.attrs = stream.dependentLaunch ? &dependent : nullptr;
    config.numAttrs = stream.dependentLaunch ? 1 : 0;
    cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace pagoda::cuda

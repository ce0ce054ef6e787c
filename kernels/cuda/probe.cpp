#include "kernels/cuda/probe.h"

#include <cuda_runtime_api.h>

namespace pagoda::cuda {

std::string cudaVersionName(int version) {
    return "CUDA " + std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

std::string unavailableReason(const ProbeObservation& seen) {
    if (seen.countError == int(cudaErrorInsufficientDriver)) {
        const std::string code = " (cudaErrorInsufficientDriver, error " + std::to_string(seen.countError) + ")";
        if (seen.driverVersion == 0) return "no NVIDIA driver" + code;
        return "the NVIDIA driver supports " + cudaVersionName(seen.driverVersion) + ", this build needs " +
               cudaVersionName(seen.runtimeVersion) + code;
    }
    if (seen.countError == int(cudaErrorNoDevice) || (seen.countError == 0 && seen.deviceCount == 0)) {
        return "no CUDA device";
    }
    if (seen.countError != 0) {
        return "cudaGetDeviceCount failed: " + seen.countErrorName + " (error " + std::to_string(seen.countError) + ")";
    }
    if (seen.deviceIndex < 0 || seen.deviceIndex >= seen.deviceCount) {
        return "CUDA device " + std::to_string(seen.deviceIndex) + " asked for, " + std::to_string(seen.deviceCount) +
               " present";
    }
    if (seen.ccMajor < kMinComputeMajor) {
        return "compute capability " + std::to_string(seen.ccMajor) + "." + std::to_string(seen.ccMinor) + " < " +
               std::to_string(kMinComputeMajor) + ".0 (" + seen.name + ")";
    }
    return "";
}

DeviceProbe probeDevice(int deviceIndex, bool freeMemory) {
    ProbeObservation seen;
    seen.deviceIndex = deviceIndex;
    cudaDriverGetVersion(&seen.driverVersion);
    cudaRuntimeGetVersion(&seen.runtimeVersion);
    const cudaError_t countError = cudaGetDeviceCount(&seen.deviceCount);
    // Clears the error so that it does not surface from a later call.
    cudaGetLastError();
    seen.countError = int(countError);
    seen.countErrorName = cudaGetErrorName(countError);
    if (countError != cudaSuccess) seen.deviceCount = 0;

    DeviceProbe probe;
    probe.deviceCount = seen.deviceCount;
    DeviceInfo& info = probe.info;
    info.driverVersion = seen.driverVersion;
    info.runtimeVersion = seen.runtimeVersion;
    cudaDeviceProp props{};
    if (countError == cudaSuccess && deviceIndex >= 0 && deviceIndex < seen.deviceCount &&
        cudaGetDeviceProperties(&props, deviceIndex) == cudaSuccess) {
        seen.ccMajor = props.major;
        seen.ccMinor = props.minor;
        seen.name = props.name;
        info.index = deviceIndex;
        info.name = props.name;
        info.ccMajor = props.major;
        info.ccMinor = props.minor;
        info.smCount = props.multiProcessorCount;
        info.totalBytes = props.totalGlobalMem;
    }
    probe.reason = unavailableReason(seen);
    probe.available = probe.reason.empty();
    if (probe.available && freeMemory) {
        // cudaMemGetInfo needs a context on the device: creating it is what a
        // backend would do next anyway. The calling thread's current device
        // is put back, since it may be running a backend on another one.
        int previous = -1;
        cudaGetDevice(&previous);
        size_t freeBytes = 0;
        size_t totalBytes = 0;
        if (cudaSetDevice(deviceIndex) == cudaSuccess && cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess) {
            info.freeBytes = freeBytes;
            info.totalBytes = totalBytes;
        }
        if (previous >= 0) cudaSetDevice(previous);
        cudaGetLastError();
    }
    return probe;
}

}  // namespace pagoda::cuda

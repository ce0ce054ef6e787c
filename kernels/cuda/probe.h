#pragma once
// Is there a CUDA device Pagoda can use, and which? The probe never fails:
// it reports a device or the reason there is none ("no NVIDIA driver", "no
// CUDA device", "compute capability 7.5 < 8.0 (Tesla T4)"), which the engine
// prints when it falls back to the CPU.

#include <cstdint>
#include <string>

namespace pagoda::cuda {

constexpr int kMinComputeMajor = 8;  // sm_80: cp.async, bf16 and m16n8k16 mma

struct DeviceInfo {
    int index = -1;
    std::string name;
    int ccMajor = 0;
    int ccMinor = 0;
    int smCount = 0;
    uint64_t totalBytes = 0;
    uint64_t freeBytes = 0;  // 0 unless the probe asked for it
    int driverVersion = 0;   // 13000 = CUDA 13.0; 0 without a driver
    int runtimeVersion = 0;
};

// Whether the device has programmatic dependent launch (launch.h): compute
// capability 9.0 and newer.
inline bool hasDependentLaunch(const DeviceInfo& device) { return device.ccMajor >= 9; }

struct DeviceProbe {
    bool available = false;
    std::string reason;  // why not, when !available
    int deviceCount = 0;
    DeviceInfo info;     // the device, when available (and partly when too old)
};

// What the probe saw, for unavailableReason().
struct ProbeObservation {
    int countError = 0;          // cudaGetDeviceCount's cudaError_t
    std::string countErrorName;  // "cudaErrorInsufficientDriver"
    int deviceCount = 0;
    int deviceIndex = 0;         // the device asked for
    int driverVersion = 0;
    int runtimeVersion = 0;
    int ccMajor = 0;             // of the device asked for
    int ccMinor = 0;
    std::string name;
};

// The reason a device cannot be used, or "" when it can. Pure.
std::string unavailableReason(const ProbeObservation& seen);

// "CUDA 13.0" for 13000.
std::string cudaVersionName(int version);

// Probes device `deviceIndex` through the CUDA runtime; with `freeMemory`,
// a usable device is also asked for its free memory (info.freeBytes),
// which creates its primary context (module_api.h).
DeviceProbe probeDevice(int deviceIndex, bool freeMemory = true);

}  // namespace pagoda::cuda

// The reasons a CUDA device is unusable, the checking macro's message, and
// the probe on this machine (no device needed).

#include <gtest/gtest.h>

#include <utility>

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/probe.h"

namespace pagoda::cuda {
namespace {

TEST(ProbeReason, NamesAMissingOrOldDriver) {
    ProbeObservation seen;
    seen.countError = int(cudaErrorInsufficientDriver);
    seen.countErrorName = "cudaErrorInsufficientDriver";
    seen.runtimeVersion = 13000;
    EXPECT_EQ(unavailableReason(seen), "no NVIDIA driver (cudaErrorInsufficientDriver, error 35)");
    seen.driverVersion = 12040;
    EXPECT_EQ(unavailableReason(seen),
              "the NVIDIA driver supports CUDA 12.4, this build needs CUDA 13.0 (cudaErrorInsufficientDriver, error 35)");
}

TEST(ProbeReason, NamesAMissingDeviceAnOldOneAndOtherErrors) {
    ProbeObservation none;
    none.countError = int(cudaErrorNoDevice);
    EXPECT_EQ(unavailableReason(none), "no CUDA device");
    ProbeObservation zero;
    EXPECT_EQ(unavailableReason(zero), "no CUDA device");

    ProbeObservation old;
    old.deviceCount = 1;
    old.ccMajor = 7;
    old.ccMinor = 5;
    old.name = "Tesla T4";
    EXPECT_EQ(unavailableReason(old), "compute capability 7.5 < 8.0 (Tesla T4)");

    ProbeObservation fine = old;
    fine.ccMajor = 8;
    fine.ccMinor = 6;
    EXPECT_EQ(unavailableReason(fine), "");
    fine.deviceIndex = 2;
    EXPECT_EQ(unavailableReason(fine), "CUDA device 2 asked for, 1 present");

    ProbeObservation other;
    other.countError = int(cudaErrorUnknown);
    other.countErrorName = "cudaErrorUnknown";
    EXPECT_EQ(unavailableReason(other), "cudaGetDeviceCount failed: cudaErrorUnknown (error 999)");
    EXPECT_EQ(cudaVersionName(12080), "CUDA 12.8");
}

TEST(ProbeDevice, ReportsADeviceOrTheReasonThereIsNone) {
    const DeviceProbe probe = probeDevice(0);
    if (probe.available) {
        EXPECT_FALSE(probe.info.name.empty());
        EXPECT_GE(probe.info.ccMajor, kMinComputeMajor);
        EXPECT_GT(probe.info.totalBytes, 0u);
    } else {
        EXPECT_FALSE(probe.reason.empty());
        if (probe.info.driverVersion == 0) {
            EXPECT_EQ(probe.reason, "no NVIDIA driver (cudaErrorInsufficientDriver, error 35)");
        }
    }
}

const int kCheckLine = __LINE__ + 2;
Status failingCall() {
    PAGODA_CUDA_CHECK(cudaErrorMemoryAllocation);
    return {};
}

Status failingBlasCall() {
    PAGODA_CUDA_CHECK(CUBLAS_STATUS_NOT_INITIALIZED);
    return {};
}

TEST(ProbeDevice, DependentLaunchFromComputeCapability9) {
    DeviceInfo device;
    for (const auto& [major, has] : {std::pair{8, false}, std::pair{9, true}, std::pair{12, true}}) {
        device.ccMajor = major;
        EXPECT_EQ(hasDependentLaunch(device), has) << "sm_" << major << "0";
    }
}

TEST(CudaCheck, RecordsTheStatementTheErrorAndWhere) {
    const Status status = failingCall();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.message(),
              "cudaErrorMemoryAllocation failed: cudaErrorMemoryAllocation (2): out of memory "
              "[tests/cuda/probe_test.cpp:" + std::to_string(kCheckLine) + "]");
    const Status blas = failingBlasCall();
    ASSERT_FALSE(blas.ok());
    EXPECT_NE(blas.message().find("CUBLAS_STATUS_NOT_INITIALIZED failed: CUBLAS_STATUS_NOT_INITIALIZED (1)"),
              std::string::npos)
        << blas.message();
    EXPECT_TRUE(checkCall(cudaSuccess, "x", "y", 1).ok());
    EXPECT_STREQ(projectRelativePath("/somewhere/pagoda/kernels/cuda/rope.cu"), "kernels/cuda/rope.cu");
    EXPECT_STREQ(projectRelativePath("rope.cu"), "rope.cu");
}

}  // namespace
}  // namespace pagoda::cuda

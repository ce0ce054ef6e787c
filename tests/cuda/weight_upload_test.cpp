// Weight placement in the model's one device allocation, and the
// out-of-memory message of a model that does not fit (no device needed).

#include <gtest/gtest.h>

#include "kernels/cuda/weight_upload.h"

namespace pagoda::cuda {
namespace {

TEST(WeightUpload, PlacesTensorsBackToBackOnAlignedOffsets) {
    const WeightUploadPlan plan = planWeightUpload({1000, 256, 1, 4096});
    EXPECT_EQ(plan.offsets, (std::vector<uint64_t>{0, 1024, 1280, 1536}));
    EXPECT_EQ(plan.totalBytes, 1536u + 4096u);
    for (uint64_t offset : plan.offsets) EXPECT_EQ(offset % kWeightAlignment, 0u);
    EXPECT_EQ(planWeightUpload({}).totalBytes, 0u);
}

TEST(WeightUpload, AModelTooLargeForTheDeviceIsAClearError) {
    const uint64_t gib = 1ull << 30;
    EXPECT_EQ(weightsDoNotFit(10 * gib, 20 * gib, 24 * gib, "NVIDIA GeForce RTX 4090"), "");
    EXPECT_EQ(weightsDoNotFit(14 * gib, 10 * gib, 24 * gib, "NVIDIA GeForce RTX 4090"),
              "out of device memory: the model's weights need 14.00 GiB (plus 256.00 MiB of workspace) and NVIDIA "
              "GeForce RTX 4090 has 10.00 GiB free of 24.00 GiB");
    // The headroom counts: weights that fit only without it do not fit.
    EXPECT_NE(weightsDoNotFit(10 * gib - 1, 10 * gib, 24 * gib, "X"), "");
}

}  // namespace
}  // namespace pagoda::cuda

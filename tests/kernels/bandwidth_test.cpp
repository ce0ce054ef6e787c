#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/bandwidth.h"

namespace pagoda::cpu {
namespace {

TEST(Bandwidth, ReportsAPlausibleMedian) {
    ThreadPool pool(2);
    for (const CpuContext& ctx : {CpuContext{nullptr, SimdLevel::Avx2}, CpuContext{&pool, SimdLevel::Avx2}}) {
        const BandwidthSample sample = measureReadBandwidth(ctx, (size_t(1) << 20) + 40, 3);
        EXPECT_EQ(sample.bytes, size_t(1) << 20);  // whole cache lines
        EXPECT_EQ(sample.repetitions, 3);
        EXPECT_TRUE(std::isfinite(sample.bytesPerSecond) && sample.bytesPerSecond > 1e8) << sample.bytesPerSecond;
    }
    EXPECT_EQ(measureReadBandwidth(CpuContext{}, 1, 0).bytes, 64u);
}

}  // namespace
}  // namespace pagoda::cpu

#include <gtest/gtest.h>

#include "kernels/format_bytes.h"

namespace pagoda {
namespace {

TEST(FormatBytes, BinaryUnitsWithTwoDecimals) {
    EXPECT_EQ(formatBytes(0), "0 B");
    EXPECT_EQ(formatBytes(1023), "1023 B");
    EXPECT_EQ(formatBytes(1536), "1.50 KiB");
    EXPECT_EQ(formatBytes(uint64_t(3) << 20), "3.00 MiB");
    EXPECT_EQ(formatBytes(uint64_t(13) << 30), "13.00 GiB");
}

}  // namespace
}  // namespace pagoda

// SipHash-2-4 against the reference vectors; the block chain hash depends
// on the parent, the tokens and the key.

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "engine/cache/block_hash.h"

namespace pagoda {
namespace {

constexpr uint64_t kK0 = 0x0706050403020100ull;  // key bytes 00..07
constexpr uint64_t kK1 = 0x0f0e0d0c0b0a0908ull;  // key bytes 08..0f

TEST(SipHash, MatchesReferenceVectors) {
    // From the SipHash paper's vectors.h: message bytes 00, 01, ..., n-1.
    std::array<uint8_t, 16> message{};
    for (size_t i = 0; i < message.size(); ++i) message[i] = uint8_t(i);
    EXPECT_EQ(sipHash24(message.data(), 0, kK0, kK1), 0x726fdb47dd0e0e31ull);
    EXPECT_EQ(sipHash24(message.data(), 1, kK0, kK1), 0x74f839c593dc67fdull);
    EXPECT_EQ(sipHash24(message.data(), 7, kK0, kK1), 0xab0200f58b01d137ull);
    EXPECT_EQ(sipHash24(message.data(), 8, kK0, kK1), 0x93f5f5799a932462ull);
    EXPECT_EQ(sipHash24(message.data(), 15, kK0, kK1), 0xa129ca6149be45e5ull);
    EXPECT_EQ(sipHash24(message.data(), 16, kK0, kK1), 0x3f2acc7f57c29bdbull);
}

TEST(BlockHasher, ChainDependsOnParentTokensAndKey) {
    const BlockHasher hasher(1), other(2);
    const std::vector<int32_t> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
    const uint64_t h = hasher(hasher.root(), a);
    EXPECT_EQ(h, hasher(hasher.root(), a));
    EXPECT_NE(h, hasher(hasher.root(), b));
    EXPECT_NE(h, hasher(h, a));  // same tokens, later in the sequence
    EXPECT_NE(h, other(other.root(), a));
    EXPECT_EQ(BlockHasher(1)(BlockHasher(1).root(), a), h);
}

}  // namespace
}  // namespace pagoda

// The RoPE and K/V store kernels (kernels/cuda/rope_kv_kernels.cuh) without
// a device: their own source, compiled as host C++ (rope_kernel_host.cpp),
// on the CTA emulator. The fused kernel (q and k rotated, then k and v
// stored) must give the bits of the two RoPE launches and the store after
// them: q and k in place, and every pool slot (the tokens' slots written,
// a padding token's negative slot skipped, every other slot untouched).
// The rotation is also checked against a float64 RoPE. Llama and NeoX
// pairs, full and partial rotary dims, MHA and GQA, positions up to 40000.
// Into Q8_0 pools, both kernels must write the CPU's bytes (cpu::storeKv).
// Seeds are fresh every run.

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/half.h"
#include "tests/cuda/emulation/attention_cases.h"
#include "tests/cuda/emulation/cta_emulator.h"
#include "tests/cuda/emulation/rope_kernel_host.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

using emulation::RopeGeometry;

constexpr uint16_t kUntouched = 0x7e5a;  // an f16 NaN no store writes
constexpr int kBlocks = 4;

struct RopeCase {
    const char* name;
    RopeGeometry geometry;
};

void PrintTo(const RopeCase& c, std::ostream* os) { *os << c.name; }

// |got - want| <= 2^-22 |a| + |b|-ish: the rotation is computed in double
// and rounded once to f32; the reference uses the same formula in double.
void expectRotated(const std::vector<float>& got, const std::vector<float>& before, int nTokens, int nHeads,
                   const RopeGeometry& g, const std::vector<int32_t>& positions) {
    const int pairs = g.ropeDim / 2;
    for (int t = 0; t < nTokens; ++t) {
        for (int h = 0; h < nHeads; ++h) {
            const size_t head = (size_t(t) * nHeads + h) * g.headDim;
            for (int i = 0; i < pairs; ++i) {
                const int i0 = g.neox ? i : 2 * i;
                const int i1 = g.neox ? i + pairs : 2 * i + 1;
                const double factor = g.freqFactors != nullptr ? double(g.freqFactors[i]) : 1.0;
                double angle = double(positions[size_t(t)]) * std::pow(g.base, -2.0 * i / g.ropeDim) / factor;
                // YaRN: pairs up to corrLow keep their angle, pairs from
                // corrHigh on take it interpolated, linearly between.
                const RopeScaling& s = g.scaling;
                const double kept = s.extFactor == 0.0f ? 0.0
                                    : i <= s.corrLow ? 1.0
                                    : i >= s.corrHigh ? 0.0
                                                      : (s.corrHigh - i) / double(s.corrHigh - s.corrLow);
                angle = angle * kept + angle * s.freqScale * (1.0 - kept);
                const double a = before[head + i0];
                const double b = before[head + i1];
                const double bound = 1e-6 * (std::fabs(a) + std::fabs(b)) + 1e-30;
                ASSERT_NEAR(got[head + i0], s.mscale * (a * std::cos(angle) - b * std::sin(angle)), bound)
                    << "token " << t;
                ASSERT_NEAR(got[head + i1], s.mscale * (a * std::sin(angle) + b * std::cos(angle)), bound)
                    << "token " << t;
            }
            for (int d = g.ropeDim; d < g.headDim; ++d) {
                ASSERT_EQ(got[head + d], before[head + d]) << "token " << t << ", unrotated dim " << d;
            }
        }
    }
}

// Frequency divisors (rope_freqs.weight) for 64 pairs: 1 for the fastest
// rotating pairs up to 32 for the slowest, as Llama 3.1's and 3.2's
// scaling spreads them, and uneven between.
const std::array<float, 64> kFreqFactors = [] {
    std::array<float, 64> f{};
    for (size_t i = 0; i < f.size(); ++i) f[i] = 1.0f + 31.0f * float(i * i) / 4096.0f + (i % 3 == 1 ? 0.37f : 0.0f);
    return f;
}();

// Four tokens of `g` at positions up to 40000, token 2 a CUDA graph's
// padding token (its slot negative), q, k and v uniform in (-range, range).
struct Tokens {
    static constexpr int kCount = 4;
    std::vector<int32_t> positions;
    std::vector<int32_t> slots;
    std::vector<float> q;
    std::vector<float> k;
    std::vector<float> v;
};

Tokens randomTokens(const RopeGeometry& g, float range, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> dist(-range, range);
    auto random = [&](size_t n) {
        std::vector<float> values(n);
        for (float& f : values) f = dist(rng);
        return values;
    };
    Tokens t{{0, 17, 4095, 40000}, {5, g.blockSize + 1, -1, 3 * g.blockSize - 1}, {}, {}, {}};
    t.q = random(size_t(Tokens::kCount) * g.nHeads * g.headDim);
    t.k = random(size_t(Tokens::kCount) * g.nKvHeads * g.headDim);
    t.v = random(t.k.size());
    return t;
}

class RopeEmulation : public testing::TestWithParam<RopeCase> {};

TEST_P(RopeEmulation, FusedKernelGivesTheBitsOfRopeThenStore) {
    const RopeGeometry g = GetParam().geometry;
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const int nTokens = Tokens::kCount;
    const Tokens tokens = randomTokens(g, 2.0f, rng);
    const std::vector<int32_t>& positions = tokens.positions;
    const std::vector<int32_t>& slots = tokens.slots;
    const std::vector<float>& q0 = tokens.q;
    const std::vector<float>& k0 = tokens.k;
    const std::vector<float>& v = tokens.v;
    const size_t poolElements = size_t(kBlocks) * g.nKvHeads * g.blockSize * g.headDim;
    emulation::LaunchConfig config;
    config.shuffleThreads = true;
    config.seed = seed;

    std::vector<float> q = q0;
    std::vector<float> k = k0;
    std::vector<uint16_t> kPool(poolElements, kUntouched);
    std::vector<uint16_t> vPool(poolElements, kUntouched);
    emulation::expectNoFindings(emulation::runRopeKernel(q.data(), nTokens, g.nHeads, g, positions.data(), config),
                                "ropeKernel q");
    emulation::expectNoFindings(emulation::runRopeKernel(k.data(), nTokens, g.nKvHeads, g, positions.data(), config),
                                "ropeKernel k");
    emulation::expectNoFindings(emulation::runStoreKvKernel(kPool.data(), vPool.data(), k.data(), v.data(),
                                                            slots.data(), nTokens, g, config),
                                "storeKvKernel");
    expectRotated(q, q0, nTokens, g.nHeads, g, positions);
    expectRotated(k, k0, nTokens, g.nKvHeads, g, positions);

    std::vector<float> fusedQ = q0;
    std::vector<float> fusedK = k0;
    std::vector<uint16_t> fusedKPool(poolElements, kUntouched);
    std::vector<uint16_t> fusedVPool(poolElements, kUntouched);
    emulation::expectNoFindings(emulation::runRopeStoreKvKernel(fusedQ.data(), fusedK.data(), v.data(),
                                                                positions.data(), slots.data(), fusedKPool.data(),
                                                                fusedVPool.data(), nTokens, g, config),
                                "ropeStoreKvKernel");
    for (size_t i = 0; i < q.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(fusedQ[i]), std::bit_cast<uint32_t>(q[i])) << "q float " << i;
    }
    for (size_t i = 0; i < k.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(fusedK[i]), std::bit_cast<uint32_t>(k[i])) << "k float " << i;
    }
    EXPECT_EQ(fusedKPool, kPool);
    EXPECT_EQ(fusedVPool, vPool);

    // What the store wrote: each real token's rows at its slot, in f16.
    size_t written = 0;
    for (size_t i = 0; i < kPool.size(); ++i) written += kPool[i] != kUntouched;
    EXPECT_EQ(written, size_t(3) * g.nKvHeads * g.headDim);
    const int t = 3;
    const int slot = slots[size_t(t)];
    for (int h = 0; h < g.nKvHeads; ++h) {
        for (int d = 0; d < g.headDim; ++d) {
            const size_t dst = ((size_t(slot / g.blockSize) * g.nKvHeads + h) * g.blockSize + slot % g.blockSize) *
                                   g.headDim + d;
            const size_t src = (size_t(t) * g.nKvHeads + h) * g.headDim + d;
            ASSERT_EQ(kPool[dst], floatToHalf(k[src])) << "head " << h << " dim " << d;
            ASSERT_EQ(vPool[dst], floatToHalf(v[src])) << "head " << h << " dim " << d;
        }
    }
}

// Q8_0 pools: the store and the fused kernel write the bytes the CPU's
// store writes for the rotated rows (each block's scale and int8s), at the
// real tokens' slots only (a padding slot is skipped, the rest untouched).
TEST(RopeEmulationQ8, StoresWriteTheCpusQ8Rows) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    for (RopeGeometry g : {RopeGeometry{4, 4, 64, 64, 10000.0, false, 16}, RopeGeometry{8, 2, 128, 128, 1e6, true, 16},
                           RopeGeometry{12, 4, 256, 256, 500000.0, false, 32}}) {
        SCOPED_TRACE(testing::Message() << "head dim " << g.headDim);
        g.q8 = true;
        const int nTokens = Tokens::kCount;
        Tokens tokens = randomTokens(g, 3.0f, rng);
        // A block of zeros (kept so by adjacent-pair RoPE): scale 0, every int8 0.
        std::fill_n(tokens.k.begin() + g.headDim, 32, 0.0f);
        const std::vector<int32_t>& positions = tokens.positions;
        const std::vector<int32_t>& slots = tokens.slots;
        const std::vector<float>& q0 = tokens.q;
        const std::vector<float>& k0 = tokens.k;
        const std::vector<float>& v = tokens.v;
        const size_t rowBytes = size_t(g.headDim) / 32 * 34;
        const size_t poolBytes = size_t(kBlocks) * g.nKvHeads * g.blockSize * rowBytes;
        emulation::LaunchConfig config;
        config.shuffleThreads = true;
        config.seed = seed;

        std::vector<float> q = q0;
        std::vector<float> k = k0;
        std::vector<uint8_t> kPool(poolBytes, 0xA5);
        std::vector<uint8_t> vPool(poolBytes, 0xA5);
        emulation::expectNoFindings(
            emulation::runRopeKernel(k.data(), nTokens, g.nKvHeads, g, positions.data(), config), "ropeKernel k");
        emulation::expectNoFindings(emulation::runStoreKvKernel(kPool.data(), vPool.data(), k.data(), v.data(),
                                                                slots.data(), nTokens, g, config),
                                    "storeKvKernel");
        std::vector<uint8_t> wantK(poolBytes, 0xA5);
        std::vector<uint8_t> wantV(poolBytes, 0xA5);
        const cpu::PagedKvView view{DType::Q8_0, wantK.data(), wantV.data(), g.nKvHeads, g.blockSize, g.headDim};
        const size_t width = size_t(g.nKvHeads) * g.headDim;
        for (int t = 0; t < nTokens; ++t) {
            if (slots[size_t(t)] < 0) continue;
            cpu::storeKv(view, wantK.data(), wantV.data(), k.data() + t * width, v.data() + t * width,
                         &slots[size_t(t)], 1);
        }
        EXPECT_EQ(kPool, wantK);
        EXPECT_EQ(vPool, wantV);

        std::vector<float> fusedQ = q0;
        std::vector<float> fusedK = k0;
        std::vector<uint8_t> fusedKPool(poolBytes, 0xA5);
        std::vector<uint8_t> fusedVPool(poolBytes, 0xA5);
        emulation::expectNoFindings(emulation::runRopeStoreKvKernel(fusedQ.data(), fusedK.data(), v.data(),
                                                                    positions.data(), slots.data(), fusedKPool.data(),
                                                                    fusedVPool.data(), nTokens, g, config),
                                    "ropeStoreKvKernel");
        EXPECT_EQ(fusedKPool, wantK);
        EXPECT_EQ(fusedVPool, wantV);
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeEmulation,
                         testing::Values(RopeCase{"Llama_Mha4_D64", {4, 4, 64, 64, 10000.0, false, 16}},
                                         RopeCase{"NeoX_Gqa8to2_D128_Base1e6", {8, 2, 128, 128, 1e6, true, 16}},
                                         RopeCase{"NeoX_Mqa6to1_D80_Rope32", {6, 1, 80, 32, 10000.0, true, 8}},
                                         RopeCase{"Llama_Gqa12to4_D256", {12, 4, 256, 256, 500000.0, false, 32}},
                                         RopeCase{"Llama31_FreqFactors_Gqa8to2_D128",
                                                  {8, 2, 128, 128, 500000.0, false, 16, kFreqFactors.data()}},
                                         RopeCase{"NeoX_FreqFactors_Mqa4to1_D64_Rope32",
                                                  {4, 1, 64, 32, 10000.0, true, 16, kFreqFactors.data()}},
                                         RopeCase{"NeoX_Yarn4_Gqa8to2_D128_Base1e6",
                                                  {8, 2, 128, 128, 1e6, true, 16, nullptr,
                                                   {0.25f, 1.0f, 10.0f, 41.0f, 1.1386f}}},
                                         RopeCase{"Llama_Linear2_Mha4_D64",
                                                  {4, 4, 64, 64, 10000.0, false, 16, nullptr, {0.5f}}}),
                         [](const testing::TestParamInfo<RopeCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pagoda::cuda

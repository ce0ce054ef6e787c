// The ldmatrix row maps of the tensor-core prefill attention
// (kernels/cuda/mma_fragments.h) against the PTX ISA's fragment layouts:
// ldmatrix.x4 and mma.sync.m16n8k16 as the CTA emulator performs them
// (tests/cuda/emulation/warp_instructions.h), fed by the maps, must give
// the plain matrix products. Runs without a device.

#include "kernels/cuda/mma_fragments.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "kernels/half.h"
#include "tests/cuda/emulation/warp_instructions.h"
#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

using emulation::kWarpSize;
using Fragment = std::array<std::array<uint32_t, 4>, kWarpSize>;       // [lane][register], two halves each
using Accumulators = std::array<std::array<float, 4>, kWarpSize>;  // [lane][d0..d3]

// A padded row-major tile in "shared memory"; small integers, exact in f16
// and in every product.
struct Tile {
    int rows;
    int cols;
    int stride;
    std::vector<float> v;
    float at(int r, int c) const { return v[size_t(r) * size_t(stride) + size_t(c)]; }
};

Tile randomTile(int rows, int cols, std::mt19937_64& rng) {
    Tile t{rows, cols, cols + 8, std::vector<float>(size_t(rows) * size_t(cols + 8), 0.0f)};
    std::uniform_int_distribution<int> value(-4, 4);
    for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) t.v[size_t(r) * size_t(t.stride) + size_t(c)] = float(value(rng));
    }
    return t;
}

uint32_t packHalves(float lo, float hi) { return uint32_t(floatToHalf(lo)) | uint32_t(floatToHalf(hi)) << 16; }

// ldmatrix.x4 (.trans) with lane l handing the address `map(l)` names,
// relative to (baseRow, baseCol).
Fragment ldmatrixX4(const Tile& t, int baseRow, int baseCol, FragmentRow (*map)(int), bool trans) {
    std::array<emulation::LdmatrixRow, kWarpSize> rows{};
    for (int lane = 0; lane < kWarpSize; ++lane) {
        const FragmentRow f = map(lane);
        for (int c = 0; c < 8; ++c) rows[size_t(lane)][size_t(c)] = floatToHalf(t.at(baseRow + f.row, baseCol + f.col + c));
    }
    Fragment out{};
    for (int lane = 0; lane < kWarpSize; ++lane) out[size_t(lane)] = emulation::ldmatrixX4Registers(rows, lane, trans);
    return out;
}

// D = A B for the A fragment `a` and n-tile j of the B fragment pair `b`
// (registers 2j and 2j+1).
Accumulators mma16816(const Fragment& a, const Fragment& b, int j) {
    std::array<emulation::MmaOperands, kWarpSize> lanes{};
    for (int lane = 0; lane < kWarpSize; ++lane) {
        lanes[size_t(lane)].a = a[size_t(lane)];
        lanes[size_t(lane)].b = {b[size_t(lane)][size_t(2 * j)], b[size_t(lane)][size_t(2 * j + 1)]};
    }
    return emulation::mma16816Warp(lanes);
}

// The accumulator of lane `lane` for element (row, col) of a 16x8 D tile.
float accumulatorAt(const Accumulators& d, int row, int col) {
    const int lane = (row % 8) * 4 + col / 2;
    return d[size_t(lane)][size_t((row / 8) * 2 + col % 2)];
}

// A 16x8 D tile against the plain product: d(m, n) == sum over k < 16 of
// a(m, k) b(k, n), exact on small integers.
template <class A, class B>
void expectProduct(const Accumulators& d, A a, B b) {
    for (int m = 0; m < 16; ++m) {
        for (int n = 0; n < 8; ++n) {
            float expected = 0.0f;
            for (int k = 0; k < 16; ++k) expected += a(m, k) * b(k, n);
            ASSERT_EQ(accumulatorAt(d, m, n), expected) << "at (" << m << ", " << n << ")";
        }
    }
}

// S = Q Kᵀ: Q [m][k] and K [n][k] read from inside larger padded tiles.
TEST(MmaFragments, QueryAndKeyFragmentsGiveQKTransposed) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const Tile q = randomTile(48, 64, rng);
    const Tile k = randomTile(64, 64, rng);
    for (const auto [qRow, kRow, col] : {std::array<int, 3>{0, 0, 0}, {32, 16, 48}, {16, 48, 16}}) {
        const Fragment qa = ldmatrixX4(q, qRow, col, aFragmentRow, false);
        const Fragment kb = ldmatrixX4(k, kRow, col, bFragmentRowNk, false);
        for (int j = 0; j < 2; ++j) {
            SCOPED_TRACE("n-tile " + std::to_string(j));
            ASSERT_NO_FATAL_FAILURE(expectProduct(
                mma16816(qa, kb, j), [&](int m, int kk) { return q.at(qRow + m, col + kk); },
                [&](int kk, int n) { return k.at(kRow + j * 8 + n, col + kk); }));
        }
    }
}

// O = P V: P held as the accumulators of two 16x8 S tiles, repacked into an
// A fragment as the kernel does; V [k][n] read with .trans.
TEST(MmaFragments, ProbabilityAccumulatorsAndTransposedValuesGivePV) {
    const uint64_t seed = test::freshSeed();
    SCOPED_TRACE(test::seedTrace(seed));
    std::mt19937_64 rng(seed);
    const Tile p = randomTile(16, 16, rng);
    const Tile v = randomTile(64, 128, rng);
    // The accumulators of the S n-tiles 0 (columns 0-7) and 1 (8-15).
    Accumulators s[2];
    for (int lane = 0; lane < 32; ++lane) {
        for (int j = 0; j < 2; ++j) {
            for (int e = 0; e < 4; ++e) {
                s[j][size_t(lane)][size_t(e)] = p.at(lane / 4 + (e / 2) * 8, j * 8 + 2 * (lane % 4) + e % 2);
            }
        }
    }
    // The kernel's repacking: {n-tile 0 d0 d1, n-tile 0 d2 d3, n-tile 1 d0 d1, n-tile 1 d2 d3}.
    Fragment pa{};
    for (int lane = 0; lane < 32; ++lane) {
        const auto& s0 = s[0][size_t(lane)];
        const auto& s1 = s[1][size_t(lane)];
        pa[size_t(lane)] = {packHalves(s0[0], s0[1]), packHalves(s0[2], s0[3]), packHalves(s1[0], s1[1]),
                            packHalves(s1[2], s1[3])};
    }
    for (const auto [kRow, col] : {std::array<int, 2>{0, 0}, {48, 112}, {16, 32}}) {
        const Fragment vb = ldmatrixX4(v, kRow, col, bFragmentRowKnTrans, true);
        for (int j = 0; j < 2; ++j) {
            SCOPED_TRACE("n-tile " + std::to_string(j));
            ASSERT_NO_FATAL_FAILURE(expectProduct(
                mma16816(pa, vb, j), [&](int m, int kk) { return p.at(m, kk); },
                [&](int kk, int n) { return v.at(kRow + kk, col + j * 8 + n); }));
        }
    }
}

// Each 8-lane group of a map names 8 distinct rows of one 8x8 matrix, and
// the four matrices tile the 16x16 block: every element loaded once.
TEST(MmaFragments, EveryMapCoversItsBlockOnce) {
    for (FragmentRow (*map)(int) : {aFragmentRow, bFragmentRowNk, bFragmentRowKnTrans}) {
        int covered[16][16] = {};
        for (int lane = 0; lane < 32; ++lane) {
            const FragmentRow f = map(lane);
            ASSERT_EQ(f.col % 8, 0);
            for (int c = 0; c < 8; ++c) ++covered[f.row][f.col + c];
        }
        for (const auto& row : covered) {
            for (int count : row) EXPECT_EQ(count, 1);
        }
    }
}

}  // namespace
}  // namespace pagoda::cuda

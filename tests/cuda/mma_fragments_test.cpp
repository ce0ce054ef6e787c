// The ldmatrix row maps of the tensor-core prefill attention
// (kernels/cuda/mma_fragments.h) against the PTX ISA's fragment layouts:
// ldmatrix.x4 and mma.sync.m16n8k16 are emulated on the host as the ISA
// describes them, and the products they give are compared with plain
// matrix products. Runs without a device.

#include "kernels/cuda/mma_fragments.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "tests/kernels/kernel_test_util.h"

namespace pagoda::cuda {
namespace {

// A register holds two 16-bit elements; small integers stored as floats
// keep every product exact.
using Reg = std::array<float, 2>;
using Fragment = std::array<std::array<Reg, 4>, 32>;        // [lane][register]
using Accumulators = std::array<std::array<float, 4>, 32>;  // [lane][d0..d3]

// A padded row-major tile in "shared memory".
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

// ldmatrix.x4 (.trans): lane 8i + r hands the address of row r of matrix
// i; lane l receives, in register i, elements (l/4, 2(l%4)) and
// (l/4, 2(l%4)+1) of matrix i, or of its transpose.
Fragment ldmatrixX4(const Tile& t, int baseRow, int baseCol, FragmentRow (*map)(int), bool trans) {
    std::array<std::array<FragmentRow, 8>, 4> rowStart{};
    for (int lane = 0; lane < 32; ++lane) {
        const FragmentRow f = map(lane);
        rowStart[size_t(lane / 8)][size_t(lane % 8)] = {baseRow + f.row, baseCol + f.col};
    }
    auto element = [&](int matrix, int r, int c) {
        const FragmentRow start = rowStart[size_t(matrix)][size_t(r)];
        return t.at(start.row, start.col + c);
    };
    Fragment out{};
    for (int lane = 0; lane < 32; ++lane) {
        const int r = lane / 4;
        const int c = 2 * (lane % 4);
        for (int i = 0; i < 4; ++i) {
            out[size_t(lane)][size_t(i)] = trans ? Reg{element(i, c, r), element(i, c + 1, r)}
                                                 : Reg{element(i, r, c), element(i, r, c + 1)};
        }
    }
    return out;
}

// mma.sync.m16n8k16.row.col: with g = lane/4, c = lane%4,
// A: a0 = (g, 2c..2c+1), a1 = (g+8, 2c..), a2 = (g, 2c+8..), a3 = (g+8, 2c+8..);
// B: b0 = (2c..2c+1, g), b1 = (2c+8..2c+9, g);
// C, D: d0, d1 = (g, 2c..2c+1), d2, d3 = (g+8, 2c..2c+1).
Accumulators mma16816(const Fragment& a, const std::array<std::array<Reg, 2>, 32>& b) {
    float A[16][16] = {};
    float B[16][8] = {};
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4;
        const int c = lane % 4;
        const auto& ra = a[size_t(lane)];
        for (int e = 0; e < 2; ++e) {
            A[g][2 * c + e] = ra[0][size_t(e)];
            A[g + 8][2 * c + e] = ra[1][size_t(e)];
            A[g][2 * c + 8 + e] = ra[2][size_t(e)];
            A[g + 8][2 * c + 8 + e] = ra[3][size_t(e)];
            B[2 * c + e][g] = b[size_t(lane)][0][size_t(e)];
            B[2 * c + 8 + e][g] = b[size_t(lane)][1][size_t(e)];
        }
    }
    Accumulators d{};
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4;
        const int c = lane % 4;
        for (int e = 0; e < 4; ++e) {
            const int row = g + (e / 2) * 8;
            const int col = 2 * c + e % 2;
            float sum = 0.0f;
            for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
            d[size_t(lane)][size_t(e)] = sum;
        }
    }
    return d;
}

// Registers 2j and 2j+1 of a B fragment pair: n-tile j.
std::array<std::array<Reg, 2>, 32> nTile(const Fragment& b, int j) {
    std::array<std::array<Reg, 2>, 32> out{};
    for (int lane = 0; lane < 32; ++lane) {
        out[size_t(lane)] = {b[size_t(lane)][size_t(2 * j)], b[size_t(lane)][size_t(2 * j + 1)]};
    }
    return out;
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
                mma16816(qa, nTile(kb, j)), [&](int m, int kk) { return q.at(qRow + m, col + kk); },
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
        pa[size_t(lane)] = {Reg{s0[0], s0[1]}, Reg{s0[2], s0[3]}, Reg{s1[0], s1[1]}, Reg{s1[2], s1[3]}};
    }
    for (const auto [kRow, col] : {std::array<int, 2>{0, 0}, {48, 112}, {16, 32}}) {
        const Fragment vb = ldmatrixX4(v, kRow, col, bFragmentRowKnTrans, true);
        for (int j = 0; j < 2; ++j) {
            SCOPED_TRACE("n-tile " + std::to_string(j));
            ASSERT_NO_FATAL_FAILURE(expectProduct(
                mma16816(pa, nTile(vb, j)), [&](int m, int kk) { return p.at(m, kk); },
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

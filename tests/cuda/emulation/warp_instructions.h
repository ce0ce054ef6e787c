#pragma once
// The warp-wide semantics of ldmatrix.x4 and mma.sync.m16n8k16 (f16
// inputs, f32 accumulators) as the PTX ISA defines them, on the host: the
// CTA emulator performs the kernels' instructions with them, and
// tests/cuda/mma_fragments_test.cpp checks the kernels' lane maps
// (kernels/cuda/mma_fragments.h) against them.

#include <array>
#include <cstdint>

namespace pagoda::cuda::emulation {

constexpr int kWarpSize = 32;

// The 8 f16 elements (16 bytes) a lane hands ldmatrix the address of.
using LdmatrixRow = std::array<uint16_t, 8>;

// ldmatrix.x4 (.trans): lane 8i + r addresses row r of matrix i; lane l
// receives in register i the elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of
// matrix i, or of its transpose, two halves per register (low first).
// rows[l] is what lane l addressed.
std::array<uint32_t, 4> ldmatrixX4Registers(const std::array<LdmatrixRow, kWarpSize>& rows, int lane, bool transpose);

// One lane's operands of mma.m16n8k16.row.col.
struct MmaOperands {
    std::array<uint32_t, 4> a{};  // the A fragment, two halves per register
    std::array<uint32_t, 2> b{};
    std::array<float, 4> c{};
};

// Every lane's D. With g = lane/4 and c = lane%4: a0 = A[g][2c..2c+1],
// a1 = A[g+8][2c..], a2 = A[g][2c+8..], a3 = A[g+8][2c+8..];
// b0 = B[2c..2c+1][g], b1 = B[2c+8..2c+9][g]; c and d: d0, d1 =
// D[g][2c..2c+1], d2, d3 = D[g+8][2c..2c+1]. The sums are exact (double)
// and rounded once.
std::array<std::array<float, 4>, kWarpSize> mma16816Warp(const std::array<MmaOperands, kWarpSize>& lanes);

}  // namespace pagoda::cuda::emulation

#include "tests/cuda/emulation/warp_instructions.h"

#include "kernels/half.h"

namespace pagoda::cuda::emulation {

std::array<uint32_t, 4> ldmatrixX4Registers(const std::array<LdmatrixRow, kWarpSize>& rows, int lane, bool transpose) {
    const int g = lane / 4;
    const int c = 2 * (lane % 4);
    std::array<uint32_t, 4> r{};
    for (int i = 0; i < 4; ++i) {
        uint16_t lo = 0;
        uint16_t hi = 0;
        if (transpose) {
            lo = rows[size_t(8 * i + c)][size_t(g)];
            hi = rows[size_t(8 * i + c + 1)][size_t(g)];
        } else {
            lo = rows[size_t(8 * i + g)][size_t(c)];
            hi = rows[size_t(8 * i + g)][size_t(c + 1)];
        }
        r[size_t(i)] = uint32_t(lo) | uint32_t(hi) << 16;
    }
    return r;
}

std::array<std::array<float, 4>, kWarpSize> mma16816Warp(const std::array<MmaOperands, kWarpSize>& lanes) {
    auto lo = [](uint32_t u) { return double(halfToFloat(uint16_t(u & 0xffff))); };
    auto hi = [](uint32_t u) { return double(halfToFloat(uint16_t(u >> 16))); };
    double A[16][16];
    double B[16][8];
    for (int lane = 0; lane < kWarpSize; ++lane) {
        const int g = lane / 4;
        const int c = lane % 4;
        const MmaOperands& op = lanes[size_t(lane)];
        A[g][2 * c] = lo(op.a[0]);
        A[g][2 * c + 1] = hi(op.a[0]);
        A[g + 8][2 * c] = lo(op.a[1]);
        A[g + 8][2 * c + 1] = hi(op.a[1]);
        A[g][2 * c + 8] = lo(op.a[2]);
        A[g][2 * c + 9] = hi(op.a[2]);
        A[g + 8][2 * c + 8] = lo(op.a[3]);
        A[g + 8][2 * c + 9] = hi(op.a[3]);
        B[2 * c][g] = lo(op.b[0]);
        B[2 * c + 1][g] = hi(op.b[0]);
        B[2 * c + 8][g] = lo(op.b[1]);
        B[2 * c + 9][g] = hi(op.b[1]);
    }
    std::array<std::array<float, 4>, kWarpSize> d{};
    for (int lane = 0; lane < kWarpSize; ++lane) {
        for (int e = 0; e < 4; ++e) {
            const int row = lane / 4 + (e / 2) * 8;
            const int col = 2 * (lane % 4) + e % 2;
            double sum = lanes[size_t(lane)].c[size_t(e)];
            for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
            d[size_t(lane)][size_t(e)] = float(sum);
        }
    }
    return d;
}

}  // namespace pagoda::cuda::emulation

#pragma once
// Which shared-memory row each lane of a warp hands `ldmatrix.x4` so that
// the four registers it receives are the fragments `mma.sync.m16n8k16`
// (f16 inputs) wants, for the operands of flash attention. Host tests
// (tests/cuda/mma_fragments_test.cpp) check these maps against the PTX ISA's
// fragment layouts through an emulation of both instructions.
//
// ldmatrix.x4 loads four 8x8 matrices of 16-bit elements: lane 8i + r hands
// the address of row r of matrix i (16 bytes), and lane l receives in its
// register i the elements (l / 4, 2 (l % 4)) and (l / 4, 2 (l % 4) + 1) of
// matrix i, or with .trans those of its transpose.

#include "kernels/cuda/host_device.h"

namespace pagoda::cuda {

// Row and column, relative to the 16x16 block loaded, of the 8 elements
// whose address a lane hands ldmatrix.
struct FragmentRow {
    int row;
    int col;
};

// The A operand, 16x16 stored row-major ([m][k], the queries): registers
// a0..a3 in order.
PAGODA_HD FragmentRow aFragmentRow(int lane) { return {lane % 16, (lane / 16) * 8}; }

// The B operand of two adjacent n-tiles from [n][k] storage (the keys, for
// S = Q Kᵀ), without .trans: registers b0, b1 of n-tile 0, then b0, b1 of
// n-tile 1. Row = n, column = k.
PAGODA_HD FragmentRow bFragmentRowNk(int lane) { return {(lane / 16) * 8 + lane % 8, ((lane / 8) % 2) * 8}; }

// The B operand of two adjacent n-tiles from [k][n] storage (the values, for
// O = P V), with .trans: registers b0, b1 of n-tile 0, then b0, b1 of n-tile
// 1. Row = k, column = n; the same rows as the A operand's.
PAGODA_HD FragmentRow bFragmentRowKnTrans(int lane) { return aFragmentRow(lane); }

}  // namespace pagoda::cuda

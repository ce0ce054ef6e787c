// dequantizeRow and quantizeRow from kernels/cpu/matmul.h.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_isa.h"
#include "kernels/half.h"

namespace pagoda::cpu {
namespace {

// ggml's quantize_row_q8_0_ref.
void quantizeQ8_0(const float* x, BlockQ8_0* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = floatToHalf(d);
        for (int j = 0; j < kQK8_0; ++j) blocks[b].qs[j] = int8_t(std::round(x[j] * id));
    }
}

// ggml's quantize_row_q4_0_ref: the scale maps the element of largest
// magnitude to -8 exactly; its opposite would be +8, which clamps to 7.
void quantizeQ4_0(const float* x, BlockQ4_0* blocks, int64_t nBlocks) {
    constexpr int kHalf = kQK4_0 / 2;
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK4_0) {
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < kQK4_0; ++j) {
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = floatToHalf(d);
        for (int j = 0; j < kHalf; ++j) {
            const int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
            const int hi = std::min(15, int(int8_t(x[kHalf + j] * id + 8.5f)));
            blocks[b].qs[j] = uint8_t(lo | hi << 4);
        }
    }
}

}  // namespace

void dequantizeRow(const WeightMatrix& w, int64_t row, float* out) {
    assert(isComputeSupported(w.type) && "dequantizeRow: type without a CPU decoder");
    const size_t stride = rowBytes(w.type, size_t(w.cols));
    detail::dequantizeRowAvx2(w.type, static_cast<const uint8_t*>(w.data) + size_t(row) * stride, w.cols, out);
}

void quantizeRow(DType type, const float* x, void* out, int64_t n) {
    switch (type) {
    case DType::F32:
        std::memcpy(out, x, size_t(n) * sizeof(float));
        return;
    case DType::F16:
        std::transform(x, x + n, static_cast<uint16_t*>(out), floatToHalf);
        return;
    case DType::BF16:
        std::transform(x, x + n, static_cast<uint16_t*>(out), floatToBf16);
        return;
    case DType::Q8_0:
        quantizeQ8_0(x, static_cast<BlockQ8_0*>(out), n / kQK8_0);
        return;
    case DType::Q4_0:
        quantizeQ4_0(x, static_cast<BlockQ4_0*>(out), n / kQK4_0);
        return;
    default:
        assert(false && "quantizeRow: type without a CPU encoder");
        return;
    }
}

}  // namespace pagoda::cpu

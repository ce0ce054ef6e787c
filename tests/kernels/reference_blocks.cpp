#include "reference_blocks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernel_test_util.h"

namespace pagoda::test {
namespace {

uint16_t u16At(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
double halfAt(const uint8_t* p) { return refHalfToDouble(u16At(p)); }

// An integer q in [qMin, qMax] with value scale * q + offset.
RefElement level(double scale, int q, double offset, int qMin, int qMax) {
    const double a = scale * qMin + offset;
    const double b = scale * qMax + offset;
    return {scale * q + offset, std::fabs(scale * q) + std::fabs(offset), std::fabs(scale), std::min(a, b),
            std::max(a, b)};
}

RefElement exactly(double v) { return {v, std::fabs(v), 0.0, v, v}; }

// Q4_0 / Q4_1 / Q5_0 / Q5_1 (32 elements): d, [m], [qh: 4 bytes], qs: 16
// bytes; element j < 16 in the low nibble of qs[j], j + 16 in the high
// nibble; bit 4 of element j's integer in bit j of qh (little endian).
void decodeLegacy(const uint8_t* block, bool hasOffset, bool fiveBits, RefElement* out) {
    const double d = halfAt(block);
    const double m = hasOffset ? halfAt(block + 2) : 0.0;
    const uint8_t* p = block + (hasOffset ? 4 : 2);
    uint32_t qh = 0;
    if (fiveBits) {
        qh = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
        p += 4;
    }
    const int levels = fiveBits ? 32 : 16;
    for (int j = 0; j < 32; ++j) {
        int q = j < 16 ? p[j] & 0xf : p[j - 16] >> 4;
        if (fiveBits && (qh >> j & 1) != 0) q += 16;
        // Without an offset the integers are centred: value = d * (q - levels / 2).
        out[j] = hasOffset ? level(d, q, m, 0, levels - 1) : level(d, q - levels / 2, 0.0, -levels / 2, levels / 2 - 1);
    }
}

// Sub-block j's 6-bit scale and min, as BlockQ4_K documents them.
void kScaleMin(const uint8_t* s, int j, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        min = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

// Q4_K (144 bytes) / Q5_K (176): d, dmin, scales[12], [qh[32]], qs[128].
void decodeK(const uint8_t* block, bool fiveBits, RefElement* out) {
    const double d = halfAt(block);
    const double dmin = halfAt(block + 2);
    const uint8_t* scales = block + 4;
    const uint8_t* qh = block + 16;
    const uint8_t* qs = block + (fiveBits ? 48 : 16);
    for (int e = 0; e < 256; ++e) {
        const int chunk = e / 64;   // 32 bytes of qs each
        const int i = e % 32;       // byte within the chunk
        const bool high = e % 64 >= 32;
        int q = high ? qs[32 * chunk + i] >> 4 : qs[32 * chunk + i] & 0xf;
        if (fiveBits && (qh[i] >> (2 * chunk + (high ? 1 : 0)) & 1) != 0) q += 16;
        int scale;
        int min;
        kScaleMin(scales, e / 32, scale, min);
        out[e] = level(d * scale, q, -dmin * min, 0, fiveBits ? 31 : 15);
    }
}

// Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], d. Per 128 elements
// (half h: ql + 64h, qh + 32h), element r = 32k + i takes its low 4 bits
// from ql[i] (k = 0, 2) or ql[32 + i] (k = 1, 3), low nibble for k < 2,
// high for k >= 2, and bits 4-5 from bits 2k, 2k + 1 of qh[i].
void decodeQ6K(const uint8_t* block, RefElement* out) {
    const uint8_t* ql = block;
    const uint8_t* qh = block + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
    const double d = halfAt(block + 208);
    for (int e = 0; e < 256; ++e) {
        const int h = e / 128;
        const int k = e % 128 / 32;
        const int i = e % 32;
        const uint8_t low = ql[64 * h + (k % 2 == 1 ? 32 : 0) + i];
        const int q = (k < 2 ? low & 0xf : low >> 4) | (qh[32 * h + i] >> (2 * k) & 3) << 4;
        out[e] = level(d * scales[e / 16], q - 32, 0.0, -32, 31);
    }
}

// Q2_K / Q3_K: the 2 low bits of element e = 128h + 32k + i (k < 4, i < 32)
// are bits 2k, 2k + 1 of qs[32h + i].
int twoBits(const uint8_t* qs, int e) { return qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3; }

// Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min of
// sub-block e / 16), qs[64], d, dmin. Value = d * sc * q - dmin * m.
void decodeQ2K(const uint8_t* block, RefElement* out) {
    const uint8_t* scales = block;
    const uint8_t* qs = block + 16;
    const double d = halfAt(block + 80);
    const double dmin = halfAt(block + 82);
    for (int e = 0; e < 256; ++e) {
        const uint8_t s = scales[e / 16];
        out[e] = level(d * (s & 0xf), twoBits(qs, e), -dmin * (s >> 4), 0, 3);
    }
}

// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Bit 2 of element e
// is bit e / 32 of hmask[e % 32]; q = 0..7, value = d * (sc - 32) * (q - 4).
// The 6-bit scale of sub-block j: low 4 bits from scales[j % 8] (low
// nibble for j < 8, high for j >= 8), top 2 bits from bits 2 (j / 4) and
// 2 (j / 4) + 1 of scales[8 + j % 4].
void decodeQ3K(const uint8_t* block, RefElement* out) {
    const uint8_t* hmask = block;
    const uint8_t* qs = block + 32;
    const uint8_t* scales = block + 96;
    const double d = halfAt(block + 108);
    for (int e = 0; e < 256; ++e) {
        const int j = e / 16;
        const int low = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
        const int scale = low | (scales[8 + j % 4] >> (2 * (j / 4)) & 3) << 4;
        const int q = twoBits(qs, e) | (hmask[e % 32] >> (e / 32) & 1) << 2;
        out[e] = level(d * (scale - 32), q - 4, 0.0, -4, 3);
    }
}

}  // namespace

std::vector<RefElement> refDecode(DType type, const uint8_t* bytes, int64_t n) {
    std::vector<RefElement> out(static_cast<size_t>(n));
    const DTypeInfo info = dtypeInfo(type);
    for (int64_t b = 0; b < n / info.blockElements; ++b) {
        const uint8_t* block = bytes + size_t(b) * info.blockBytes;
        RefElement* e = out.data() + b * info.blockElements;
        switch (type) {
        case DType::F32: {
            float v;
            std::memcpy(&v, block, 4);
            *e = exactly(v);
            break;
        }
        case DType::F16: *e = exactly(refHalfToDouble(u16At(block))); break;
        case DType::BF16: *e = exactly(refBf16ToDouble(u16At(block))); break;
        case DType::Q8_0:
            for (int j = 0; j < 32; ++j) e[j] = level(halfAt(block), int8_t(block[2 + j]), 0.0, -128, 127);
            break;
        case DType::Q4_0: decodeLegacy(block, false, false, e); break;
        case DType::Q4_1: decodeLegacy(block, true, false, e); break;
        case DType::Q5_0: decodeLegacy(block, false, true, e); break;
        case DType::Q5_1: decodeLegacy(block, true, true, e); break;
        case DType::Q2_K: decodeQ2K(block, e); break;
        case DType::Q3_K: decodeQ3K(block, e); break;
        case DType::Q4_K: decodeK(block, false, e); break;
        case DType::Q5_K: decodeK(block, true, e); break;
        case DType::Q6_K: decodeQ6K(block, e); break;
        default: ADD_FAILURE() << "no reference decoder for " << dtypeName(type); return out;
        }
    }
    return out;
}

}  // namespace pagoda::test

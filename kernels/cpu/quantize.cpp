// dequantizeRow and quantizeRow from kernels/cpu/matmul.h.

#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_isa.h"
#include "kernels/half.h"

namespace pagoda::cpu {
namespace {

// Each quantizer follows the algorithm of ggml's quantize_row_*_ref for the
// same type (ggml-quants.c), written from its description. ggml's float
// expressions are kept in the same order, so the bytes match a ggml build
// that contracts multiply-adds the same way (K-quants' searches compare
// float errors, where a contraction can change a choice).

// F16C rounds to nearest even like floatToHalf (NaN keeps its payload's top
// bits instead of becoming the canonical quiet NaN).
void floatsToHalves(const float* x, uint16_t* out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
    }
    for (; i < n; ++i) out[i] = floatToHalf(x[i]);
}

// Round to nearest, ties to even, as ggml's nearest_int.
int nearestInt(float v) { return int(std::nearbyint(v)); }

// nearestInt clamped to [lo, hi]; clamping first keeps huge ratios (a tiny
// scale) in int range.
int nearestIntIn(float v, int lo, int hi) { return nearestInt(std::clamp(v, float(lo), float(hi))); }

// Elements j < 16 of a 32-element block go to the low nibble of qs[j],
// elements j + 16 to the high nibble; bit 4 (5-bit formats) to bit j of qh.
void packNibbles(const int* q, uint8_t* qs) {
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 0xf) | (q[j + 16] & 0xf) << 4);
}

void packFiveBits(const int* q, uint8_t* qs, uint8_t* qh) {
    packNibbles(q, qs);
    uint32_t bits = 0;
    for (int j = 0; j < 32; ++j) bits |= uint32_t(q[j] >> 4 & 1) << j;
    std::memcpy(qh, &bits, sizeof(bits));
}

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

// The element of largest magnitude, with its sign.
float signedAbsMax(const float* x, int n) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

// ggml's quantize_row_q4_0_ref / q5_0_ref: the scale maps the element of
// largest magnitude to -2^(bits-1) exactly; its opposite would be
// +2^(bits-1), which clamps to one less. q[32] gets the stored integers.
uint16_t quantizeSymmetric(const float* x, int bits, int* q) {
    const int half = 1 << (bits - 1);
    const float d = signedAbsMax(x, 32) / float(-half);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) q[j] = std::min(2 * half - 1, int(int8_t(x[j] * id + (float(half) + 0.5f))));
    return floatToHalf(d);
}

// ggml's quantize_row_q4_1_ref / q5_1_ref: the range [min, max] in 2^bits
// steps from min. Stores d and m (= min) as fp16.
void quantizeAffine(const float* x, int bits, uint16_t& dOut, uint16_t& mOut, int* q) {
    const int nmax = (1 << bits) - 1;
    float min = std::numeric_limits<float>::max();
    float max = -std::numeric_limits<float>::max();
    for (int j = 0; j < 32; ++j) {
        min = std::min(min, x[j]);
        max = std::max(max, x[j]);
    }
    const float d = (max - min) / float(nmax);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dOut = floatToHalf(d);
    mOut = floatToHalf(min);
    for (int j = 0; j < 32; ++j) q[j] = std::min(nmax, int((x[j] - min) * id + 0.5f));
}

void quantizeQ4_0(const float* x, BlockQ4_0* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK4_0) {
        int q[kQK4_0];
        blocks[b].d = quantizeSymmetric(x, 4, q);
        packNibbles(q, blocks[b].qs);
    }
}

void quantizeQ4_1(const float* x, BlockQ4_1* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK4_1) {
        int q[kQK4_1];
        quantizeAffine(x, 4, blocks[b].d, blocks[b].m, q);
        packNibbles(q, blocks[b].qs);
    }
}

void quantizeQ5_0(const float* x, BlockQ5_0* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK5_0) {
        int q[kQK5_0];
        blocks[b].d = quantizeSymmetric(x, 5, q);
        packFiveBits(q, blocks[b].qs, blocks[b].qh);
    }
}

void quantizeQ5_1(const float* x, BlockQ5_1* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK5_1) {
        int q[kQK5_1];
        quantizeAffine(x, 5, blocks[b].d, blocks[b].m, q);
        packFiveBits(q, blocks[b].qs, blocks[b].qh);
    }
}

// ---- K-quants ----

// How make_qkx2_quants searches for a sub-block's scale and min.
struct KSearch {
    int nmax;      // largest integer: 15 (Q4_K) or 31 (Q5_K)
    float rmin;    // first trial: nmax + rmin steps over the range
    float rdelta;  // then rdelta more per trial
    int nstep;     // trials after the first
};

// ggml's make_qkx2_quants: x[n] ~ scale * L - min with L in [0, nmax] and
// min >= 0, minimizing sum w (error)^2. Starts from the plain min/max fit,
// then tries nstep + 1 other step counts, each with the least-squares scale
// and min of its integers. Returns the scale; sets L and min.
float fitScaleAndMin(const float* x, const float* w, int n, const KSearch& s, uint8_t* L, float& minOut) {
    float min = x[0];
    float max = x[0];
    float sumW = w[0];
    float sumX = sumW * x[0];
    for (int i = 1; i < n; ++i) {
        min = std::min(min, x[i]);
        max = std::max(max, x[i]);
        sumW += w[i];
        sumX += w[i] * x[i];
    }
    min = std::min(min, 0.0f);
    if (max == min) {
        std::fill_n(L, n, uint8_t(0));
        minOut = -min;
        return 0.0f;
    }
    float iscale = float(s.nmax) / (max - min);
    float scale = 1.0f / iscale;
    float bestError = 0.0f;
    for (int i = 0; i < n; ++i) {
        L[i] = uint8_t(nearestIntIn(iscale * (x[i] - min), 0, s.nmax));
        const float diff = scale * L[i] + min - x[i];
        bestError += w[i] * (diff * diff);
    }
    uint8_t trial[32];
    for (int step = 0; step <= s.nstep; ++step) {
        iscale = (s.rmin + s.rdelta * float(step) + float(s.nmax)) / (max - min);
        float sumL = 0.0f;
        float sumL2 = 0.0f;
        float sumXL = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = nearestIntIn(iscale * (x[i] - min), 0, s.nmax);
            trial[i] = uint8_t(l);
            sumL += w[i] * float(l);
            sumL2 += w[i] * float(l) * float(l);
            sumXL += w[i] * float(l) * x[i];
        }
        const float det = sumW * sumL2 - sumL * sumL;
        if (det <= 0.0f) continue;
        float trialScale = (sumW * sumXL - sumX * sumL) / det;
        float trialMin = (sumL2 * sumX - sumL * sumXL) / det;
        if (trialMin > 0.0f) {
            trialMin = 0.0f;
            trialScale = sumXL / sumL2;
        }
        float error = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float diff = trialScale * trial[i] + trialMin - x[i];
            error += w[i] * (diff * diff);
        }
        if (error < bestError) {
            std::copy_n(trial, n, L);
            bestError = error;
            scale = trialScale;
            min = trialMin;
        }
    }
    minOut = -min;
    return scale;
}

// The largest scale and min of a K-quant block's sub-blocks.
struct KMaxima {
    float scale = 0.0f;
    float min = 0.0f;
};

// The weights of a sub-block's fit: |x| (Q2_K), or the sub-block's
// sqrt(mean x^2) + |x| (Q4_K / Q5_K).
enum class KWeights { Abs, RmsPlusAbs };

// Q2_K / Q4_K / Q5_K: x[256] as sub-blocks of kSub, each fitted by
// fitScaleAndMin. Sets scales[256 / kSub], mins[256 / kSub] and the
// integers L[256].
template <int kSub>
KMaxima fitKSubBlocks(const float* x, KWeights weighting, const KSearch& search, float* scales, float* mins,
                      uint8_t* L) {
    KMaxima max;
    for (int j = 0; j < kQK_K / kSub; ++j) {
        const float* xs = x + kSub * j;
        float weights[kSub];
        if (weighting == KWeights::RmsPlusAbs) {
            float sumX2 = 0.0f;
            for (int i = 0; i < kSub; ++i) sumX2 += xs[i] * xs[i];
            const float rms = std::sqrt(sumX2 / float(kSub));
            for (int i = 0; i < kSub; ++i) weights[i] = rms + std::fabs(xs[i]);
        } else {
            for (int i = 0; i < kSub; ++i) weights[i] = std::fabs(xs[i]);
        }
        scales[j] = fitScaleAndMin(xs, weights, kSub, search, L + kSub * j, mins[j]);
        max.scale = std::max(max.scale, scales[j]);
        max.min = std::max(max.min, mins[j]);
    }
    return max;
}

// ggml's quantize_row_q4_K_ref / q5_K_ref up to the packing of the
// integers: each sub-block of 32 fitted with weights sqrt(mean x^2) + |x|,
// the 8 scales and 8 mins quantized to 6 bits against their maxima, then
// every element requantized against the stored values. L[256] gets the
// integers.
template <class Block>
void quantizeKScales(const float* x, const KSearch& search, Block& block, uint8_t* L) {
    constexpr int kSub = 32;
    float scales[kQK_K / kSub];
    float mins[kQK_K / kSub];
    const auto [maxScale, maxMin] = fitKSubBlocks<kSub>(x, KWeights::RmsPlusAbs, search, scales, mins, L);
    const float invScale = maxScale > 0.0f ? 63.0f / maxScale : 0.0f;
    const float invMin = maxMin > 0.0f ? 63.0f / maxMin : 0.0f;
    uint8_t sc[8];
    uint8_t mn[8];
    // Clamped below at 0: ggml would wrap a negative fit around as uint8.
    for (int j = 0; j < 8; ++j) {
        sc[j] = uint8_t(nearestIntIn(invScale * scales[j], 0, 63));
        mn[j] = uint8_t(nearestIntIn(invMin * mins[j], 0, 63));
    }
    // The packing documented at BlockQ4_K.
    for (int j = 0; j < 4; ++j) {
        block.scales[j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
        block.scales[j + 4] = uint8_t(mn[j] | (mn[j + 4] >> 4) << 6);
        block.scales[j + 8] = uint8_t((sc[j + 4] & 0xf) | (mn[j + 4] & 0xf) << 4);
    }
    block.d = floatToHalf(maxScale / 63.0f);
    block.dmin = floatToHalf(maxMin / 63.0f);
    for (int j = 0; j < 8; ++j) {
        const float d = halfToFloat(block.d) * float(sc[j]);
        if (d == 0.0f) continue;
        const float dm = halfToFloat(block.dmin) * float(mn[j]);
        for (int i = 0; i < kSub; ++i) {
            L[kSub * j + i] = uint8_t(nearestIntIn((x[kSub * j + i] + dm) / d, 0, search.nmax));
        }
    }
}

void quantizeQ4_K(const float* x, BlockQ4_K* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK_K) {
        uint8_t L[kQK_K];
        quantizeKScales(x, KSearch{15, -1.0f, 0.1f, 20}, blocks[b], L);
        for (int c = 0; c < 4; ++c) {
            for (int i = 0; i < 32; ++i) blocks[b].qs[32 * c + i] = uint8_t(L[64 * c + i] | L[64 * c + 32 + i] << 4);
        }
    }
}

void quantizeQ5_K(const float* x, BlockQ5_K* blocks, int64_t nBlocks) {
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK_K) {
        uint8_t L[kQK_K];
        quantizeKScales(x, KSearch{31, -0.5f, 0.1f, 15}, blocks[b], L);
        std::fill_n(blocks[b].qh, sizeof(blocks[b].qh), uint8_t(0));
        for (int c = 0; c < 4; ++c) {
            for (int i = 0; i < 32; ++i) {
                const uint8_t lo = L[64 * c + i];
                const uint8_t hi = L[64 * c + 32 + i];
                blocks[b].qs[32 * c + i] = uint8_t((lo & 0xf) | (hi & 0xf) << 4);
                blocks[b].qh[i] |= uint8_t((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            }
        }
    }
}

// ggml's make_qx_quants with weights x^2 (rmse_type 1): x[n] ~ scale * l
// with l in [-nmax, nmax - 1], starting from the scale that maps the largest
// magnitude to -nmax, then trying 18 nearby scales for a smaller weighted
// error. Returns the scale; L[i] = l + nmax.
float fitSymmetricScale(const float* x, int n, int nmax, uint8_t* L) {
    const float max = signedAbsMax(x, n);
    if (std::fabs(max) < 1e-15f) {  // ggml's GROUP_MAX_EPS
        std::fill_n(L, n, uint8_t(0));
        return 0.0f;
    }
    const auto fit = [&](float iscale, float& sumLX, float& sumL2) {
        sumLX = 0.0f;
        sumL2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = nearestIntIn(iscale * x[i], -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumLX += w * x[i] * float(l);
            sumL2 += w * float(l) * float(l);
        }
    };
    const auto assign = [&](float iscale) {
        for (int i = 0; i < n; ++i) L[i] = uint8_t(nmax + nearestIntIn(iscale * x[i], -nmax, nmax - 1));
    };
    float sumLX;
    float sumL2;
    float iscale = float(-nmax) / max;
    fit(iscale, sumLX, sumL2);
    assign(iscale);
    float scale = sumL2 != 0.0f ? sumLX / sumL2 : 0.0f;
    float best = scale * sumLX;
    for (int step = -9; step <= 9; ++step) {
        if (step == 0) continue;
        iscale = -(float(nmax) + 0.1f * float(step)) / max;
        fit(iscale, sumLX, sumL2);
        if (sumL2 > 0.0f && sumLX * sumLX > best * sumL2) {
            assign(iscale);
            scale = sumLX / sumL2;
            best = scale * sumLX;
        }
    }
    return scale;
}

// Q3_K / Q6_K, one block of x[256]: a symmetric fit per sub-block of 16
// (fitSymmetricScale, integers l in [-nmax, nmax - 1]), the 16 scales
// quantized against the one of largest magnitude, which becomes
// -scaleLevels, then every element requantized against the stored scales.
// The type's parts:
//   storeScales(block, iscale, scales, sc): stores the 16 scales, each
//     scales[j] * iscale rounded, and sets sc[j] to the integer it stands for;
//   pack(L, block): stores the integers L[256] = l + nmax.
template <class Block, class StoreScales, class Pack>
void quantizeSymmetricK(const float* x, int nmax, float scaleLevels, Block& block, StoreScales&& storeScales,
                        Pack&& pack) {
    constexpr int kSub = 16;
    constexpr int kSubBlocks = kQK_K / kSub;
    uint8_t L[kQK_K];
    float scales[kSubBlocks];
    for (int j = 0; j < kSubBlocks; ++j) scales[j] = fitSymmetricScale(x + kSub * j, kSub, nmax, L + kSub * j);
    const float maxScale = signedAbsMax(scales, kSubBlocks);
    if (std::fabs(maxScale) < 1e-15f) {  // ggml's GROUP_MAX_EPS
        std::memset(&block, 0, sizeof(block));
        return;
    }
    const float iscale = -scaleLevels / maxScale;
    block.d = floatToHalf(1.0f / iscale);
    int sc[kSubBlocks];
    storeScales(block, iscale, scales, sc);
    for (int j = 0; j < kSubBlocks; ++j) {
        const float d = halfToFloat(block.d) * float(sc[j]);
        if (d == 0.0f) continue;
        for (int i = 0; i < kSub; ++i) {
            L[kSub * j + i] = uint8_t(nmax + nearestIntIn(x[kSub * j + i] / d, -nmax, nmax - 1));
        }
    }
    pack(L, block);
}

// ggml's quantize_row_q6_K_ref: quantizeSymmetricK with 6-bit integers and
// int8 scales.
void quantizeQ6_K(const float* x, BlockQ6_K* blocks, int64_t nBlocks) {
    const auto storeScales = [](BlockQ6_K& block, float iscale, const float* scales, int* sc) {
        for (int j = 0; j < 16; ++j) {
            block.scales[j] = int8_t(std::min(127, nearestIntIn(iscale * scales[j], -128, 128)));
            sc[j] = block.scales[j];
        }
    };
    // The packing documented at BlockQ6_K.
    const auto pack = [](const uint8_t* L, BlockQ6_K& block) {
        for (int h = 0; h < 2; ++h) {
            const uint8_t* q = L + 128 * h;
            for (int i = 0; i < 32; ++i) {
                block.ql[64 * h + i] = uint8_t((q[i] & 0xf) | (q[i + 64] & 0xf) << 4);
                block.ql[64 * h + 32 + i] = uint8_t((q[i + 32] & 0xf) | (q[i + 96] & 0xf) << 4);
                block.qh[32 * h + i] =
                    uint8_t(q[i] >> 4 | (q[i + 32] >> 4) << 2 | (q[i + 64] >> 4) << 4 | (q[i + 96] >> 4) << 6);
            }
        }
    };
    for (int64_t b = 0; b < nBlocks; ++b) quantizeSymmetricK(x + b * kQK_K, 32, 128.0f, blocks[b], storeScales, pack);
}

// Q2_K / Q3_K: the low 2 bits of L[256] as documented at BlockQ2_K.
void packTwoBits(const uint8_t* L, uint8_t* qs) {
    for (int h = 0; h < 2; ++h) {
        const uint8_t* q = L + 128 * h;
        for (int i = 0; i < 32; ++i) {
            qs[32 * h + i] =
                uint8_t((q[i] & 3) | (q[i + 32] & 3) << 2 | (q[i + 64] & 3) << 4 | (q[i + 96] & 3) << 6);
        }
    }
}

// After ggml's quantize_row_q2_K_ref: each sub-block of 16 fitted with
// weights |x| (make_qkx2_quants, least squares where ggml's current
// version minimizes absolute deviations), the 16 scales and 16 mins
// quantized to 4 bits against their maxima, then every element
// requantized against the stored values.
void quantizeQ2_K(const float* x, BlockQ2_K* blocks, int64_t nBlocks) {
    constexpr int kSub = 16;
    constexpr int kSubBlocks = kQK_K / kSub;
    for (int64_t b = 0; b < nBlocks; ++b, x += kQK_K) {
        BlockQ2_K& block = blocks[b];
        uint8_t L[kQK_K];
        float scales[kSubBlocks];
        float mins[kSubBlocks];
        const auto [maxScale, maxMin] =
            fitKSubBlocks<kSub>(x, KWeights::Abs, KSearch{3, -0.5f, 0.1f, 15}, scales, mins, L);
        const float invScale = maxScale > 0.0f ? 15.0f / maxScale : 0.0f;
        const float invMin = maxMin > 0.0f ? 15.0f / maxMin : 0.0f;
        // Clamped below at 0, as for Q4_K.
        for (int j = 0; j < kSubBlocks; ++j) {
            block.scales[j] = uint8_t(nearestIntIn(invScale * scales[j], 0, 15) |
                                      nearestIntIn(invMin * mins[j], 0, 15) << 4);
        }
        block.d = floatToHalf(maxScale / 15.0f);
        block.dmin = floatToHalf(maxMin / 15.0f);
        for (int j = 0; j < kSubBlocks; ++j) {
            const float d = halfToFloat(block.d) * float(block.scales[j] & 0xf);
            if (d == 0.0f) continue;
            const float dm = halfToFloat(block.dmin) * float(block.scales[j] >> 4);
            for (int i = 0; i < kSub; ++i) {
                L[kSub * j + i] = uint8_t(nearestIntIn((x[kSub * j + i] + dm) / d, 0, 3));
            }
        }
        packTwoBits(L, block.qs);
    }
}

// After ggml's quantize_row_q3_K_ref: quantizeSymmetricK with 3-bit
// integers (make_qx_quants, as Q6_K; ggml uses its make_q3_quants) and 6-bit
// scales (-32..31).
void quantizeQ3_K(const float* x, BlockQ3_K* blocks, int64_t nBlocks) {
    const auto storeScales = [](BlockQ3_K& block, float iscale, const float* scales, int* sc) {
        std::memset(block.scales, 0, sizeof(block.scales));
        for (int j = 0; j < 16; ++j) {
            sc[j] = nearestIntIn(iscale * scales[j], -32, 31);
            // The packing documented at BlockQ3_K, of sc + 32 (0..63).
            const int stored = sc[j] + 32;
            block.scales[j % 8] |= uint8_t((stored & 0xf) << (j < 8 ? 0 : 4));
            block.scales[8 + j % 4] |= uint8_t((stored >> 4) << (2 * (j / 4)));
        }
    };
    const auto pack = [](const uint8_t* L, BlockQ3_K& block) {
        std::memset(block.hmask, 0, sizeof(block.hmask));
        for (int e = 0; e < kQK_K; ++e) block.hmask[e % 32] |= uint8_t((L[e] >> 2) << (e / 32));
        packTwoBits(L, block.qs);
    };
    for (int64_t b = 0; b < nBlocks; ++b) quantizeSymmetricK(x + b * kQK_K, 4, 32.0f, blocks[b], storeScales, pack);
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
        floatsToHalves(x, static_cast<uint16_t*>(out), n);
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
    case DType::Q4_1:
        quantizeQ4_1(x, static_cast<BlockQ4_1*>(out), n / kQK4_1);
        return;
    case DType::Q5_0:
        quantizeQ5_0(x, static_cast<BlockQ5_0*>(out), n / kQK5_0);
        return;
    case DType::Q5_1:
        quantizeQ5_1(x, static_cast<BlockQ5_1*>(out), n / kQK5_1);
        return;
    case DType::Q2_K:
        quantizeQ2_K(x, static_cast<BlockQ2_K*>(out), n / kQK_K);
        return;
    case DType::Q3_K:
        quantizeQ3_K(x, static_cast<BlockQ3_K*>(out), n / kQK_K);
        return;
    case DType::Q4_K:
        quantizeQ4_K(x, static_cast<BlockQ4_K*>(out), n / kQK_K);
        return;
    case DType::Q5_K:
        quantizeQ5_K(x, static_cast<BlockQ5_K*>(out), n / kQK_K);
        return;
    case DType::Q6_K:
        quantizeQ6_K(x, static_cast<BlockQ6_K*>(out), n / kQK_K);
        return;
    default:
        assert(false && "quantizeRow: type without a CPU encoder");
        return;
    }
}

}  // namespace pagoda::cpu

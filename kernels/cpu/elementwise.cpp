#include "kernels/cpu/elementwise.h"

#include <immintrin.h>

#include <cmath>

namespace pagoda::cpu {
namespace {

constexpr int64_t kW = 8;  // floats per AVX2 vector

// Lanes [0, n) of a tail shorter than one vector.
__m256i tailMask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// e^x within ~2 ulp (Cephes expf): x = n ln2 + r with |r| <= ln2/2 and e^r
// from a degree-7 polynomial. Results below the smallest normal float flush
// to 0; inputs above 88.37 saturate at e^88.37 (2.4e38); NaN stays NaN.
__m256 expVec(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654475f);  // ln(FLT_MIN)
    const __m256 hi = _mm256_set1_ps(88.37f);         // n stays <= 127
    // min/max return their second operand for NaN, so NaN passes through.
    const __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);  // ln2 in two parts
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);
}

// silu(g) * u
__m256 swigluVec(__m256 g, __m256 u) {
    const __m256 e = expVec(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// gelu(g) * u, tanh form: 0.5 (1 + tanh z) = 1 / (1 + exp(-2z)).
__m256 gegluVec(__m256 g, __m256 u) {
    const __m256 g3 = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
    const __m256 z = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                   _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), g3, g));
    const __m256 e = expVec(_mm256_mul_ps(_mm256_set1_ps(-2.0f), z));
    return _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// out[i] = f(gate[i], up[i]) for a vector function f, with a masked tail.
template <class F>
void gated(const float* gate, const float* up, float* out, int64_t n, F f) {
    int64_t i = 0;
    for (; i + kW <= n; i += kW) _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        const __m256i mask = tailMask(n - i);
        _mm256_maskstore_ps(out + i, mask, f(_mm256_maskload_ps(gate + i, mask), _mm256_maskload_ps(up + i, mask)));
    }
}

}  // namespace

void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) {
    for (int64_t row = 0; row < nRows; ++row) {
        const float* xr = x + row * n;
        float* yr = y + row * n;
        __m256 acc0 = _mm256_setzero_ps();
        __m256 acc1 = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 2 * kW <= n; c += 2 * kW) {
            const __m256 a = _mm256_loadu_ps(xr + c);
            const __m256 b = _mm256_loadu_ps(xr + c + kW);
            acc0 = _mm256_fmadd_ps(a, a, acc0);
            acc1 = _mm256_fmadd_ps(b, b, acc1);
        }
        for (; c < n; c += kW) {
            const __m256 a = _mm256_maskload_ps(xr + c, tailMask(n - c));
            acc0 = _mm256_fmadd_ps(a, a, acc0);
        }
        const double meanSquare = double(hsum(_mm256_add_ps(acc0, acc1))) / double(n);
        const __m256 scale = _mm256_set1_ps(float(1.0 / std::sqrt(meanSquare + double(eps))));
        for (c = 0; c + kW <= n; c += kW) {
            const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + c), scale);
            _mm256_storeu_ps(yr + c, _mm256_mul_ps(v, _mm256_loadu_ps(weight + c)));
        }
        if (c < n) {
            const __m256i mask = tailMask(n - c);
            const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(xr + c, mask), scale);
            _mm256_maskstore_ps(yr + c, mask, _mm256_mul_ps(v, _mm256_maskload_ps(weight + c, mask)));
        }
    }
}

void rope(float* x, int nHeads, int position, const RopeParams& params) {
    // Angles in double: at positions in the tens of thousands a float angle
    // is off by milliradians.
    const int pairs = params.ropeDim / 2;
    const double freqStep = std::pow(double(params.base), -2.0 / params.ropeDim);
    double freq = 1.0;  // base^(-2i/ropeDim)
    for (int i = 0; i < pairs; ++i, freq *= freqStep) {
        const double unscaled =
            position * freq / (params.freqFactors != nullptr ? double(params.freqFactors[i]) : 1.0);
        const double theta = scaledRopeTheta(params.scaling, i, unscaled);
        const double cosTheta = std::cos(theta) * double(params.scaling.mscale);
        const double sinTheta = std::sin(theta) * double(params.scaling.mscale);
        const int i0 = params.style == RopeStyle::Normal ? 2 * i : i;
        const int i1 = params.style == RopeStyle::Normal ? 2 * i + 1 : i + pairs;
        for (int h = 0; h < nHeads; ++h) {
            float* head = x + int64_t(h) * params.headDim;
            const double a = head[i0];
            const double b = head[i1];
            head[i0] = float(a * cosTheta - b * sinTheta);
            head[i1] = float(a * sinTheta + b * cosTheta);
        }
    }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) { gated(gate, up, out, n, swigluVec); }

void geglu(const float* gate, const float* up, float* out, int64_t n) { gated(gate, up, out, n, gegluVec); }

void softcap(float* x, int64_t n, float cap) {
    const __m256 c = _mm256_set1_ps(cap);
    const __m256 twoOverCap = _mm256_set1_ps(2.0f / cap);
    const auto f = [&](__m256 v) {
        const __m256 t = expVec(_mm256_mul_ps(v, twoOverCap));
        const __m256 frac = _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
        return _mm256_mul_ps(c, _mm256_sub_ps(_mm256_set1_ps(1.0f), frac));
    };
    int64_t i = 0;
    for (; i + kW <= n; i += kW) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i mask = tailMask(n - i);
        _mm256_maskstore_ps(x + i, mask, f(_mm256_maskload_ps(x + i, mask)));
    }
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    const __m256 negInf = _mm256_set1_ps(-INFINITY);
    __m256 maxVec = negInf;
    int64_t i = 0;
    for (; i + kW <= n; i += kW) maxVec = _mm256_max_ps(maxVec, _mm256_loadu_ps(x + i));
    if (i < n) {
        const __m256i mask = tailMask(n - i);
        const __m256 v = _mm256_blendv_ps(negInf, _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask));
        maxVec = _mm256_max_ps(maxVec, v);
    }
    const __m256 max = _mm256_set1_ps(hmax(maxVec));
    __m256 sumVec = _mm256_setzero_ps();
    for (i = 0; i + kW <= n; i += kW) {
        const __m256 e = expVec(_mm256_sub_ps(_mm256_loadu_ps(x + i), max));
        _mm256_storeu_ps(x + i, e);
        sumVec = _mm256_add_ps(sumVec, e);
    }
    if (i < n) {
        const __m256i mask = tailMask(n - i);
        const __m256 e = _mm256_and_ps(expVec(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), max)),
                                       _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(x + i, mask, e);
        sumVec = _mm256_add_ps(sumVec, e);
    }
    const __m256 scale = _mm256_set1_ps(1.0f / hsum(sumVec));
    for (i = 0; i + kW <= n; i += kW) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), scale));
    if (i < n) {
        const __m256i mask = tailMask(n - i);
        _mm256_maskstore_ps(x + i, mask, _mm256_mul_ps(_mm256_maskload_ps(x + i, mask), scale));
    }
}

void addInPlace(float* y, const float* x, int64_t n) {
    int64_t i = 0;
    for (; i + kW <= n; i += kW) {
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    }
    if (i < n) {
        const __m256i mask = tailMask(n - i);
        _mm256_maskstore_ps(y + i, mask, _mm256_add_ps(_mm256_maskload_ps(y + i, mask), _mm256_maskload_ps(x + i, mask)));
    }
}

}  // namespace pagoda::cpu

#include "kernels/cpu/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/half.h"

namespace pagoda::cpu {
namespace {

// Loads 8 KV elements as f32.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float toFloat(float x) { return x; }
inline float toFloat(uint16_t x) { return halfToFloat(x); }

inline float horizontalSum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class T>
float dot(const float* q, const T* k, int n) {
    __m256 acc0 = _mm256_setzero_ps();
    __m256 acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8(k + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i), acc0);
    float sum = horizontalSum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += q[i] * toFloat(k[i]);
    return sum;
}

// acc[i] = acc[i] * scale + w * v[i]
template <class T>
void scaleAdd(float* acc, float scale, float w, const T* v, int n) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 wv = _mm256_set1_ps(w);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(wv, load8(v + i), _mm256_mul_ps(_mm256_loadu_ps(acc + i), s)));
    }
    for (; i < n; ++i) acc[i] = acc[i] * scale + w * toFloat(v[i]);
}

// Per-thread state for one (query token, KV head) item: the group of query
// heads that share the KV head.
struct GroupState {
    std::vector<float> max;     // [group]
    std::vector<float> sum;     // [group]
    std::vector<float> acc;     // [group][headDim]
    std::vector<float> scores;  // [group][blockSize]
};

template <class T>
void attendItem(const AttentionParams& p, const AttentionSequence& seq, int query, int kvHead, GroupState& st) {
    const PagedKvView& kv = p.kv;
    const int hd = kv.headDim;
    const int group = p.nHeads / kv.nKvHeads;
    const int pos = seq.startPos + query;
    const int lo = p.window > 0 ? std::max(0, pos - p.window + 1) : 0;
    const int row = seq.queryOffset + query;
    const float* q = p.q + (size_t(row) * p.nHeads + size_t(kvHead) * group) * hd;  // [group][hd]
    const T* kBase = static_cast<const T*>(kv.k);
    const T* vBase = static_cast<const T*>(kv.v);

    std::fill(st.max.begin(), st.max.end(), -std::numeric_limits<float>::infinity());
    std::fill(st.sum.begin(), st.sum.end(), 0.0f);
    std::fill(st.acc.begin(), st.acc.end(), 0.0f);

    for (int blockStart = lo - lo % kv.blockSize; blockStart <= pos; blockStart += kv.blockSize) {
        const int first = std::max(lo, blockStart);
        const int last = std::min(pos, blockStart + kv.blockSize - 1);
        const int n = last - first + 1;
        const size_t block = size_t(seq.blockTable[blockStart / kv.blockSize]);
        const size_t rowBase = (block * kv.nKvHeads + kvHead) * kv.blockSize + (first - blockStart);
        const T* k = kBase + rowBase * hd;  // [n][hd]
        const T* v = vBase + rowBase * hd;  // [n][hd]
        for (int g = 0; g < group; ++g) {
            float* s = st.scores.data() + size_t(g) * kv.blockSize;
            float blockMax = -std::numeric_limits<float>::infinity();
            for (int j = 0; j < n; ++j) {
                s[j] = dot(q + size_t(g) * hd, k + size_t(j) * hd, hd) * p.scale;
                blockMax = std::max(blockMax, s[j]);
            }
            const float newMax = std::max(st.max[g], blockMax);
            float correction = std::exp(st.max[g] - newMax);
            float* acc = st.acc.data() + size_t(g) * hd;
            float sum = st.sum[g] * correction;
            for (int j = 0; j < n; ++j) {
                const float w = std::exp(s[j] - newMax);
                sum += w;
                scaleAdd(acc, correction, w, v + size_t(j) * hd, hd);
                correction = 1.0f;
            }
            st.sum[g] = sum;
            st.max[g] = newMax;
        }
    }
    float* out = p.out + (size_t(row) * p.nHeads + size_t(kvHead) * group) * hd;
    for (int g = 0; g < group; ++g) {
        const float inv = 1.0f / st.sum[g];
        for (int i = 0; i < hd; ++i) out[size_t(g) * hd + i] = st.acc[size_t(g) * hd + i] * inv;
    }
}

template <class T>
void attentionTyped(const CpuContext& ctx, const AttentionParams& p) {
    // Work items: (sequence, query, kvHead).
    std::vector<std::pair<int, int>> queries;  // (sequence index, query index within it)
    for (size_t s = 0; s < p.sequences.size(); ++s) {
        for (int i = 0; i < p.sequences[s].nQueries; ++i) queries.emplace_back(int(s), i);
    }
    const size_t items = queries.size() * size_t(p.kv.nKvHeads);
    const int group = p.nHeads / p.kv.nKvHeads;
    ctx.pool->parallelFor(items, 1, [&](size_t begin, size_t end) {
        GroupState st;
        st.max.resize(group);
        st.sum.resize(group);
        st.acc.resize(size_t(group) * p.kv.headDim);
        st.scores.resize(size_t(group) * p.kv.blockSize);
        for (size_t item = begin; item < end; ++item) {
            const auto [sequence, query] = queries[item / p.kv.nKvHeads];
            attendItem<T>(p, p.sequences[sequence], query, int(item % p.kv.nKvHeads), st);
        }
    });
}

template <class T>
void storeTyped(const PagedKvView& kv, T* kPool, T* vPool, const float* k, const float* v, const int32_t* slots,
                int nTokens) {
    const int hd = kv.headDim;
    for (int t = 0; t < nTokens; ++t) {
        const size_t block = size_t(slots[t] / kv.blockSize);
        const size_t offset = size_t(slots[t] % kv.blockSize);
        for (int h = 0; h < kv.nKvHeads; ++h) {
            const size_t dst = ((block * kv.nKvHeads + h) * kv.blockSize + offset) * hd;
            const float* ks = k + (size_t(t) * kv.nKvHeads + h) * hd;
            const float* vs = v + (size_t(t) * kv.nKvHeads + h) * hd;
            for (int i = 0; i < hd; ++i) {
                if constexpr (std::is_same_v<T, float>) {
                    kPool[dst + i] = ks[i];
                    vPool[dst + i] = vs[i];
                } else {
                    kPool[dst + i] = floatToHalf(ks[i]);
                    vPool[dst + i] = floatToHalf(vs[i]);
                }
            }
        }
    }
}

}  // namespace

void attention(const CpuContext& ctx, const AttentionParams& params) {
    if (params.kv.type == DType::F16) {
        attentionTyped<uint16_t>(ctx, params);
    } else {
        attentionTyped<float>(ctx, params);
    }
}

void storeKv(const PagedKvView& kv, void* kPool, void* vPool, const float* k, const float* v,
             const int32_t* slots, int nTokens) {
    if (kv.type == DType::F16) {
        storeTyped(kv, static_cast<uint16_t*>(kPool), static_cast<uint16_t*>(vPool), k, v, slots, nTokens);
    } else {
        storeTyped(kv, static_cast<float*>(kPool), static_cast<float*>(vPool), k, v, slots, nTokens);
    }
}

}  // namespace pagoda::cpu

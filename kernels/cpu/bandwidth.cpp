#include "kernels/cpu/bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace pagoda::cpu {
namespace {

constexpr size_t kLineFloats = 16;  // one 64-byte cache line

// Sum of n floats (n a multiple of kLineFloats) with four independent
// accumulators, so the loads, not the adds, set the pace.
float sumLines(const float* p, size_t n) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t i = 0;
    for (; i + 4 * 8 <= n; i += 4 * 8) {
        for (int k = 0; k < 4; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(p + i + 8 * k));
    }
    for (; i < n; i += 8) acc[0] = _mm256_add_ps(acc[0], _mm256_loadu_ps(p + i));
    const __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

}  // namespace

BandwidthSample measureReadBandwidth(const CpuContext& ctx, size_t bytes, int repetitions) {
    const size_t nLines = std::max<size_t>(1, bytes / (kLineFloats * sizeof(float)));
    const std::vector<float> buffer(nLines * kLineFloats, 1.0f);  // [nLines * 16]
    const int nThreads = ctx.pool ? ctx.pool->size() : 1;
    std::vector<float> partial(static_cast<size_t>(nThreads));  // keeps the sums observable
    const auto readAll = [&] {
        const auto job = [&](int thread, int n) {
            const size_t begin = nLines * size_t(thread) / size_t(n) * kLineFloats;
            const size_t end = nLines * size_t(thread + 1) / size_t(n) * kLineFloats;
            partial[size_t(thread)] = sumLines(buffer.data() + begin, end - begin);
        };
        if (ctx.pool) {
            ctx.pool->run(job);
        } else {
            job(0, 1);
        }
        // The sums are never read: keep the compiler from dropping the reads.
        asm volatile("" : : "r"(partial.data()) : "memory");
    };
    readAll();
    std::vector<double> seconds;
    for (int rep = 0; rep < std::max(1, repetitions); ++rep) {
        const auto start = std::chrono::steady_clock::now();
        readAll();
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const size_t mid = seconds.size() / 2;
    const double median = seconds.size() % 2 != 0 ? seconds[mid] : (seconds[mid - 1] + seconds[mid]) / 2;
    const size_t bufferBytes = buffer.size() * sizeof(float);
    return {double(bufferBytes) / median, bufferBytes, int(seconds.size())};
}

}  // namespace pagoda::cpu

#include "kernels/cpu/bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace pagoda::cpu {
namespace {

float sumFloats(const float* data, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (size_t i = 0; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(data + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(data + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(data + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(data + i + 24));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float total = 0;
    for (float lane : lanes) total += lane;
    return total;
}

}  // namespace

BandwidthSample measureReadBandwidth(const CpuContext& ctx, size_t bytes, int repetitions) {
    const size_t n = bytes / 128 * 32;  // floats, in whole 128-byte units of the sum loop
    std::unique_ptr<float[], void (*)(void*)> buffer(
        static_cast<float*>(std::aligned_alloc(64, n * sizeof(float))), std::free);
    ctx.pool->parallelFor(n, 32, [&](size_t begin, size_t end) {
        std::fill(buffer.get() + begin, buffer.get() + end, 1.0f);  // touch pages on the thread that reads them
    });
    std::atomic<float> sink{0};
    std::vector<double> seconds;
    for (int r = -1; r < repetitions; ++r) {
        const auto start = std::chrono::steady_clock::now();
        ctx.pool->parallelFor(n, 32, [&](size_t begin, size_t end) {
            sink.store(sink.load(std::memory_order_relaxed) + sumFloats(buffer.get() + begin, end - begin),
                       std::memory_order_relaxed);
        });
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r >= 0) seconds.push_back(s);
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    return {double(n * sizeof(float)) / median, median};
}

}  // namespace pagoda::cpu

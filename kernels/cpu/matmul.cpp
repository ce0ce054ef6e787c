#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <limits>
#include <vector>

#include "kernels/cpu/matmul_isa.h"
#include "kernels/cpu/matvec_q8.h"

namespace pagoda::cpu {
namespace {

// Decode and small batches hand out rows in chunks of about this many weight bytes: enough
// that claiming a chunk costs well under 1% of streaming it, few enough that
// a thread the OS delays leaves little work behind.
constexpr int64_t kDecodeChunkBytes = 256 * 1024;
// Prefill chunks reuse each x panel across many row tiles.
constexpr int64_t kPrefillChunkRows = 48;
// Multiple of both instruction sets' row steps (decode 4; small batch 2; prefill 3 and 4).
constexpr int64_t kRowAlign = 12;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows per work item: the sizes above, shrunk so that every thread gets
// about four items and none waits long for the last.
int64_t chunkRows(const detail::MatmulTask& task, int nThreads) {
    const int64_t preferred = task.nTokens <= detail::kBatchMaxTokens
                                  ? std::max<int64_t>(1, kDecodeChunkBytes / int64_t(task.wStride))
                                  : kPrefillChunkRows;
    const int64_t balanced = ceilDiv(task.rows, 4 * int64_t(nThreads));
    return ceilDiv(std::min(preferred, balanced), kRowAlign) * kRowAlign;
}

// What the pool's threads share during one matmul; captured by a single
// reference so the std::function needs no allocation.
struct SharedWork {
    const detail::MatmulTask& task;
    detail::MatmulRowsFn kernel;
    int64_t chunkRows;
    int64_t nChunks;
    std::atomic<int64_t> nextChunk = 0;
};

}  // namespace

Int8Kernel int8Kernel(const CpuContext& ctx) {
    static const bool avx512Vnni = detectAvx512Vnni();
    static const bool avxVnni = detectAvxVnni();
    if (ctx.vnni && ctx.simd == SimdLevel::Avx512 && avx512Vnni) return Int8Kernel::Avx512Vnni;
    if (ctx.vnni && avxVnni) return Int8Kernel::AvxVnni;
    return Int8Kernel::Avx2;
}

std::string_view int8KernelName(Int8Kernel kernel) {
    switch (kernel) {
    case Int8Kernel::Avx2: return "avx2";
    case Int8Kernel::AvxVnni: return "avx-vnni";
    case Int8Kernel::Avx512Vnni: return "avx512-vnni";
    }
    return "unknown";
}

void matmul(const CpuContext& ctx, const WeightMatrix& w, const float* x, float* y, int64_t nTokens) {
    assert(isComputeSupported(w.type) && "matmul: weight type without a CPU kernel");
    if (w.rows <= 0 || nTokens <= 0) return;
    if (!isComputeSupported(w.type)) {
        std::fill_n(y, nTokens * w.rows, std::numeric_limits<float>::quiet_NaN());
        return;
    }
    if (w.cols == 0) {
        std::fill_n(y, nTokens * w.rows, 0.0f);
        return;
    }
    detail::MatmulTask task{w.type, static_cast<const uint8_t*>(w.data), rowBytes(w.type, size_t(w.cols)),
                            w.rows, w.cols, x, y, nTokens};
    detail::MatmulRowsFn kernel = ctx.simd == SimdLevel::Avx512 ? detail::matmulRowsAvx512 : detail::matmulRowsAvx2;
    // The integer path quantizes x once, here, for every thread: the
    // integer kernels then read a quarter of the bytes of x and multiply 32
    // pairs per instruction where the float kernels first widen every
    // weight to f32. The buffer is the calling thread's, kept across calls:
    // a step makes one call per weight matrix. A prompt's tokens are
    // quantized on every thread (each token's bytes are the same either way).
    if (ctx.int8Matmul && detail::hasInt8Kernel(w.type)) {
        thread_local std::vector<uint8_t> xq;
        const size_t tokenBytes = detail::q8ActivationBytes(w.type, w.cols);
        xq.resize(size_t(nTokens) * tokenBytes);
        uint8_t* const out = xq.data();
        const auto quantize = [&](size_t begin, size_t end) {
            for (size_t t = begin; t < end; ++t) {
                detail::quantizeActivations(w.type, x + int64_t(t) * w.cols, w.cols, out + t * tokenBytes);
            }
        };
        if (ctx.pool && nTokens > detail::kBatchMaxTokens) {
            ctx.pool->parallelFor(size_t(nTokens), 1, quantize);
        } else {
            quantize(0, size_t(nTokens));
        }
        task.xq = xq.data();
        switch (int8Kernel(ctx)) {
        case Int8Kernel::Avx512Vnni: kernel = detail::matmulQ8RowsAvx512Vnni; break;
        case Int8Kernel::AvxVnni: kernel = detail::matmulQ8RowsAvxVnni; break;
        case Int8Kernel::Avx2: kernel = detail::matmulQ8RowsAvx2; break;
        }
    }
    const int nThreads = ctx.pool ? ctx.pool->size() : 1;
    const int64_t rowsPerChunk = chunkRows(task, nThreads);
    const int64_t nChunks = ceilDiv(w.rows, rowsPerChunk);
    if (nThreads == 1 || nChunks == 1) {
        kernel(task, 0, w.rows);
        return;
    }
    // Chunks are claimed dynamically, so a thread that the OS preempts (the
    // machine is shared) does not hold the others back.
    SharedWork work{task, kernel, rowsPerChunk, nChunks};
    ctx.pool->run([&work](int, int) {
        for (;;) {
            const int64_t chunk = work.nextChunk.fetch_add(1, std::memory_order_relaxed);
            if (chunk >= work.nChunks) return;
            const int64_t begin = chunk * work.chunkRows;
            work.kernel(work.task, begin, std::min(work.task.rows, begin + work.chunkRows));
        }
    });
}

}  // namespace pagoda::cpu

#include "kernels/cuda/naive_attention.h"

#include <string>

#include "kernels/cuda/activations.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pagoda::cuda {
namespace {

struct RowSpan {
    SeqDesc seq;
    int tokenRow;
    int pos;
    int lo;
};

// Row r of the call: false for padding, whose token row is still set.
__device__ __forceinline__ bool loadRow(const AttentionArgs& a, const int32_t* rows, int r, RowSpan& span) {
    const int seqIndex = rows[2 * r];
    const int query = rows[2 * r + 1];
    if (seqIndex < 0) {
        span.tokenRow = query;
        return false;
    }
    span.seq = loadSeq(a.seqs, seqIndex);
    span.tokenRow = span.seq.queryOffset + query;
    span.pos = span.seq.startPos + query;
    span.lo = windowStart(span.pos, a.window);
    return true;
}

// scores[r][h][j] = scale * q·k (soft-capped) at position lo + j, -inf past the row's
// context. grid: (ceil(context / 128), nHeads, nRows).
__global__ void naiveScoresKernel(AttentionArgs a, const int32_t* rows, int context, float* scores) {
    const int h = blockIdx.y;
    const int r = blockIdx.z;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    RowSpan span;
    if (!loadRow(a, rows, r, span) || j >= context) return;
    const int D = a.kv.headDim;
    const int pos = span.lo + j;
    float score = -INFINITY;
    if (pos <= span.pos) {
        const int64_t row = kvPositionRow(a, span.seq, pos, h / (a.nHeads / a.kv.nKvHeads));
        const float* q = a.q + (int64_t(span.tokenRow) * a.nHeads + h) * D;
        float dot = 0.0f;
        for (int d = 0; d < D; ++d) dot += q[d] * kvElement(a, a.kv.k, row, d);
        score = dot * a.scale;
        if (a.softcap > 0.0f) score = softcapValue(score, a.softcap);
    }
    scores[(int64_t(r) * a.nHeads + h) * context + j] = score;
}

// In-place softmax of each score row. grid: (nHeads, nRows).
__global__ void naiveSoftmaxKernel(const int32_t* rows, int nHeads, int context, float* scores) {
    __shared__ float scratch[32];
    if (rows[2 * blockIdx.y] < 0) return;
    float* row = scores + (int64_t(blockIdx.y) * nHeads + blockIdx.x) * context;
    float mMax = -INFINITY;
    for (int j = threadIdx.x; j < context; j += blockDim.x) mMax = fmaxf(mMax, row[j]);
    mMax = blockMax(mMax, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < context; j += blockDim.x) {
        const float e = expf(row[j] - mMax);
        row[j] = e;
        sum += e;
    }
    sum = blockSum(sum, scratch);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < context; j += blockDim.x) row[j] *= inv;
}

// out[row][h] = P · V. grid: (nHeads, nRows); threads over the head dim.
__global__ void naiveOutputKernel(AttentionArgs a, const int32_t* rows, int context, const float* scores) {
    const int h = blockIdx.x;
    const int r = blockIdx.y;
    const int D = a.kv.headDim;
    RowSpan span;
    const bool real = loadRow(a, rows, r, span);
    float* out = a.out + (int64_t(span.tokenRow) * a.nHeads + h) * D;
    if (!real) {
        for (int d = threadIdx.x; d < D; d += blockDim.x) out[d] = 0.0f;
        return;
    }
    const float* p = scores + (int64_t(r) * a.nHeads + h) * context;
    const int kvHead = h / (a.nHeads / a.kv.nKvHeads);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int pos = span.lo; pos <= span.pos; ++pos) {
            acc += p[pos - span.lo] * kvElement(a, a.kv.v, kvPositionRow(a, span.seq, pos, kvHead), d);
        }
        out[d] = acc;
    }
}

}  // namespace

Status naiveAttention(cudaStream_t stream, const AttentionArgs& args, const int32_t* rows, int nRows, int context,
                      float* scores) {
    const int D = args.kv.headDim;
    if (D < 2 || D > kMaxHeadDim || args.kv.nKvHeads < 1 || args.nHeads % args.kv.nKvHeads != 0 || nRows < 0 ||
        nRows > 65535 || context < 1) {
        return Status::error("naiveAttention: head dim " + std::to_string(D) + ", " + std::to_string(args.nHeads) +
                             " heads over " + std::to_string(args.kv.nKvHeads) + ", " + std::to_string(nRows) +
                             " rows, context " + std::to_string(context));
    }
    if (nRows == 0) return {};
    const dim3 scoreGrid(unsigned(ceilDiv(context, 128)), unsigned(args.nHeads), unsigned(nRows));
    naiveScoresKernel<<<scoreGrid, 128, 0, stream>>>(args, rows, context, scores);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    const dim3 rowGrid(unsigned(args.nHeads), unsigned(nRows));
    naiveSoftmaxKernel<<<rowGrid, 256, 0, stream>>>(rows, args.nHeads, context, scores);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    naiveOutputKernel<<<rowGrid, 128, 0, stream>>>(args, rows, context, scores);
    PAGODA_CUDA_CHECK(cudaGetLastError());
    return {};
}

}  // namespace pagoda::cuda

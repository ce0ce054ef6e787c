#include "kernels/cpu/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention_common.h"
#include "kernels/cpu/matmul.h"

namespace pagoda::cpu {
namespace detail {

// The ISA tables read Q8_0 rows as blocks of an fp16 scale and 32 int8.
static_assert(sizeof(BlockQ8_0) == 2 + kQK8_0 && kQK8_0 == 32);

void AttentionTask::floatRows(const SequenceTask& s, const std::byte* pool, int kvHead, int pos, int n,
                              const float** rows, float* buf) const {
    // Rows of one head are contiguous within a block (paged) and
    // nKvHeads rows apart (contiguous).
    const size_t strideRows = s.blockTable ? 1 : size_t(nKvHeads);
    for (int i = 0; i < n;) {
        const int run = s.blockTable ? std::min(n - i, blockSize - (pos + i) % blockSize) : n - i;
        const std::byte* first = pool + rowIndex(s, pos + i, kvHead) * rowBytes();
        float* dst = buf + size_t(i) * headDim;
        if (type == DType::F16) {
            kernels->halfRowsToFloat(reinterpret_cast<const uint16_t*>(first), strideRows * headDim, run, headDim,
                                     dst);
        } else if (type == DType::Q8_0) {
            kernels->q8RowsToFloat(first, strideRows * rowBytes(), run, headDim, dst);
        }
        for (int r = 0; r < run; ++r) {
            rows[i + r] = converts() ? dst + size_t(r) * headDim
                                     : reinterpret_cast<const float*>(first) + size_t(r) * strideRows * headDim;
        }
        i += run;
    }
}

void AttentionTask::halfRows(const SequenceTask& s, const std::byte* pool, int kvHead, int pos, int n,
                             const uint16_t** rows) const {
    const size_t stride = s.blockTable ? size_t(headDim) : size_t(nKvHeads) * headDim;
    for (int i = 0; i < n;) {
        const int run = s.blockTable ? std::min(n - i, blockSize - (pos + i) % blockSize) : n - i;
        const uint16_t* src = reinterpret_cast<const uint16_t*>(pool + rowIndex(s, pos + i, kvHead) * rowBytes());
        for (int r = 0; r < run; ++r) rows[i + r] = src + r * stride;
        i += run;
    }
}

void AttentionTask::prefetchRows(const SequenceTask& s, const std::byte* pool, int kvHead, int pos, int n) const {
    constexpr size_t kLine = 64;
    for (int i = 0; i < n;) {
        // Paged: the run of rows in one block is contiguous; contiguous: one row.
        const int run = s.blockTable ? std::min(n - i, blockSize - (pos + i) % blockSize) : 1;
        const std::byte* first = pool + rowIndex(s, pos + i, kvHead) * rowBytes();
        for (size_t b = 0; b < size_t(run) * rowBytes(); b += kLine) {
            _mm_prefetch(reinterpret_cast<const char*>(first + b), _MM_HINT_T0);
        }
        i += run;
    }
}

void forEachItem(const AttentionTask& task, size_t nItems, const std::function<void(size_t item, int thread)>& fn) {
    if (task.pool == nullptr || task.nThreads == 1 || nItems <= 1) {
        for (size_t i = 0; i < nItems; ++i) fn(i, 0);
        return;
    }
    std::atomic<size_t> next = 0;
    task.pool->run([&](int thread, int) {
        for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < nItems;
             i = next.fetch_add(1, std::memory_order_relaxed)) {
            fn(i, thread);
        }
    });
}

}  // namespace detail

namespace {

using detail::Arena;
using detail::AttentionTask;
using detail::SequenceTask;

// The call resolved into what a driver runs: the task, its sequences and,
// for expandKv, where the per-head copies go and what they copy.
struct Prepared {
    AttentionTask task;
    std::vector<SequenceTask> sequences;  // task.sequences
    std::vector<SequenceTask> sources;    // expandKv: the sequences as the caller gave them
    std::vector<size_t> copyOffsets;      // expandKv: workspace offsets of each sequence's K and V copies
    AttentionWorkspaceSize size;
};

void prepare(const AttentionParams& p, int nThreads, Prepared& out) {
    const PagedKvView& kv = p.kv;
    assert(kv.type == DType::F16 || kv.type == DType::F32 || kv.type == DType::Q8_0);
    assert(kv.headDim % int(dtypeInfo(kv.type).blockElements) == 0);
    assert(kv.nKvHeads > 0 && kv.headDim > 0 && p.nHeads % kv.nKvHeads == 0 && p.window >= 0);
    AttentionTask& t = out.task;
    t.q = p.q;
    t.out = p.out;
    t.nHeads = p.nHeads;
    t.nKvHeads = kv.nKvHeads;
    t.group = p.nHeads / kv.nKvHeads;
    t.headDim = kv.headDim;
    t.blockSize = kv.blockSize;
    t.type = kv.type;
    t.scaleLog2 = p.scale * detail::kLog2e;
    t.softcapLog2 = p.softcap * detail::kLog2e;
    t.window = p.window;
    t.nThreads = std::max(1, nThreads);

    out.sequences.clear();
    for (const AttentionSequence& s : p.sequences) {
        if (s.nQueries <= 0) continue;
        SequenceTask st{s.queryOffset, s.nQueries, s.startPos, s.blockTable, nullptr, nullptr, 0};
        if (s.blockTable) {
            assert(kv.blockSize > 0 && kv.k && kv.v);
            st.k = static_cast<const std::byte*>(kv.k);
            st.v = static_cast<const std::byte*>(kv.v);
        } else {
            assert(s.k && s.v);
            st.k = static_cast<const std::byte*>(s.k);
            st.v = static_cast<const std::byte*>(s.v);
        }
        out.sequences.push_back(st);
    }

    Arena arena(nullptr);
    if (p.expandKv && t.group > 1) {
        // Each sequence's visible positions [windowStart(startPos), lastPos]
        // as [span][nHeads][headDim]: multi-head attention over the copies.
        out.sources = out.sequences;
        for (SequenceTask& s : out.sequences) {
            s.firstPos = t.windowStart(s.startPos);
            const size_t bytes = size_t(s.lastPos() - s.firstPos + 1) * t.nHeads * t.rowBytes();
            out.copyOffsets.push_back(arena.takeOffset(bytes));
            out.copyOffsets.push_back(arena.takeOffset(bytes));
            s.blockTable = nullptr;
        }
        t.nKvHeads = t.nHeads;
        t.group = 1;
        out.size.expandedKv = arena.used();
    }
    t.sequences = out.sequences;
    if (p.algorithm == AttentionAlgorithm::Flash) {
        detail::layoutFlashWorkspace(t, arena);
    } else {
        detail::layoutNaiveWorkspace(t, arena);
    }
    out.size.scratch = arena.used() - out.size.expandedKv;
}

// repeat_kv: copies KV head h / group of every visible position of the
// caller's sequences to head h of the expanded copies at `base`.
void expandKv(const Prepared& prepared, int group, std::byte* base) {
    const AttentionTask& t = prepared.task;
    const size_t nSequences = prepared.sequences.size();
    std::vector<size_t> firstRow(nSequences + 1, 0);  // prefix sums of the spans
    for (size_t i = 0; i < nSequences; ++i) {
        const SequenceTask& s = prepared.sequences[i];
        firstRow[i + 1] = firstRow[i] + size_t(s.lastPos() - s.firstPos + 1);
    }
    const size_t rowBytes = t.rowBytes();
    AttentionTask source = t;
    source.nKvHeads = t.nHeads / group;
    constexpr size_t kRowsPerItem = 64;
    const size_t nItems = (firstRow.back() + kRowsPerItem - 1) / kRowsPerItem;
    detail::forEachItem(t, nItems, [&](size_t item, int) {
        const size_t end = std::min(firstRow.back(), (item + 1) * kRowsPerItem);
        for (size_t row = item * kRowsPerItem; row < end; ++row) {
            const size_t i = size_t(std::upper_bound(firstRow.begin(), firstRow.end(), row) - firstRow.begin()) - 1;
            const SequenceTask& dst = prepared.sequences[i];
            const SequenceTask& src = prepared.sources[i];
            std::byte* kDst = base + prepared.copyOffsets[2 * i];
            std::byte* vDst = base + prepared.copyOffsets[2 * i + 1];
            const int pos = dst.firstPos + int(row - firstRow[i]);
            for (int h = 0; h < t.nHeads; ++h) {
                const size_t from = source.rowIndex(src, pos, h / group) * rowBytes;
                const size_t to = t.rowIndex(dst, pos, h) * rowBytes;
                std::memcpy(kDst + to, src.k + from, rowBytes);
                std::memcpy(vDst + to, src.v + from, rowBytes);
            }
        }
    });
}

}  // namespace

std::byte* AttentionWorkspace::reserve(size_t bytes) {
    bytes = std::max<size_t>(bytes, 64);
    if (bytes > m_capacity) {
        m_data.reset();
        m_data.reset(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t(64))));
        m_capacity = bytes;
    }
    return m_data.get();
}

AttentionWorkspaceSize attentionWorkspaceSize(const AttentionParams& params, int nThreads) {
    Prepared prepared;
    prepare(params, nThreads, prepared);
    return prepared.size;
}

void attention(const CpuContext& ctx, const AttentionParams& params) {
    Prepared prepared;
    prepare(params, ctx.pool ? ctx.pool->size() : 1, prepared);
    AttentionWorkspace local;
    AttentionWorkspace& workspace = params.workspace ? *params.workspace : local;
    std::byte* base = workspace.reserve(prepared.size.total());
    for (size_t i = 0; i < prepared.copyOffsets.size(); i += 2) {
        prepared.sequences[i / 2].k = base + prepared.copyOffsets[i];
        prepared.sequences[i / 2].v = base + prepared.copyOffsets[i + 1];
    }

    AttentionTask& task = prepared.task;
    task.kernels = ctx.simd == SimdLevel::Avx512 ? &detail::attentionKernelsAvx512() : &detail::attentionKernelsAvx2();
    task.pool = ctx.pool;
    if (!prepared.sources.empty()) expandKv(prepared, params.nHeads / params.kv.nKvHeads, base);
    if (params.algorithm == AttentionAlgorithm::Flash) {
        detail::runFlash(task, base + prepared.size.expandedKv);
    } else {
        detail::runNaive(task, base + prepared.size.expandedKv);
    }
}

void storeKv(const PagedKvView& kv, void* kPool, void* vPool, const float* k, const float* v,
             const int32_t* slots, int nTokens) {
    const size_t headBytes = rowBytes(kv.type, size_t(kv.headDim));
    for (int t = 0; t < nTokens; ++t) {
        const size_t block = size_t(slots[t] / kv.blockSize);
        const size_t offset = size_t(slots[t] % kv.blockSize);
        for (int h = 0; h < kv.nKvHeads; ++h) {
            const size_t dst = ((block * kv.nKvHeads + h) * kv.blockSize + offset) * headBytes;
            const size_t src = (size_t(t) * kv.nKvHeads + h) * kv.headDim;
            quantizeRow(kv.type, k + src, static_cast<std::byte*>(kPool) + dst, kv.headDim);
            quantizeRow(kv.type, v + src, static_cast<std::byte*>(vPool) + dst, kv.headDim);
        }
    }
}

int layerWindow(const LocalGlobalPattern& pattern, int layer) {
    const bool global = pattern.globalEvery > 0 && (layer + 1) % pattern.globalEvery == 0;
    return global ? 0 : pattern.window;
}

}  // namespace pagoda::cpu

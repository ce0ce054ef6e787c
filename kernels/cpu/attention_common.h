#pragma once
// Private to the CPU attention: the call as the flash and naive drivers see
// it (params resolved into one task), K/V row addressing for paged and
// contiguous sequences, workspace carving and the work-claiming loop.

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_isa.h"
#include "kernels/cpu/elementwise.h"

namespace pagoda::cpu::detail {

// Scores are kept as scale · q·k · log2(e), so that softmax is 2^(s - max).
inline constexpr float kLog2e = 1.4426950408889634f;
// F16 K/V rows used by at least this many query rows are converted to f32
// once (the conversion is then shared); fewer rows (decode) read them in
// place and convert in registers, which saves a store and reload per element.
inline constexpr int kConvertRows = 8;

// One sequence's queries and where its K/V rows live.
struct SequenceTask {
    int queryOffset = 0;
    int nQueries = 0;
    int startPos = 0;
    const int32_t* blockTable = nullptr;  // paged; nullptr: contiguous
    const std::byte* k = nullptr;         // paged: the pool; contiguous: the row of position firstPos
    const std::byte* v = nullptr;
    int firstPos = 0;  // contiguous only

    int lastPos() const { return startPos + nQueries - 1; }
};

struct AttentionTask {
    const float* q = nullptr;  // [nTokens][nHeads][headDim]
    float* out = nullptr;      // [nTokens][nHeads][headDim]
    int nHeads = 0;
    int nKvHeads = 0;
    int group = 0;  // nHeads / nKvHeads
    int headDim = 0;
    int blockSize = 0;
    DType type = DType::F16;  // of the K/V rows: F16, F32 or Q8_0
    float scaleLog2 = 0.0f;  // scale · log2(e)
    float softcapLog2 = 0.0f;  // params.softcap · log2(e); 0: scores are not capped
    int window = 0;
    std::span<const SequenceTask> sequences;
    const AttentionKernels* kernels = nullptr;
    ThreadPool* pool = nullptr;  // nullptr: run on the caller
    int nThreads = 1;

    // Bytes of one K or V row of one head.
    size_t rowBytes() const { return pagoda::rowBytes(type, size_t(headDim)); }
    // Whether reading rows as f32 converts them into a buffer (F16, Q8_0);
    // F32 rows are read in place.
    bool converts() const { return type != DType::F32; }
    // F16 rows that fewer than kConvertRows query rows use are read in place
    // (halfRows), converted in registers, rather than into a buffer.
    bool halfInPlace(int queryRows) const { return type == DType::F16 && queryRows < kConvertRows; }
    // Caps n scores kept as scale · q·k · log2(e) (softcap: c · tanh(x / c)
    // is the same map in either unit); nothing without a cap.
    void capScores(float* s, int n) const {
        if (softcapLog2 > 0.0f) softcap(s, n, softcapLog2);
    }
    // First KV position the query at `pos` attends to.
    int windowStart(int pos) const { return window > 0 ? std::max(0, pos - window + 1) : 0; }

    // Index of (pos, kvHead)'s row, in rows of rowBytes(), in the sequence's K (or V) array.
    size_t rowIndex(const SequenceTask& s, int pos, int kvHead) const {
        if (s.blockTable == nullptr) return size_t(pos - s.firstPos) * nKvHeads + kvHead;
        const int32_t block = s.blockTable[pos / blockSize];
        assert(block >= 0 && "attention read a block that left the window");
        return (size_t(block) * nKvHeads + kvHead) * blockSize + pos % blockSize;
    }

    // The rows of kvHead at positions [pos, pos + n) of `pool` (s.k or
    // s.v), all as walks over runs of rows that are contiguous in memory:
    // one block's slice (paged) or one row (contiguous, nKvHeads rows apart).
    //
    // Row pointers as f32: into the pool for F32, into buf ([n][headDim])
    // after conversion for F16 and Q8_0.
    void floatRows(const SequenceTask& s, const std::byte* pool, int kvHead, int pos, int n, const float** rows,
                   float* buf) const;
    // F16 only: pointers to the rows in place.
    void halfRows(const SequenceTask& s, const std::byte* pool, int kvHead, int pos, int n,
                  const uint16_t** rows) const;
    // Asks for the rows to be brought into cache. Paged blocks are scattered
    // and a head's slice of a block is short, so the hardware prefetcher
    // alone keeps restarting: flash prefetches the rows it will read two
    // steps later while it computes on these.
    void prefetchRows(const SequenceTask& s, const std::byte* pool, int kvHead, int pos, int n) const;
};

// Carves aligned arrays out of a workspace; with a null base it only
// measures, so sizing and carving share one description of the layout.
class Arena {
public:
    explicit Arena(std::byte* base) : m_base(base) {}

    // Byte offset of `bytes` fresh bytes.
    size_t takeOffset(size_t bytes) {
        const size_t offset = (m_used + 63) / 64 * 64;
        m_used = offset + bytes;
        return offset;
    }
    template <class T>
    T* take(size_t count) {
        const size_t offset = takeOffset(count * sizeof(T));
        return m_base ? reinterpret_cast<T*>(m_base + offset) : nullptr;
    }
    // Bytes up to the end of the last array, rounded up to whole cache lines.
    size_t used() const { return (m_used + 63) / 64 * 64; }

private:
    std::byte* m_base;
    size_t m_used = 0;
};

// Runs fn(item, thread) for every item in [0, nItems) on the task's
// threads; threads claim items in order from a shared counter.
void forEachItem(const AttentionTask& task, size_t nItems, const std::function<void(size_t item, int thread)>& fn);

// The drivers. Each lays out its workspace in `arena`; run* carves the same
// layout from a real base and computes.
void layoutFlashWorkspace(const AttentionTask& task, Arena& arena);
void runFlash(const AttentionTask& task, std::byte* workspace);
void layoutNaiveWorkspace(const AttentionTask& task, Arena& arena);
void runNaive(const AttentionTask& task, std::byte* workspace);

}  // namespace pagoda::cpu::detail

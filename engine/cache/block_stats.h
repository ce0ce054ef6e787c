#pragma once
// What the block manager reports to metrics and the UI: counters and
// occupancy (BlockStats, O(1) to take) and a per-block map (BlockMapEntry,
// O(blocks + table entries), fine at 10 snapshots per second).

#include <array>
#include <cstdint>

namespace pagoda {

using SeqId = int64_t;

// Why a block's KV left use. Lru and Fifo: the policy dropped a cached,
// unreferenced block's content to reuse its space. Window and Preemption:
// a sequence let go of the block and no other sequence holds it (if it is
// a full, cached block it stays cached and may still be reused).
enum class EvictionCause { Lru, Fifo, Window, Preemption };
inline constexpr int kEvictionCauses = 4;

struct BlockStats {
    int blocksTotal = 0;
    int blocksUsed = 0;    // referenced by at least one sequence (contiguous: reserved)
    int blocksCached = 0;  // unreferenced, holding a cached prefix block; evictable
    int blocksFree = 0;
    int sequences = 0;

    int64_t tokensStored = 0;        // tokens written in used blocks; a shared block counts once
    int64_t tokensInSequences = 0;   // sum of sequence lengths; shared tokens count per sequence
    int64_t slotsAllocated = 0;      // blocksUsed * blockSize

    std::array<int64_t, kEvictionCauses> evictions{};  // blocks, by EvictionCause

    int64_t prefixQueries = 0;      // admissions that looked up the prefix cache
    int64_t prefixQueryTokens = 0;  // prompt tokens of those admissions
    int64_t prefixHitBlocks = 0;
    int64_t prefixHitTokens = 0;    // prefill the caller skipped

    // Tokens stored / slots in allocated blocks (1 when nothing is allocated).
    double slotUtilization() const { return slotsAllocated ? double(tokensStored) / double(slotsAllocated) : 1.0; }
    // Prefix hit tokens / queried prompt tokens (0 before any query).
    double prefixHitRate() const {
        return prefixQueryTokens ? double(prefixHitTokens) / double(prefixQueryTokens) : 0.0;
    }
    int64_t evictionsBy(EvictionCause cause) const { return evictions[size_t(cause)]; }
};

enum class BlockState : uint8_t {
    Free,    // holds nothing
    Used,    // referenced by `refs` sequences
    Cached,  // unreferenced; holds a cached prefix block until evicted
};

struct BlockMapEntry {
    BlockState state = BlockState::Free;
    int32_t refs = 0;  // sequences whose table holds the block (>1: shared)
    SeqId owner = -1;  // lowest id among those sequences; -1 when none
};

}  // namespace pagoda

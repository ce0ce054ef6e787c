#pragma once
// The KV-cache block manager: bookkeeping of which physical blocks of the
// KV pools (engine/kv/kv_cache.h, [numBlocks][nKvHeads][blockSize][headDim]
// per layer) hold which sequence's tokens. It owns no KV memory: block ids
// index the pools, and the caller applies the block copies it returns.
//
// Paged mode hands out blocks as sequences grow. Full blocks are shared by
// reference count between sequences with the same token prefix (prefix
// cache); a full block whose last reference goes stays cached until its
// space is needed, then the eviction policy (LRU or FIFO) picks the victim.
// With a sliding window, blocks wholly outside the window are released and
// their table entries become kNoBlock. Contiguous mode is the baseline that
// paged mode is measured against: each sequence reserves blocks for the
// whole context on admission, and nothing is shared or cached.
//
// Not thread-safe: one scheduler thread calls it (the UI reads snapshots
// the scheduler takes).

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/cache/block_stats.h"
#include "engine/cache/eviction_policy.h"
#include "engine/cache/prefix_cache.h"
#include "engine/core/result.h"

namespace pagoda {

// Table entry of a logical block released by the sliding window.
inline constexpr int32_t kNoBlock = -1;

enum class KvAllocation { Paged, Contiguous };

struct BlockManagerConfig {
    int numBlocks = 0;       // physical blocks in the pools (kvLayoutForBudget)
    int blockSize = 16;      // tokens per block: 8, 16 or 32
    int maxContext = 4096;   // most tokens one sequence may hold; contiguous mode reserves this many
    KvAllocation allocation = KvAllocation::Paged;
    bool prefixCaching = true;  // paged only
    EvictionPolicyKind eviction = EvictionPolicyKind::Lru;
    int slidingWindow = 0;   // a token attends to the last slidingWindow positions; 0 = all (paged only)
    double watermark = 0.01; // fraction of blocks admission leaves available for running sequences to grow
    uint64_t hashSeed = 0;   // key of the prefix hash; 0: a random key per manager
};

// admit()'s and canAdmit()'s limit on prefix hits: none.
inline constexpr int kAnyHits = std::numeric_limits<int>::max();

// Outcome of an operation that needs blocks. NoSpace is not an error: the
// caller waits or preempts a sequence and retries; nothing was allocated.
enum class Alloc { Ok, NoSpace };

struct Admission {
    Alloc status = Alloc::Ok;
    SeqId seq = -1;     // valid when Ok
    int hitBlocks = 0;  // leading prompt blocks found in the prefix cache
    int hitTokens = 0;  // = hitBlocks * blockSize: prefill the caller skips
};

// Copy block src to block dst in every layer's K and V pools.
struct BlockCopy {
    int32_t src = 0;
    int32_t dst = 0;
};

struct Fork {
    Alloc status = Alloc::Ok;
    SeqId seq = -1;                // the new sequence, when Ok
    std::vector<BlockCopy> copies;  // to apply before the next forward pass
};

class BlockManager {
public:
    // Errors on an invalid config, or in contiguous mode when the pool
    // cannot hold one sequence of maxContext tokens.
    static Result<BlockManager> create(const BlockManagerConfig& config);

    const BlockManagerConfig& config() const { return m_config; }

    // --- used by the scheduler ---

    // Starts a sequence for `prompt`. Paged: its table begins with the
    // longest run of the prompt's leading full blocks found in the prefix
    // cache (never the whole prompt: at least its last token is left to
    // compute, for the logits), and its length is hitTokens; the caller
    // skips that prefill and appends the rest with appendSlots. Never
    // NoSpace in paged mode (check canAdmit first); contiguous mode reserves
    // the sequence's blocks here and is NoSpace when no reservation is free.
    // With a sliding window, a hit needs only the cached blocks the next
    // token's window reaches (the earlier entries start as kNoBlock), so a
    // window's blocks still hit after the ones before them were evicted.
    // At most maxHitBlocks are taken (a cache whose layers share a
    // sequence's positions takes the hits every manager has).
    // Errors on an empty prompt or one longer than maxContext.
    Result<Admission> admit(std::span<const int32_t> prompt, int maxHitBlocks = kAnyHits);
    // The hitBlocks admit(prompt, maxHitBlocks) would have (0 without
    // prefix caching). Errors as admit does.
    Result<int> prefixHitBlocks(std::span<const int32_t> prompt, int maxHitBlocks = kAnyHits) const;

    // Gives `tokens` (the ids whose K/V the next forward pass writes) the
    // next positions of seq and appends their pool slots (block * blockSize
    // + offset) to `slots`. Blocks that left the sliding window are released
    // first (their space counts as available). On NoSpace nothing changes.
    // Errors on an unknown sequence or when seq would exceed maxContext.
    Result<Alloc> appendSlots(SeqId seq, std::span<const int32_t> tokens, std::vector<int32_t>& slots);

    // A new sequence with parent's tokens: it shares the parent's full
    // blocks; the partly filled last block (the one both will write) is
    // copied to a new block (copy-on-write), which the caller applies with
    // the returned copies. NoSpace when that block cannot be had.
    Result<Fork> fork(SeqId parent);

    // Ends seq: its blocks lose a reference; full blocks in the prefix cache
    // stay cached, the rest are free. Errors on an unknown or already
    // released sequence.
    Result<void> release(SeqId seq);
    // release(seq), counting the blocks it frees as preemption evictions.
    Result<void> preempt(SeqId seq);

    // Whether admit(prompt, maxHitBlocks) and appending the rest of the
    // prompt would succeed now while leaving watermarkBlocks() available
    // (prefix hits counted). With a sliding window, appended a token at a
    // time: the blocks of one window, since the window releases the earlier
    // ones (the scheduler's chunks take what canAppend allows).
    // Errors as admit does.
    Result<bool> canAdmit(std::span<const int32_t> prompt, int maxHitBlocks = kAnyHits) const;
    // Whether appendSlots(seq, nTokens more) would succeed now.
    Result<bool> canAppend(SeqId seq, int nTokens) const;
    // Blocks that preempting seq would make available (those no other
    // sequence holds).
    Result<int> blocksFreedByPreempting(SeqId seq) const;
    // Blocks an allocation can take now: free plus evictable cached ones
    // (contiguous: blocks of free reservations).
    int availableBlocks() const;
    int watermarkBlocks() const { return m_watermarkBlocks; }

    // --- used by the forward pass ---

    // seq's block table, logical -> physical block (kNoBlock for blocks
    // that left the sliding window): ceil(length / blockSize) entries
    // (contiguous: the whole reservation). Valid until the next call that
    // changes seq.
    Result<std::span<const int32_t>> blockTable(SeqId seq) const;
    // Tokens appended to seq (prefix hits included).
    Result<int> length(SeqId seq) const;

    // --- used by metrics and the UI ---

    BlockStats stats() const;
    std::vector<BlockMapEntry> blockMap() const;

    // --- used by tests ---

    // Checks every invariant (each block in exactly one state, reference
    // counts equal to the tables holding the block, counters consistent);
    // the error names the first broken one. O(blocks + table entries).
    Result<void> validate() const;

private:
    struct Block {
        int32_t refs = 0;  // tables holding the block
        int32_t fill = 0;  // tokens written, [0, blockSize]
    };

    struct Sequence {
        std::vector<int32_t> blocks;  // [logical block] physical block; kNoBlock below firstLive
        int length = 0;               // tokens appended
        int firstLive = 0;            // logical blocks [0, firstLive) left the sliding window
        int reservation = -1;         // contiguous: index of its reservation
        uint64_t lastHash = 0;        // chained hash of its last full block (hasher root before one)
        bool hashing = true;          // false after a hash collision: later blocks are not cached
        std::vector<int32_t> tail;    // token ids of the partly filled last block (prefix caching)
    };

    explicit BlockManager(const BlockManagerConfig& config);

    bool paged() const { return m_config.allocation == KvAllocation::Paged; }
    int blocksFor(int tokens) const { return (tokens + m_config.blockSize - 1) / m_config.blockSize; }
    Result<void> checkPrompt(std::span<const int32_t> prompt) const;
    Result<Sequence*> find(SeqId seq);
    Result<const Sequence*> find(SeqId seq) const;
    SeqId addSequence(Sequence sequence);

    // Prefix-cache lookup of prompt's leading full blocks (at most
    // blocks - 1 when the prompt ends on a block boundary): the hits, at
    // most maxHitBlocks, the table they start (kNoBlock below the window)
    // and the chained hash of the last hit block (the hasher's root for none).
    struct PrefixHits {
        int blocks = 0;
        int firstLive = 0;
        std::vector<int32_t> table;
        uint64_t lastHash = 0;
    };
    PrefixHits lookupPrefix(std::span<const int32_t> prompt, int maxHitBlocks) const;
    int windowStart(int length) const;  // logical blocks wholly outside the window of the next token
    int windowFreeable(const Sequence& seq) const;  // blocks releaseWindow(seq) would make available
    void releaseWindow(Sequence& seq);
    void cacheFullBlock(Sequence& seq, int32_t block);
    Result<void> releaseCounting(SeqId seq, std::optional<EvictionCause> cause);

    int32_t takeBlock();  // a free block, else the policy's victim; refs = 1, fill = 0
    void addRef(int32_t block);
    bool dropRef(int32_t block);  // true when no sequence holds the block anymore

    BlockManagerConfig m_config;
    int m_watermarkBlocks = 0;
    int m_reservationBlocks = 0;                    // contiguous: blocks per sequence
    std::vector<Block> m_blocks;                    // [numBlocks]
    std::vector<int32_t> m_free;                    // paged: free blocks (stack)
    std::vector<int32_t> m_freeReservations;        // contiguous: free reservations (stack)
    std::unique_ptr<EvictionPolicy> m_policy;       // paged + prefix caching: evictable cached blocks
    std::optional<PrefixCache> m_prefix;            // paged + prefix caching
    std::unordered_map<SeqId, Sequence> m_sequences;
    SeqId m_nextSeq = 0;

    int m_blocksUsed = 0;
    int64_t m_tokensStored = 0;
    int64_t m_tokensInSequences = 0;
    std::array<int64_t, kEvictionCauses> m_evictions{};
    int64_t m_prefixQueries = 0;
    int64_t m_prefixQueryTokens = 0;
    int64_t m_prefixHitBlocks = 0;
};

}  // namespace pagoda

#pragma once
// The prefix cache's index: full KV blocks by chained hash (block_hash.h),
// with each entry's token ids and parent hash kept so that a lookup only
// succeeds on an exact match; a 64-bit collision is a miss, never wrong KV
// data. Knows nothing of reference counts: the block manager decides when
// an entry is added and when its block is evicted.

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/cache/block_hash.h"

namespace pagoda {

class PrefixCache {
public:
    PrefixCache(int numBlocks, int blockSize, uint64_t seed);

    const BlockHasher& hasher() const { return m_hasher; }

    // The block cached under `hash` holding `tokens` after a parent block
    // hashed to parentHash; -1 when there is none.
    int32_t find(uint64_t hash, uint64_t parentHash, std::span<const int32_t> tokens) const;

    enum class Insert {
        Added,      // block is now cached under hash
        Duplicate,  // an equal block is cached already; block was not added
        Collision,  // a different block content has this hash; block was not added
    };
    // tokens: the block's blockSize token ids.
    Insert insert(int32_t block, uint64_t hash, uint64_t parentHash, std::span<const int32_t> tokens);
    void erase(int32_t block);

    bool contains(int32_t block) const { return m_entries[block].cached; }
    // Increases with each insertion: the order FIFO eviction follows.
    uint64_t insertionOrder(int32_t block) const { return m_entries[block].order; }
    int size() const { return int(m_byHash.size()); }

private:
    bool holds(int32_t block, uint64_t parentHash, std::span<const int32_t> tokens) const;

    struct Entry {
        uint64_t hash = 0;
        uint64_t parentHash = 0;
        uint64_t order = 0;
        bool cached = false;
    };

    int m_blockSize;
    BlockHasher m_hasher;
    std::unordered_map<uint64_t, int32_t> m_byHash;  // chained hash -> block
    std::vector<Entry> m_entries;                    // [numBlocks]
    std::vector<int32_t> m_tokens;                   // [numBlocks][blockSize] token ids of cached blocks
    uint64_t m_nextOrder = 0;
};

}  // namespace pagoda

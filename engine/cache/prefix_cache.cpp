#include "engine/cache/prefix_cache.h"

#include <algorithm>
#include <cassert>

namespace pagoda {

PrefixCache::PrefixCache(int numBlocks, int blockSize, uint64_t seed)
    : m_blockSize(blockSize), m_hasher(seed), m_entries(size_t(numBlocks)),
      m_tokens(size_t(numBlocks) * size_t(blockSize)) {}

bool PrefixCache::holds(int32_t block, uint64_t parentHash, std::span<const int32_t> tokens) const {
    const Entry& e = m_entries[block];
    const int32_t* stored = m_tokens.data() + size_t(block) * m_blockSize;
    return e.parentHash == parentHash && std::equal(tokens.begin(), tokens.end(), stored, stored + m_blockSize);
}

int32_t PrefixCache::find(uint64_t hash, uint64_t parentHash, std::span<const int32_t> tokens) const {
    auto it = m_byHash.find(hash);
    if (it == m_byHash.end() || !holds(it->second, parentHash, tokens)) return -1;
    return it->second;
}

PrefixCache::Insert PrefixCache::insert(int32_t block, uint64_t hash, uint64_t parentHash,
                                        std::span<const int32_t> tokens) {
    assert(!contains(block) && int(tokens.size()) == m_blockSize);
    auto [it, added] = m_byHash.try_emplace(hash, block);
    if (!added) return holds(it->second, parentHash, tokens) ? Insert::Duplicate : Insert::Collision;
    m_entries[block] = Entry{hash, parentHash, m_nextOrder++, true};
    std::copy(tokens.begin(), tokens.end(), m_tokens.begin() + ptrdiff_t(block) * m_blockSize);
    return Insert::Added;
}

void PrefixCache::erase(int32_t block) {
    assert(contains(block));
    m_byHash.erase(m_entries[block].hash);
    m_entries[block].cached = false;
}

}  // namespace pagoda

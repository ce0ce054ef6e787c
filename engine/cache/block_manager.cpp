#include "engine/cache/block_manager.h"

#include <algorithm>
#include <cassert>
#include <random>
#include <utility>

namespace pagoda {
namespace {

EvictionCause causeOf(EvictionPolicyKind kind) {
    return kind == EvictionPolicyKind::Lru ? EvictionCause::Lru : EvictionCause::Fifo;
}

uint64_t randomSeed() {
    std::random_device device;
    return (uint64_t(device()) << 32) | device() | 1;
}

}  // namespace

Result<BlockManager> BlockManager::create(const BlockManagerConfig& config) {
    if (config.numBlocks < 1) return fail("block manager with {} blocks: at least one is needed", config.numBlocks);
    if (config.blockSize != 8 && config.blockSize != 16 && config.blockSize != 32) {
        return fail("KV block size {}: must be 8, 16 or 32", config.blockSize);
    }
    if (config.maxContext < 1) return fail("max context of {} tokens: must be positive", config.maxContext);
    if (config.slidingWindow < 0) {
        return fail("sliding window of {} tokens: must be 0 (off) or positive", config.slidingWindow);
    }
    if (!(config.watermark >= 0 && config.watermark < 1)) {
        return fail("watermark {}: must be a fraction in [0, 1)", config.watermark);
    }
    if (config.allocation == KvAllocation::Contiguous) {
        if (config.prefixCaching) return fail("prefix caching needs paged KV allocation, not contiguous");
        const int perSequence = (config.maxContext + config.blockSize - 1) / config.blockSize;
        if (config.numBlocks < perSequence) {
            return fail("contiguous KV: {} blocks cannot hold one sequence of {} tokens ({} blocks of {} tokens)",
                        config.numBlocks, config.maxContext, perSequence, config.blockSize);
        }
    }
    return BlockManager(config);
}

BlockManager::BlockManager(const BlockManagerConfig& config)
    : m_config(config), m_watermarkBlocks(int(config.watermark * config.numBlocks)),
      m_blocks(size_t(config.numBlocks)) {
    if (paged()) {
        m_free.reserve(size_t(config.numBlocks));
        for (int b = config.numBlocks - 1; b >= 0; --b) m_free.push_back(b);
        if (config.prefixCaching) {
            m_policy = makeEvictionPolicy(config.eviction, config.numBlocks);
            m_prefix.emplace(config.numBlocks, config.blockSize, config.hashSeed ? config.hashSeed : randomSeed());
        }
    } else {
        m_reservationBlocks = blocksFor(config.maxContext);
        for (int r = config.numBlocks / m_reservationBlocks - 1; r >= 0; --r) m_freeReservations.push_back(r);
    }
}

Result<void> BlockManager::checkPrompt(std::span<const int32_t> prompt) const {
    if (prompt.empty()) return fail("cannot admit an empty prompt");
    if (prompt.size() > size_t(m_config.maxContext)) {
        return fail("prompt of {} tokens exceeds the context of {}", prompt.size(), m_config.maxContext);
    }
    return {};
}

Result<BlockManager::Sequence*> BlockManager::find(SeqId seq) {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* s, std::as_const(*this).find(seq));
    return const_cast<Sequence*>(s);
}

Result<const BlockManager::Sequence*> BlockManager::find(SeqId seq) const {
    auto it = m_sequences.find(seq);
    if (it != m_sequences.end()) return &it->second;
    if (seq >= 0 && seq < m_nextSeq) return fail("sequence {} was already released", seq);
    if (m_nextSeq == 0) return fail("unknown sequence {} (none admitted yet)", seq);
    return fail("unknown sequence {} (ids so far: 0 to {})", seq, m_nextSeq - 1);
}

SeqId BlockManager::addSequence(Sequence sequence) {
    m_tokensInSequences += sequence.length;
    m_sequences.emplace(m_nextSeq, std::move(sequence));
    return m_nextSeq++;
}

BlockManager::PrefixHits BlockManager::lookupPrefix(std::span<const int32_t> prompt, int maxHitBlocks) const {
    const int bs = m_config.blockSize;
    const bool window = m_config.slidingWindow > 0;
    const BlockHasher& hasher = m_prefix->hasher();
    const int maxBlocks = std::min((int(prompt.size()) - 1) / bs, maxHitBlocks);
    std::vector<int32_t> found;  // [k] the cached block k, or -1
    std::vector<uint64_t> hashes;  // [k] the chained hash of blocks [0, k]
    uint64_t parent = hasher.root();
    for (int k = 0; k < maxBlocks; ++k) {
        const auto tokens = prompt.subspan(size_t(k) * bs, size_t(bs));
        const uint64_t hash = hasher(parent, tokens);
        const int32_t block = m_prefix->find(hash, parent, tokens);
        if (block < 0 && !window) break;  // without a window a hit needs every block before it
        found.push_back(block);
        hashes.push_back(hash);
        parent = hash;
    }
    // The most blocks h whose blocks [first, h) are all cached, first being
    // the first block the window of the token at h * bs reaches.
    PrefixHits hits;
    int run = 0;  // cached blocks ending at k
    for (int k = 0; k < int(found.size()); ++k) {
        run = found[k] >= 0 ? run + 1 : 0;
        const int h = k + 1;
        if (run >= h - (window ? windowStart(h * bs) : 0)) hits.blocks = h;
    }
    hits.firstLive = window ? windowStart(hits.blocks * bs) : 0;
    hits.table.assign(size_t(hits.firstLive), kNoBlock);
    hits.table.insert(hits.table.end(), found.begin() + hits.firstLive, found.begin() + hits.blocks);
    hits.lastHash = hits.blocks > 0 ? hashes[size_t(hits.blocks - 1)] : hasher.root();
    return hits;
}

Result<Admission> BlockManager::admit(std::span<const int32_t> prompt, int maxHitBlocks) {
    PAGODA_RETURN_IF_ERROR(checkPrompt(prompt));
    Sequence s;
    if (!paged()) {
        if (m_freeReservations.empty()) return Admission{Alloc::NoSpace};
        s.reservation = m_freeReservations.back();
        m_freeReservations.pop_back();
        for (int i = 0; i < m_reservationBlocks; ++i) {
            const int32_t block = s.reservation * m_reservationBlocks + i;
            m_blocks[block] = Block{1, 0};
            s.blocks.push_back(block);
        }
        m_blocksUsed += m_reservationBlocks;
        return Admission{Alloc::Ok, addSequence(std::move(s))};
    }
    if (!m_prefix) return Admission{Alloc::Ok, addSequence(std::move(s))};

    PrefixHits hits = lookupPrefix(prompt, maxHitBlocks);
    s.blocks = std::move(hits.table);
    s.firstLive = hits.firstLive;
    s.lastHash = hits.lastHash;
    for (int i = s.firstLive; i < hits.blocks; ++i) addRef(s.blocks[size_t(i)]);
    const int hitTokens = hits.blocks * m_config.blockSize;
    s.length = hitTokens;
    ++m_prefixQueries;
    m_prefixQueryTokens += int64_t(prompt.size());
    m_prefixHitBlocks += hits.blocks;
    return Admission{Alloc::Ok, addSequence(std::move(s)), hits.blocks, hitTokens};
}

Result<int> BlockManager::prefixHitBlocks(std::span<const int32_t> prompt, int maxHitBlocks) const {
    PAGODA_RETURN_IF_ERROR(checkPrompt(prompt));
    return m_prefix && paged() ? lookupPrefix(prompt, maxHitBlocks).blocks : 0;
}

int BlockManager::windowStart(int length) const {
    // The token at position `length` attends to [length - window + 1, length].
    const int lo = length - m_config.slidingWindow + 1;
    return lo > 0 ? lo / m_config.blockSize : 0;
}

int BlockManager::windowFreeable(const Sequence& seq) const {
    if (!paged() || m_config.slidingWindow == 0) return 0;
    int freeable = 0;
    for (int i = seq.firstLive; i < windowStart(seq.length); ++i) freeable += m_blocks[seq.blocks[i]].refs == 1;
    return freeable;
}

void BlockManager::releaseWindow(Sequence& seq) {
    if (!paged() || m_config.slidingWindow == 0) return;
    const int end = windowStart(seq.length);
    for (int i = seq.firstLive; i < end; ++i) {
        if (dropRef(seq.blocks[i])) ++m_evictions[size_t(EvictionCause::Window)];
        seq.blocks[i] = kNoBlock;
    }
    seq.firstLive = std::max(seq.firstLive, end);
}

void BlockManager::cacheFullBlock(Sequence& seq, int32_t block) {
    if (seq.hashing) {
        const uint64_t hash = m_prefix->hasher()(seq.lastHash, seq.tail);
        // A duplicate (another sequence computed the same block first) stays
        // uncached; the chain goes on through the equal cached block's hash.
        if (m_prefix->insert(block, hash, seq.lastHash, seq.tail) == PrefixCache::Insert::Collision) {
            seq.hashing = false;
        }
        seq.lastHash = hash;
    }
    seq.tail.clear();
}

Result<Alloc> BlockManager::appendSlots(SeqId seq, std::span<const int32_t> tokens, std::vector<int32_t>& slots) {
    PAGODA_ASSIGN_OR_RETURN(Sequence * s, find(seq));
    const int n = int(tokens.size());
    if (int64_t(s->length) + n > m_config.maxContext) {
        return fail("sequence {}: {} + {} tokens exceed the context of {}", seq, s->length, n, m_config.maxContext);
    }
    const int needed = blocksFor(s->length + n) - int(s->blocks.size());
    if (needed > 0 && needed > availableBlocks() + windowFreeable(*s)) return Alloc::NoSpace;
    releaseWindow(*s);
    for (int i = 0; i < needed; ++i) s->blocks.push_back(takeBlock());

    const int bs = m_config.blockSize;
    for (int i = 0; i < n; ++i) {
        const int pos = s->length + i;
        const int32_t block = s->blocks[pos / bs];
        assert(m_blocks[block].refs == 1 && m_blocks[block].fill == pos % bs);
        slots.push_back(block * bs + pos % bs);
        ++m_blocks[block].fill;
        ++m_tokensStored;
        if (m_prefix) {
            s->tail.push_back(tokens[i]);
            if (int(s->tail.size()) == bs) cacheFullBlock(*s, block);
        }
    }
    s->length += n;
    m_tokensInSequences += n;
    return Alloc::Ok;
}

Result<Fork> BlockManager::fork(SeqId parent) {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* p, find(parent));
    Fork result;
    Sequence child;
    child.length = p->length;
    if (!paged()) {
        if (m_freeReservations.empty()) return Fork{Alloc::NoSpace};
        child.reservation = m_freeReservations.back();
        m_freeReservations.pop_back();
        m_blocksUsed += m_reservationBlocks;
        for (int i = 0; i < m_reservationBlocks; ++i) {
            const int32_t dst = child.reservation * m_reservationBlocks + i;
            const int32_t src = p->blocks[i];
            m_blocks[dst] = Block{1, m_blocks[src].fill};
            m_tokensStored += m_blocks[dst].fill;
            child.blocks.push_back(dst);
            if (m_blocks[src].fill > 0) result.copies.push_back({src, dst});
        }
    } else {
        const bool partial = p->length % m_config.blockSize != 0;
        if (partial && availableBlocks() < 1) return Fork{Alloc::NoSpace};
        child.blocks = p->blocks;
        child.firstLive = p->firstLive;
        child.lastHash = p->lastHash;
        child.hashing = p->hashing;
        child.tail = p->tail;
        const int shared = int(child.blocks.size()) - (partial ? 1 : 0);
        for (int i = child.firstLive; i < shared; ++i) addRef(child.blocks[i]);
        if (partial) {
            const int32_t src = p->blocks.back();
            const int32_t dst = takeBlock();
            m_blocks[dst].fill = m_blocks[src].fill;
            m_tokensStored += m_blocks[dst].fill;
            child.blocks.back() = dst;
            result.copies.push_back({src, dst});
        }
    }
    result.seq = addSequence(std::move(child));
    return result;
}

Result<void> BlockManager::releaseCounting(SeqId seq, std::optional<EvictionCause> cause) {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* s, find(seq));
    // Last block first, so that LRU evicts a sequence's tail before its
    // prefix (a cached block is only reachable through its parents).
    for (int i = int(s->blocks.size()) - 1; i >= s->firstLive; --i) {
        if (dropRef(s->blocks[i]) && cause) ++m_evictions[size_t(*cause)];
    }
    if (!paged()) m_freeReservations.push_back(s->reservation);
    m_tokensInSequences -= s->length;
    m_sequences.erase(seq);
    return {};
}

Result<void> BlockManager::release(SeqId seq) { return releaseCounting(seq, std::nullopt); }

Result<void> BlockManager::preempt(SeqId seq) { return releaseCounting(seq, EvictionCause::Preemption); }

Result<bool> BlockManager::canAdmit(std::span<const int32_t> prompt, int maxHitBlocks) const {
    PAGODA_RETURN_IF_ERROR(checkPrompt(prompt));
    if (!paged()) return !m_freeReservations.empty();
    PrefixHits hits;
    if (m_prefix) hits = lookupPrefix(prompt, maxHitBlocks);
    const auto live = std::span(hits.table).subspan(size_t(hits.firstLive));
    // A hit on an evictable cached block takes it out of the available ones.
    const auto evictableHits =
        std::count_if(live.begin(), live.end(), [&](int32_t b) { return m_blocks[b].refs == 0; });
    const int promptBlocks = blocksFor(int(prompt.size()));
    int taken = promptBlocks - int(live.size()) + int(evictableHits);
    // With a window the sequence holds at most one window's blocks (hits
    // among them, while they are in it).
    if (m_config.slidingWindow > 0) taken = std::min(promptBlocks, blocksFor(m_config.slidingWindow) + 1);
    return taken + m_watermarkBlocks <= availableBlocks();
}

Result<bool> BlockManager::canAppend(SeqId seq, int nTokens) const {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* s, find(seq));
    if (nTokens < 0 || int64_t(s->length) + nTokens > m_config.maxContext) {
        return fail("sequence {}: {} + {} tokens exceed the context of {}", seq, s->length, nTokens,
                    m_config.maxContext);
    }
    const int needed = blocksFor(s->length + nTokens) - int(s->blocks.size());
    return needed <= 0 || needed <= availableBlocks() + windowFreeable(*s);
}

Result<int> BlockManager::blocksFreedByPreempting(SeqId seq) const {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* s, find(seq));
    if (!paged()) return m_reservationBlocks;
    int freed = 0;
    for (int i = s->firstLive; i < int(s->blocks.size()); ++i) freed += m_blocks[s->blocks[i]].refs == 1;
    return freed;
}

int BlockManager::availableBlocks() const {
    if (!paged()) return int(m_freeReservations.size()) * m_reservationBlocks;
    return int(m_free.size()) + (m_policy ? m_policy->size() : 0);
}

Result<std::span<const int32_t>> BlockManager::blockTable(SeqId seq) const {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* s, find(seq));
    return std::span<const int32_t>(s->blocks);
}

Result<int> BlockManager::length(SeqId seq) const {
    PAGODA_ASSIGN_OR_RETURN(const Sequence* s, find(seq));
    return s->length;
}

int32_t BlockManager::takeBlock() {
    int32_t block;
    if (!m_free.empty()) {
        block = m_free.back();
        m_free.pop_back();
    } else {
        block = m_policy->popVictim();
        assert(block >= 0 && "takeBlock without an available block");
        m_prefix->erase(block);
        ++m_evictions[size_t(causeOf(m_policy->kind()))];
    }
    m_blocks[block] = Block{1, 0};
    ++m_blocksUsed;
    return block;
}

void BlockManager::addRef(int32_t block) {
    Block& b = m_blocks[block];
    if (b.refs++ > 0) return;
    m_policy->remove(block);  // only cached blocks are unreferenced and reachable
    ++m_blocksUsed;
    m_tokensStored += b.fill;
}

bool BlockManager::dropRef(int32_t block) {
    Block& b = m_blocks[block];
    assert(b.refs > 0);
    if (--b.refs > 0) return false;
    --m_blocksUsed;
    m_tokensStored -= b.fill;
    if (m_prefix && m_prefix->contains(block)) {
        m_policy->add(block, m_prefix->insertionOrder(block));
    } else {
        b.fill = 0;
        if (paged()) m_free.push_back(block);
    }
    return true;
}

BlockStats BlockManager::stats() const {
    BlockStats s;
    s.blocksTotal = m_config.numBlocks;
    s.blocksUsed = m_blocksUsed;
    s.blocksCached = m_policy ? m_policy->size() : 0;
    s.blocksFree = s.blocksTotal - s.blocksUsed - s.blocksCached;
    s.sequences = int(m_sequences.size());
    s.tokensStored = m_tokensStored;
    s.tokensInSequences = m_tokensInSequences;
    s.slotsAllocated = int64_t(m_blocksUsed) * m_config.blockSize;
    s.evictions = m_evictions;
    s.prefixQueries = m_prefixQueries;
    s.prefixQueryTokens = m_prefixQueryTokens;
    s.prefixHitBlocks = m_prefixHitBlocks;
    s.prefixHitTokens = m_prefixHitBlocks * m_config.blockSize;
    return s;
}

std::vector<BlockMapEntry> BlockManager::blockMap() const {
    std::vector<BlockMapEntry> map(m_blocks.size());
    for (size_t b = 0; b < m_blocks.size(); ++b) {
        map[b].refs = m_blocks[b].refs;
        if (map[b].refs > 0) {
            map[b].state = BlockState::Used;
        } else if (m_prefix && m_prefix->contains(int32_t(b))) {
            map[b].state = BlockState::Cached;
        }
    }
    for (const auto& [id, s] : m_sequences) {
        for (int i = s.firstLive; i < int(s.blocks.size()); ++i) {
            SeqId& owner = map[size_t(s.blocks[i])].owner;
            owner = owner < 0 ? id : std::min(owner, id);
        }
    }
    return map;
}

Result<void> BlockManager::validate() const {
    const int bs = m_config.blockSize;
    const size_t n = m_blocks.size();
    std::vector<int32_t> holders(n, 0);
    std::vector<SeqId> lastHolder(n, -1);
    int64_t tokensInSequences = 0;
    for (const auto& [id, s] : m_sequences) {
        tokensInSequences += s.length;
        const int expected = paged() ? blocksFor(s.length) : m_reservationBlocks;
        if (int(s.blocks.size()) != expected) {
            return fail("sequence {}: {} table entries for {} tokens, expected {}", id, s.blocks.size(), s.length,
                        expected);
        }
        if (m_prefix && int(s.tail.size()) != s.length % bs) {
            return fail("sequence {}: {} tail tokens for length {}", id, s.tail.size(), s.length);
        }
        for (int i = 0; i < int(s.blocks.size()); ++i) {
            const int32_t b = s.blocks[i];
            if (i < s.firstLive) {
                if (b != kNoBlock) return fail("sequence {}: entry {} left the window but holds block {}", id, i, b);
                continue;
            }
            if (b < 0 || size_t(b) >= n) return fail("sequence {}: entry {} holds invalid block {}", id, i, b);
            if (lastHolder[b] == id) return fail("sequence {}: block {} appears twice in its table", id, b);
            if (!paged() && b != s.reservation * m_reservationBlocks + i) {
                return fail("sequence {}: entry {} is block {}, outside its reservation {}", id, i, b, s.reservation);
            }
            lastHolder[b] = id;
            ++holders[b];
            const int expectedFill = std::clamp(s.length - i * bs, 0, bs);
            if (m_blocks[b].fill != expectedFill) {
                return fail("sequence {}: block {} (entry {}) has {} tokens, expected {}", id, b, i, m_blocks[b].fill,
                            expectedFill);
            }
        }
    }
    if (tokensInSequences != m_tokensInSequences) {
        return fail("tokens in sequences: counter {} but tables hold {}", m_tokensInSequences, tokensInSequences);
    }

    std::vector<char> inFree(n, 0);
    for (int32_t b : m_free) {
        if (inFree[b]++) return fail("block {} is in the free list twice", b);
    }
    int used = 0, cached = 0, free = 0, prefixEntries = 0;
    int64_t stored = 0;
    for (size_t i = 0; i < n; ++i) {
        const auto b = int32_t(i);
        const Block& block = m_blocks[i];
        const bool isCached = m_prefix && m_prefix->contains(b);
        const bool evictable = m_policy && m_policy->contains(b);
        prefixEntries += isCached;
        if (block.refs != holders[i]) {
            return fail("block {}: reference count {} but {} tables hold it", b, block.refs, holders[i]);
        }
        if (isCached && block.fill != bs) return fail("block {}: cached with {} of {} tokens", b, block.fill, bs);
        if (block.refs > 0) {
            ++used;
            stored += block.fill;
            if (inFree[i] || evictable) return fail("block {}: referenced but free or evictable", b);
        } else if (isCached) {
            ++cached;
            if (inFree[i] || !evictable) return fail("block {}: cached but free or not evictable", b);
        } else {
            ++free;
            if (evictable || block.fill != 0) return fail("block {}: free but evictable or holding tokens", b);
            if (paged() && !inFree[i]) return fail("block {}: free but not in the free list", b);
        }
    }
    if (used != m_blocksUsed) return fail("used blocks: counter {} but {} referenced", m_blocksUsed, used);
    if (stored != m_tokensStored) return fail("tokens stored: counter {} but blocks hold {}", m_tokensStored, stored);
    if (m_policy && cached != m_policy->size()) {
        return fail("{} cached blocks but the policy holds {}", cached, m_policy->size());
    }
    if (m_prefix && prefixEntries != m_prefix->size()) {
        return fail("{} blocks cached in the prefix cache but its index has {}", prefixEntries, m_prefix->size());
    }
    if (paged() && free != int(m_free.size())) return fail("{} free blocks but free list has {}", free, m_free.size());
    if (!paged()) {
        std::vector<char> reservationFree(size_t(m_config.numBlocks / m_reservationBlocks), 0);
        for (int r : m_freeReservations) {
            if (reservationFree[r]++) return fail("reservation {} is free twice", r);
            for (int i = 0; i < m_reservationBlocks; ++i) {
                if (m_blocks[size_t(r * m_reservationBlocks + i)].refs != 0) {
                    return fail("reservation {} is free but block {} is used", r, r * m_reservationBlocks + i);
                }
            }
        }
        const size_t reserved = m_sequences.size() + m_freeReservations.size();
        if (reserved != reservationFree.size()) {
            return fail("{} reservations in use or free, expected {}", reserved, reservationFree.size());
        }
    }
    return {};
}

}  // namespace pagoda

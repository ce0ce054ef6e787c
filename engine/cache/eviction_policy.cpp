#include "engine/cache/eviction_policy.h"

#include <cassert>
#include <set>
#include <utility>
#include <vector>

namespace pagoda {
namespace {

// Doubly linked list threaded through arrays indexed by block id; index
// numBlocks is the sentinel. Front = least recently released = victim.
class LruPolicy final : public EvictionPolicy {
public:
    explicit LruPolicy(int numBlocks)
        : m_sentinel(numBlocks), m_prev(size_t(numBlocks) + 1, -1), m_next(size_t(numBlocks) + 1, -1) {
        m_prev[m_sentinel] = m_next[m_sentinel] = m_sentinel;
    }

    EvictionPolicyKind kind() const override { return EvictionPolicyKind::Lru; }

    void add(int32_t block, uint64_t) override {
        assert(!contains(block));
        const int32_t last = m_prev[m_sentinel];
        m_prev[block] = last;
        m_next[block] = m_sentinel;
        m_next[last] = block;
        m_prev[m_sentinel] = block;
        ++m_size;
    }

    void remove(int32_t block) override {
        assert(contains(block));
        m_next[m_prev[block]] = m_next[block];
        m_prev[m_next[block]] = m_prev[block];
        m_prev[block] = m_next[block] = -1;
        --m_size;
    }

    int32_t popVictim() override {
        const int32_t first = m_next[m_sentinel];
        if (first == m_sentinel) return -1;
        remove(first);
        return first;
    }

    bool contains(int32_t block) const override { return m_next[block] != -1; }
    int size() const override { return m_size; }

private:
    int32_t m_sentinel;
    std::vector<int32_t> m_prev;  // [numBlocks + 1]; -1: not in the list
    std::vector<int32_t> m_next;  // [numBlocks + 1]; -1: not in the list
    int m_size = 0;
};

class FifoPolicy final : public EvictionPolicy {
public:
    explicit FifoPolicy(int numBlocks) : m_key(size_t(numBlocks), kAbsent) {}

    EvictionPolicyKind kind() const override { return EvictionPolicyKind::Fifo; }

    void add(int32_t block, uint64_t cachedOrder) override {
        assert(!contains(block) && cachedOrder != kAbsent);
        m_key[block] = cachedOrder;
        m_order.emplace(cachedOrder, block);
    }

    void remove(int32_t block) override {
        assert(contains(block));
        m_order.erase({m_key[block], block});
        m_key[block] = kAbsent;
    }

    int32_t popVictim() override {
        if (m_order.empty()) return -1;
        const int32_t block = m_order.begin()->second;
        m_order.erase(m_order.begin());
        m_key[block] = kAbsent;
        return block;
    }

    bool contains(int32_t block) const override { return m_key[block] != kAbsent; }
    int size() const override { return int(m_order.size()); }

private:
    static constexpr uint64_t kAbsent = ~0ull;
    std::vector<uint64_t> m_key;                    // [numBlocks] cachedOrder, kAbsent when not evictable
    std::set<std::pair<uint64_t, int32_t>> m_order;  // (cachedOrder, block), oldest first
};

}  // namespace

std::string_view evictionPolicyName(EvictionPolicyKind kind) {
    return kind == EvictionPolicyKind::Lru ? "lru" : "fifo";
}

std::optional<EvictionPolicyKind> evictionPolicyFromName(std::string_view name) {
    if (name == "lru") return EvictionPolicyKind::Lru;
    if (name == "fifo") return EvictionPolicyKind::Fifo;
    return std::nullopt;
}

std::unique_ptr<EvictionPolicy> makeEvictionPolicy(EvictionPolicyKind kind, int numBlocks) {
    if (kind == EvictionPolicyKind::Lru) return std::make_unique<LruPolicy>(numBlocks);
    return std::make_unique<FifoPolicy>(numBlocks);
}

}  // namespace pagoda

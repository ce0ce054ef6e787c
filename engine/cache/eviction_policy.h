#pragma once
// Which cached, unreferenced KV block to evict when the block manager needs
// space and no block is free. The manager adds a block when its last
// reference goes and it stays cached (its content is in the prefix cache),
// removes it when a prefix hit references it again, and pops the victim.
// Referenced blocks are never in the policy, so they are never evicted.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace pagoda {

enum class EvictionPolicyKind {
    Lru,   // least recently used first: the block released longest ago
    Fifo,  // first cached first: the block whose content was cached earliest
};

std::string_view evictionPolicyName(EvictionPolicyKind kind);  // "lru", "fifo"
std::optional<EvictionPolicyKind> evictionPolicyFromName(std::string_view name);

class EvictionPolicy {
public:
    virtual ~EvictionPolicy() = default;

    virtual EvictionPolicyKind kind() const = 0;
    // `block` became evictable; cachedOrder increases with the time its
    // content entered the prefix cache (unique per block). LRU evicts in
    // the order blocks were added, FIFO in cachedOrder.
    virtual void add(int32_t block, uint64_t cachedOrder) = 0;
    // `block` (evictable) is referenced again.
    virtual void remove(int32_t block) = 0;
    // Removes and returns the next victim; -1 when no block is evictable.
    virtual int32_t popVictim() = 0;
    virtual bool contains(int32_t block) const = 0;
    virtual int size() const = 0;
};

// A policy over block ids [0, numBlocks). O(1) per operation for LRU (an
// intrusive list), O(log n) for FIFO (an ordered set).
std::unique_ptr<EvictionPolicy> makeEvictionPolicy(EvictionPolicyKind kind, int numBlocks);

}  // namespace pagoda

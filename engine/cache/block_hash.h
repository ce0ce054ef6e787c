#pragma once
// Chained hash of full KV blocks for the prefix cache: a block's hash covers
// its parent block's hash and its own token ids, so equal hashes mean equal
// token prefixes (up to a 64-bit collision, which the prefix cache detects
// by also comparing tokens and parent hash). The hash is SipHash-2-4, a
// keyed PRF: with a per-cache random key, colliding prompts cannot be
// crafted from outside.

#include <cstddef>
#include <cstdint>
#include <span>

namespace pagoda {

// SipHash-2-4 of `size` bytes under the 128-bit key (k0, k1).
uint64_t sipHash24(const void* data, size_t size, uint64_t k0, uint64_t k1);

class BlockHasher {
public:
    explicit BlockHasher(uint64_t seed);

    // The parent hash of a sequence's first block.
    uint64_t root() const { return m_root; }
    // Hash of a full block: parentHash, then tokens (at most kMaxBlockTokens).
    uint64_t operator()(uint64_t parentHash, std::span<const int32_t> tokens) const;

    static constexpr size_t kMaxBlockTokens = 32;

private:
    uint64_t m_k0;
    uint64_t m_k1;
    uint64_t m_root;
};

}  // namespace pagoda

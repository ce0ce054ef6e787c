#include "engine/cache/block_hash.h"

#include <array>
#include <bit>
#include <cassert>

namespace pagoda {
namespace {

struct SipState {
    uint64_t v0, v1, v2, v3;

    void round() {
        v0 += v1;
        v1 = std::rotl(v1, 13);
        v1 ^= v0;
        v0 = std::rotl(v0, 32);
        v2 += v3;
        v3 = std::rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = std::rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = std::rotl(v1, 17);
        v1 ^= v2;
        v2 = std::rotl(v2, 32);
    }

    void compress(uint64_t m) {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

uint64_t loadLe64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

uint64_t splitMix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

}  // namespace

uint64_t sipHash24(const void* data, size_t size, uint64_t k0, uint64_t k1) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    SipState s{k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull, k0 ^ 0x6c7967656e657261ull,
               k1 ^ 0x7465646279746573ull};
    const size_t whole = size - size % 8;
    for (size_t i = 0; i < whole; i += 8) s.compress(loadLe64(bytes + i));
    uint64_t last = uint64_t(size) << 56;
    for (size_t i = 0; i < size % 8; ++i) last |= uint64_t(bytes[whole + i]) << (8 * i);
    s.compress(last);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

BlockHasher::BlockHasher(uint64_t seed) : m_k0(splitMix64(seed)), m_k1(splitMix64(seed ^ 0x5bd1e995ull)) {
    m_root = sipHash24(nullptr, 0, m_k0, m_k1);
}

uint64_t BlockHasher::operator()(uint64_t parentHash, std::span<const int32_t> tokens) const {
    assert(tokens.size() <= kMaxBlockTokens);
    // [parentHash][tokens...], little-endian, so the hash is the same on any host.
    std::array<uint8_t, 8 + 4 * kMaxBlockTokens> buffer;
    for (int i = 0; i < 8; ++i) buffer[i] = uint8_t(parentHash >> (8 * i));
    size_t size = 8;
    for (int32_t token : tokens) {
        const auto u = uint32_t(token);
        for (int i = 0; i < 4; ++i) buffer[size++] = uint8_t(u >> (8 * i));
    }
    return sipHash24(buffer.data(), size, m_k0, m_k1);
}

}  // namespace pagoda

// Thousands of random operations against the block manager, with a shadow
// KV pool: every slot the manager hands out is "written" with a fingerprint
// of the sequence's tokens up to that position, fork copies are applied,
// and after every operation each live sequence must read back its own
// fingerprints through its table. That catches a wrong prefix hit, a
// missing copy-on-write and any eviction or reuse of a referenced block.
// validate() checks the internal invariants after every operation.
// Seeded from std::random_device and printed; PAGODA_TEST_SEED replays one.

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

#include "cache_test_util.h"
#include "engine/cache/block_manager.h"

namespace pagoda {
namespace {

uint64_t testSeed() {
    if (const char* fixed = std::getenv("PAGODA_TEST_SEED")) return std::strtoull(fixed, nullptr, 10);
    return (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
}

uint64_t mix(uint64_t h, int32_t token) {
    h ^= uint64_t(uint32_t(token)) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

struct Param {
    const char* name;
    BlockManagerConfig config;
};

BlockManagerConfig config(int blockSize, KvAllocation allocation, bool prefix, EvictionPolicyKind eviction,
                          int window) {
    BlockManagerConfig c;
    c.numBlocks = 48;
    c.blockSize = blockSize;
    c.maxContext = allocation == KvAllocation::Paged ? 160 : 128;
    c.allocation = allocation;
    c.prefixCaching = prefix;
    c.eviction = eviction;
    c.slidingWindow = window;
    c.watermark = 0.05;
    c.hashSeed = 0;  // random key
    return c;
}

const Param kParams[] = {
    {"paged_lru_bs8", config(8, KvAllocation::Paged, true, EvictionPolicyKind::Lru, 0)},
    {"paged_fifo_bs16", config(16, KvAllocation::Paged, true, EvictionPolicyKind::Fifo, 0)},
    {"paged_lru_bs8_window24", config(8, KvAllocation::Paged, true, EvictionPolicyKind::Lru, 24)},
    {"paged_fifo_bs8_window40", config(8, KvAllocation::Paged, true, EvictionPolicyKind::Fifo, 40)},
    {"paged_noprefix_bs32", config(32, KvAllocation::Paged, false, EvictionPolicyKind::Lru, 0)},
    {"contiguous_bs8", config(8, KvAllocation::Contiguous, false, EvictionPolicyKind::Lru, 0)},
};

class RandomOperations : public testing::TestWithParam<Param> {
protected:
    void SetUp() override {
        std::printf("seed %llu (replay with PAGODA_TEST_SEED=%llu)\n", (unsigned long long)m_seed,
                    (unsigned long long)m_seed);
        m_config = GetParam().config;
        m_config.hashSeed = m_rng() | 1;
        auto manager = BlockManager::create(m_config);
        ASSERT_TRUE(manager) << manager.error().message;
        m_manager.emplace(std::move(*manager));
        m_pool.assign(size_t(m_config.numBlocks) * m_config.blockSize, 0);
        // Shared conversation prefixes: admissions draw from them so prefix hits happen.
        for (auto& document : m_documents) {
            document.resize(size_t(m_rng() % 60 + 20));
            for (int32_t& t : document) t = int32_t(m_rng() % 1000);
        }
    }

    std::vector<int32_t> randomTokens(int n) {
        std::vector<int32_t> tokens(static_cast<size_t>(n));
        for (int32_t& t : tokens) t = int32_t(m_rng() % 4);  // small vocab: equal blocks recur
        return tokens;
    }

    SeqId randomLive() {
        auto it = m_truth.begin();
        std::advance(it, ptrdiff_t(m_rng() % m_truth.size()));
        return it->first;
    }

    // What the forward pass would do with the slots: write each position's fingerprint.
    void write(SeqId seq, const std::vector<int32_t>& tokens, const std::vector<int32_t>& slots) {
        std::vector<uint64_t>& fp = m_truth[seq];
        ASSERT_EQ(tokens.size(), slots.size());
        for (size_t i = 0; i < tokens.size(); ++i) {
            fp.push_back(mix(fp.empty() ? 0 : fp.back(), tokens[i]));
            m_pool[size_t(slots[i])] = fp.back();
        }
    }

    void admit() {
        const auto& document = m_documents[m_rng() % m_documents.size()];
        std::vector<int32_t> prompt(document.begin(), document.begin() + ptrdiff_t(m_rng() % document.size() + 1));
        prompt = test::concat(prompt, randomTokens(int(m_rng() % 20)));
        const bool fits = *m_manager->canAdmit(prompt);
        auto admission = m_manager->admit(prompt);
        ASSERT_TRUE(admission) << admission.error().message;
        if (admission->status == Alloc::NoSpace) {
            ASSERT_FALSE(fits);
            return;
        }
        // The hit blocks already hold the prompt's prefix: replay the fingerprints only.
        std::vector<uint64_t>& fp = m_truth[admission->seq];
        for (int i = 0; i < admission->hitTokens; ++i) fp.push_back(mix(fp.empty() ? 0 : fp.back(), prompt[size_t(i)]));
        // With a sliding window canAdmit promises room for the rest appended
        // a token at a time (one window's blocks), else all at once.
        const auto rest = std::span(prompt).subspan(size_t(admission->hitTokens));
        const size_t piece = m_config.slidingWindow > 0 ? 1 : rest.size();
        for (size_t at = 0; at < rest.size(); at += piece) {
            const std::vector<int32_t> tokens(rest.begin() + ptrdiff_t(at), rest.begin() + ptrdiff_t(at + piece));
            std::vector<int32_t> slots;
            auto appended = m_manager->appendSlots(admission->seq, tokens, slots);
            ASSERT_TRUE(appended) << appended.error().message;
            if (fits) {
                ASSERT_EQ(*appended, Alloc::Ok) << "canAdmit promised room for the prompt";
            }
            if (*appended != Alloc::Ok) return;
            write(admission->seq, tokens, slots);
        }
    }

    void append() {
        const SeqId seq = randomLive();
        const int length = *m_manager->length(seq);
        const int n = std::min(int(m_rng() % 3 == 0 ? m_rng() % 12 + 1 : 1), m_config.maxContext - length);
        if (n == 0) return;
        const std::vector<int32_t> tokens = randomTokens(n);
        const bool fits = *m_manager->canAppend(seq, n);
        std::vector<int32_t> slots;
        auto result = m_manager->appendSlots(seq, tokens, slots);
        ASSERT_TRUE(result) << result.error().message;
        ASSERT_EQ(fits, *result == Alloc::Ok) << "canAppend disagrees with appendSlots";
        if (*result == Alloc::Ok) {
            write(seq, tokens, slots);
        } else {
            ASSERT_TRUE(slots.empty());
            preempt(randomLive());  // what the scheduler does on no space
        }
    }

    void fork() {
        const SeqId parent = randomLive();
        auto f = m_manager->fork(parent);
        ASSERT_TRUE(f) << f.error().message;
        if (f->status == Alloc::NoSpace) return;
        const int bs = m_config.blockSize;
        for (const BlockCopy& copy : f->copies) {
            std::copy_n(m_pool.begin() + ptrdiff_t(copy.src) * bs, bs, m_pool.begin() + ptrdiff_t(copy.dst) * bs);
        }
        m_truth[f->seq] = m_truth[parent];
        ++m_forks;
    }

    void preempt(SeqId seq) {
        const int freed = *m_manager->blocksFreedByPreempting(seq);
        const int before = m_manager->availableBlocks();
        ASSERT_TRUE(m_manager->preempt(seq));
        ASSERT_EQ(m_manager->availableBlocks(), before + freed);
        m_truth.erase(seq);
    }

    void release() {
        const SeqId seq = randomLive();
        ASSERT_TRUE(m_manager->release(seq));
        m_truth.erase(seq);
        ASSERT_FALSE(m_manager->release(seq)) << "double release must be an error";
    }

    // Every live sequence reads its own fingerprints through its table, in
    // every block it still holds; the window's positions are all held.
    void checkContents() {
        const int bs = m_config.blockSize;
        for (const auto& [seq, fp] : m_truth) {
            const auto table = *m_manager->blockTable(seq);
            ASSERT_EQ(*m_manager->length(seq), int(fp.size()));
            const int length = int(fp.size());
            const int window = m_config.allocation == KvAllocation::Paged ? m_config.slidingWindow : 0;
            const int attended = window > 0 ? std::max(0, length - window) : 0;
            for (int p = 0; p < length; ++p) {
                const int32_t block = table[size_t(p / bs)];
                if (block == kNoBlock) {
                    ASSERT_LT(p, attended) << "sequence " << seq << " lost position " << p << " inside its window";
                    continue;
                }
                ASSERT_EQ(m_pool[size_t(block) * bs + p % bs], fp[size_t(p)])
                    << "sequence " << seq << " position " << p << " block " << block;
            }
        }
    }

    // Existing table entries never change except to kNoBlock (window).
    void checkTablesKept(const std::map<SeqId, std::vector<int32_t>>& before) {
        for (const auto& [seq, old] : before) {
            if (!m_truth.contains(seq)) continue;
            const auto now = *m_manager->blockTable(seq);
            for (size_t i = 0; i < old.size(); ++i) {
                ASSERT_TRUE(now[i] == old[i] || now[i] == kNoBlock)
                    << "sequence " << seq << " entry " << i << " moved from block " << old[i] << " to " << now[i];
            }
        }
    }

    const uint64_t m_seed = testSeed();
    std::mt19937_64 m_rng{m_seed};
    BlockManagerConfig m_config;
    std::optional<BlockManager> m_manager;
    std::vector<uint64_t> m_pool;  // [numBlocks][blockSize] fingerprint written to each slot
    std::array<std::vector<int32_t>, 4> m_documents;
    std::map<SeqId, std::vector<uint64_t>> m_truth;  // live sequence -> fingerprint of each position
    int m_forks = 0;
};

TEST_P(RandomOperations, KeepInvariantsAndContents) {
    SCOPED_TRACE(testing::Message() << "seed " << m_seed);
    constexpr int kOperations = 4000;
    for (int op = 0; op < kOperations; ++op) {
        SCOPED_TRACE(testing::Message() << "operation " << op);
        std::map<SeqId, std::vector<int32_t>> tables;
        for (const auto& [seq, fp] : m_truth) {
            const auto t = *m_manager->blockTable(seq);
            tables[seq] = std::vector<int32_t>(t.begin(), t.end());
        }
        const int kind = int(m_rng() % 100);
        if (m_truth.empty() || kind < 20) {
            admit();
        } else if (kind < 75) {
            append();
        } else if (kind < 82) {
            fork();
        } else if (kind < 96) {
            release();
        } else {
            preempt(randomLive());
        }
        if (HasFatalFailure()) return;
        auto valid = m_manager->validate();
        ASSERT_TRUE(valid) << valid.error().message;
        checkTablesKept(tables);
        checkContents();
        if (HasFatalFailure()) return;
    }
    const BlockStats s = m_manager->stats();
    std::printf("%d sequences live, %d forks, prefix hit rate %.2f, evictions lru %lld fifo %lld window %lld "
                "preemption %lld\n",
                s.sequences, m_forks, s.prefixHitRate(), (long long)s.evictionsBy(EvictionCause::Lru),
                (long long)s.evictionsBy(EvictionCause::Fifo), (long long)s.evictionsBy(EvictionCause::Window),
                (long long)s.evictionsBy(EvictionCause::Preemption));
    if (m_config.prefixCaching) {
        EXPECT_GT(s.prefixHitTokens, 0);
    }

    while (!m_truth.empty()) release();
    const BlockStats end = m_manager->stats();
    EXPECT_EQ(end.blocksUsed, 0);
    EXPECT_EQ(end.tokensStored, 0);
    EXPECT_EQ(end.tokensInSequences, 0);
    EXPECT_EQ(end.sequences, 0);
    const int reservation = (m_config.maxContext + m_config.blockSize - 1) / m_config.blockSize;
    EXPECT_EQ(m_manager->availableBlocks(), m_config.allocation == KvAllocation::Paged
                                                ? m_config.numBlocks
                                                : m_config.numBlocks / reservation * reservation);
    auto valid = m_manager->validate();
    EXPECT_TRUE(valid) << valid.error().message;
}

INSTANTIATE_TEST_SUITE_P(Configs, RandomOperations, testing::ValuesIn(kParams),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pagoda

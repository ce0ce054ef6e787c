#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pagoda {
namespace {

using Candidate = std::pair<float, int32_t>;  // logit, token id

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

uint64_t rotateLeft(uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

uint64_t splitMix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t xoshiro256StarStar(uint64_t (&s)[4]) {
    const uint64_t result = rotateLeft(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotateLeft(s[3], 45);
    return result;
}

// A strict total order: higher value (logit or weight) first, lower id on ties.
bool ranksBefore(const Candidate& a, const Candidate& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// candidates[id] holds token id's logit. Each distinct token of the last
// repeatLastN history tokens (all of them when negative) is penalized once.
void penalizeRepeats(std::span<Candidate> candidates, std::span<const int32_t> history,
                     const SamplingParams& params) {
    const float penalty = params.repeatPenalty;
    if (penalty <= 0.0f || penalty == 1.0f || params.repeatLastN == 0) {
        return;
    }
    const size_t window =
        params.repeatLastN < 0 ? history.size() : std::min(size_t(params.repeatLastN), history.size());
    std::vector<int32_t> recent(history.end() - ptrdiff_t(window), history.end());
    std::ranges::sort(recent);
    const auto [uniqueEnd, end] = std::ranges::unique(recent);
    recent.erase(uniqueEnd, end);
    for (const int32_t id : recent) {
        if (id < 0 || size_t(id) >= candidates.size()) {
            continue;
        }
        float& logit = candidates[size_t(id)].first;
        logit = logit > 0.0f ? logit / penalty : logit * penalty;
    }
}

Candidate medianOfThree(Candidate a, Candidate b, Candidate c) {
    if (ranksBefore(b, a)) {
        std::swap(a, b);
    }
    if (ranksBefore(c, b)) {
        std::swap(b, c);
    }
    if (ranksBefore(b, a)) {
        std::swap(a, b);
    }
    return b;
}

// Length of the shortest prefix, in rank order, of `candidates` (weights)
// whose weight reaches `target` (at least 1; all of them when the total falls
// short). Moves that prefix to the front. A quickselect on mass: expected
// O(n), where sorting a 128k vocab for the nucleus would be O(n log n). Its
// own partition loop keeps the resulting order the same on every platform.
size_t selectNucleus(std::span<Candidate> candidates, double target) {
    size_t lo = 0;
    size_t hi = candidates.size();
    // Invariant: the prefix holds all of [0, lo), ends inside (lo, hi], and
    // `target` is what [lo, hi) must still contribute.
    while (lo < hi) {
        const auto range = candidates.subspan(lo, hi - lo);
        const Candidate pivot = medianOfThree(range.front(), range[range.size() / 2], range.back());
        size_t before = 0;
        double massBefore = 0.0;
        for (Candidate& candidate : range) {
            if (ranksBefore(candidate, pivot)) {
                massBefore += candidate.first;
                std::swap(candidate, range[before++]);
            }
        }
        const auto rest = range.begin() + ptrdiff_t(before);
        std::iter_swap(rest, std::find(rest, range.end(), pivot));
        if (before > 0 && massBefore >= target) {
            hi = lo + before;
            continue;
        }
        const double massThroughPivot = massBefore + pivot.first;
        if (massThroughPivot >= target) {
            return lo + before + 1;
        }
        target -= massThroughPivot;
        lo += before + 1;
    }
    return hi;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : m_params(params) {
    uint64_t seed = params.seed;
    for (uint64_t& word : m_state) {
        word = splitMix64(seed);
    }
}

double Sampler::nextUniform() { return double(xoshiro256StarStar(m_state) >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
    if (logits.empty()) {
        return -1;
    }
    const size_t vocabSize = logits.size();
    m_candidates.resize(vocabSize);
    for (size_t id = 0; id < vocabSize; ++id) {
        const float logit = logits[id];
        m_candidates[id] = {std::isnan(logit) ? kNegativeInfinity : logit, int32_t(id)};
    }
    penalizeRepeats(m_candidates, history, m_params);

    if (m_params.temperature <= 0.0f) {
        return std::ranges::min_element(m_candidates, ranksBefore)->second;
    }

    // Each filter keeps a prefix of the candidates in rank order. Every step
    // leaves them in an order that does not depend on the standard library,
    // so that a seed draws the same token everywhere.
    const auto begin = m_candidates.begin();
    size_t size = vocabSize;
    if (m_params.topK > 0 && size_t(m_params.topK) < vocabSize) {
        // A heap select: about one comparison per token when k is small.
        size = size_t(m_params.topK);
        std::partial_sort(begin, begin + ptrdiff_t(size), m_candidates.end(), ranksBefore);
    }

    const Candidate best = *std::min_element(begin, begin + ptrdiff_t(size), ranksBefore);
    if (best.first == kNegativeInfinity) {
        // Nothing has any probability: every token ties, and greedy takes the lowest id.
        return best.second;
    }
    // From here on candidates hold unnormalized probabilities (weights), 1 for
    // the most likely token; +inf logits share the whole mass. The weight
    // order is the logit order, but for ties among weights rounding together.
    const float temperature = m_params.temperature;
    for (size_t i = 0; i < size; ++i) {
        float& value = m_candidates[i].first;
        if (std::isinf(best.first)) {
            value = value == best.first ? 1.0f : 0.0f;
        } else {
            value = std::exp((value - best.first) / temperature);
        }
    }
    const auto sumWeights = [&](size_t count) {
        double sum = 0.0;
        for (size_t i = 0; i < count; ++i) {
            sum += m_candidates[i].first;
        }
        return sum;
    };

    // Top-p measures mass against the top-k set; applying min-p (a cheap
    // filter) before it keeps the same tokens as top-p then min-p, since both
    // keep prefixes.
    const double topPMass = m_params.topP < 1.0f ? double(m_params.topP) * sumWeights(size) : 0.0;
    if (m_params.minP > 0.0f) {
        const float threshold = std::min(m_params.minP, 1.0f);
        size_t kept = 0;
        for (size_t i = 0; i < size; ++i) {
            if (m_candidates[i].first >= threshold) {
                m_candidates[kept++] = m_candidates[i];
            }
        }
        size = kept;
    }
    if (m_params.topP < 1.0f) {
        size = selectNucleus(std::span(m_candidates).first(size), topPMass);
    }

    const double target = nextUniform() * sumWeights(size);
    double cumulative = 0.0;
    int32_t lastLikely = best.second;
    for (size_t i = 0; i < size; ++i) {
        const float weight = m_candidates[i].first;
        if (weight <= 0.0f) {
            continue;
        }
        cumulative += weight;
        lastLikely = m_candidates[i].second;
        if (target < cumulative) {
            return lastLikely;
        }
    }
    return lastLikely;
}

}  // namespace pagoda

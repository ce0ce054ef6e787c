#pragma once
// Token sampling: greedy, temperature, top-k, top-p, min-p and repetition
// penalty, seeded and reproducible across platforms (own RNG and uniform
// draw, no std:: distributions).

#include <cstdint>
#include <span>
#include <vector>

namespace pagoda {

struct SamplingParams {
    float temperature = 0.8f;    // <= 0: greedy (argmax, lowest id on ties)
    int topK = 40;               // <= 0: off
    float topP = 0.95f;          // >= 1: off
    float minP = 0.05f;          // <= 0: off; keeps p >= minP * p_max
    float repeatPenalty = 1.1f;  // 1 (or <= 0): off; llama.cpp's rule: logit > 0 ? l / r : l * r
    int repeatLastN = 64;        // how many recent tokens the penalty looks at; 0: off, < 0: all
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplingParams& params);

    // Picks the next token from logits [n_vocab], given the tokens so far
    // (prompt and generated, oldest first) for the repetition penalty.
    // NaN logits count as -inf; when every candidate is -inf the lowest id
    // wins, as in greedy; empty logits give -1.
    int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

    const SamplingParams& params() const { return m_params; }

private:
    double nextUniform();  // [0, 1)

    SamplingParams m_params;
    uint64_t m_state[4];
    std::vector<std::pair<float, int32_t>> m_candidates;  // scratch
};

}  // namespace pagoda

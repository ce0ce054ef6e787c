#pragma once
// One accepted request as the engine thread tracks it: its tokens (prompt
// and generated), how many of them have KV in the cache, its place in the
// block manager, and the state that must survive preemption (sampler,
// output text, statistics), so a recomputed request continues exactly
// where it stopped and never emits text twice.

#include <chrono>
#include <cstdint>
#include <vector>

#include "engine/cache/block_stats.h"
#include "engine/runtime/request.h"
#include "engine/runtime/text_stream.h"
#include "engine/sampling/sampler.h"

namespace pagoda::runtime {

using Clock = std::chrono::steady_clock;

struct Sequence {
    Sequence(RequestId id_, Request request_, uint64_t arrival_, const Tokenizer* tokenizer)
        : id(id_), request(std::move(request_)), arrival(arrival_), tokens(std::move(request.promptTokens)),
          sampler(request.sampling),
          text(tokenizer, request.stopStrings, tokenizer != nullptr && tokens.back() == tokenizer->bos()) {
        stats.promptTokens = int(tokens.size());
    }

    RequestId id;
    Request request;        // its parameters (the prompt moved to tokens)
    uint64_t arrival;       // submission order: the waiting queue's tie-break
    std::vector<int32_t> tokens;  // prompt + generated; after KeepWindow shifts, the kept tokens
    int generated = 0;      // tokens sampled so far
    int computed = 0;       // leading tokens whose KV is in the cache (while running)
    int computedPeak = 0;   // most tokens ever computed: tokens below it count as recomputed
    SeqId seq = -1;         // block manager sequence while running, -1 while waiting
    uint64_t admission = 0; // order of its latest admission: the latest is preempted first
    bool admittedOnce = false;
    Sampler sampler;
    TextStream text;
    RequestStats stats;
    Clock::time_point submitted = Clock::now();
    Clock::time_point firstToken{};
    Clock::time_point lastToken{};

    bool running() const { return seq >= 0; }
    // Tokens still to compute before the next token can be sampled.
    int pending() const { return int(tokens.size()) - computed; }
};

}  // namespace pagoda::runtime

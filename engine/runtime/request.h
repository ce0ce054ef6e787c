#pragma once
// What a client hands the engine (Request) and what it hears back
// (EngineEvents): token ids, UTF-8-safe text deltas, and one FinishEvent per
// accepted request with its reason and statistics.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampling/sampler.h"

namespace pagoda::runtime {

using RequestId = int64_t;

// What happens when prompt + generated tokens outgrow the context (the
// model's, or what the KV budget can hold for one sequence).
enum class OverflowPolicy {
    Error,       // finish with FinishReason::ContextOverflow
    KeepWindow,  // drop the oldest tokens (BOS kept) down to half the context, recompute, go on
};

struct Request {
    std::vector<int32_t> promptTokens;  // used when not empty
    std::string promptText;             // else encoded with the model's tokenizer, BOS as the vocab says
    // promptText's special-token markers ("<|im_start|>", a chat template's
    // output) become their tokens; off: they are plain text, as user text
    // must be.
    bool parseSpecialTokens = false;
    SamplingParams sampling;
    int maxNewTokens = 256;             // >= 1
    std::vector<std::string> stopStrings;  // generation ends before the first one that appears in the text
    bool stopAtEndOfGeneration = true;     // EOS and end-of-turn tokens end generation
    int priority = 0;                      // higher runs first and is preempted last; ties: submission order
    OverflowPolicy overflow = OverflowPolicy::Error;
};

enum class FinishReason {
    StopString,       // a stop string appeared (it is not part of the text)
    EndOfGeneration,  // EOS or an end-of-turn token (its id was reported)
    Length,           // maxNewTokens generated
    Cancelled,        // cancel(id)
    ContextOverflow,  // OverflowPolicy::Error and the context is full
    Error,            // FinishEvent::message says what went wrong
};
inline constexpr int kFinishReasons = 6;

// "stop", "eos", "length", "cancelled", "context_overflow", "error"
std::string_view finishReasonName(FinishReason reason);

struct RequestStats {
    int promptTokens = 0;      // as submitted
    int reusedTokens = 0;      // prompt tokens whose KV came from the prefix cache at first admission
    int generatedTokens = 0;   // sampled tokens reported (EOS included)
    int preemptions = 0;       // times the request lost its KV and was requeued
    int recomputedTokens = 0;  // tokens computed again after preemptions and context shifts
    int contextShifts = 0;     // KeepWindow applications
    int droppedTokens = 0;     // tokens KeepWindow dropped from the front
    double queueSeconds = 0;   // submission to first admission
    double ttftSeconds = 0;    // submission to the first sampled token
    double totalSeconds = 0;   // submission to finish
    double decodeSeconds = 0;  // first sampled token to the last

    // Tokens after the first per second of decodeSeconds.
    double decodeTokensPerSecond() const {
        return decodeSeconds > 0 && generatedTokens > 1 ? (generatedTokens - 1) / decodeSeconds : 0;
    }
};

struct FinishEvent {
    RequestId id = -1;
    FinishReason reason = FinishReason::Length;
    std::string message;  // Error and ContextOverflow: what happened; KeepWindow: the shifts applied
    RequestStats stats;
};

// Called on the engine thread, in order per request: onToken for each
// sampled id, onText whenever text becomes final (the concatenation is the
// output text, cut before a stop string; UTF-8 characters are never split),
// then onFinished exactly once. Callbacks may call submit/cancel/reconfigure,
// never step().
class EngineEvents {
public:
    virtual ~EngineEvents() = default;
    virtual void onToken(RequestId id, int32_t token) = 0;
    virtual void onText(RequestId id, std::string_view text) = 0;
    virtual void onFinished(const FinishEvent& event) = 0;
};

}  // namespace pagoda::runtime

#include "engine/runtime/trace.h"

#include <fmt/format.h>

namespace pagoda::runtime {
namespace {

constexpr double kMicros = 1e6;

void complete(std::string& out, std::string_view name, double start, double seconds, std::string_view args = {}) {
    out += fmt::format(R"(,
{{"name":"{}","cat":"engine","ph":"X","pid":1,"tid":1,"ts":{:.3f},"dur":{:.3f}{}}})",
                       name, start * kMicros, seconds * kMicros, args);
}

}  // namespace

std::string traceJson(std::span<const StepMetrics> steps) {
    std::string out = R"({"displayTimeUnit":"ms","traceEvents":[
{"name":"process_name","ph":"M","pid":1,"tid":1,"args":{"name":"pagoda engine"}},
{"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{"name":"step loop"}})";
    for (const StepMetrics& s : steps) {
        complete(out, "step", s.startSeconds, s.wallSeconds,
                 fmt::format(R"(,"args":{{"index":{},"prefill_tokens":{},"decode_tokens":{},"batch":{},)"
                             R"("admitted":{},"preempted":{},"finished":{}}})",
                             s.index, s.prefillTokens, s.decodeTokens, s.batchSequences, s.admitted, s.preempted,
                             s.finished));
        double t = s.startSeconds;
        complete(out, "schedule", t, s.scheduleSeconds);
        t += s.scheduleSeconds;
        if (s.batchSequences > 0) complete(out, "forward", t, s.forwardSeconds);
        t += s.forwardSeconds;
        complete(out, "sample", t, s.sampleSeconds);
        const double end = (s.startSeconds + s.wallSeconds) * kMicros;
        out += fmt::format(R"(,
{{"name":"kv_blocks","ph":"C","pid":1,"ts":{:.3f},"args":{{"used":{},"cached":{},"free":{}}}}})",
                           end, s.blocksUsed, s.blocksCached, s.blocksFree);
        out += fmt::format(R"(,
{{"name":"sequences","ph":"C","pid":1,"ts":{:.3f},"args":{{"running":{},"waiting":{}}}}})",
                           end, s.running, s.waiting);
    }
    out += "\n]}\n";
    return out;
}

}  // namespace pagoda::runtime

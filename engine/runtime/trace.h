#pragma once
// Steps as a Chrome/Perfetto trace (the JSON trace-event format): one
// complete ("ph":"X") event per step with its schedule / forward / sample
// phases nested inside, ts and dur in microseconds since the engine
// started, and counter ("ph":"C") tracks for KV blocks and queue lengths.
// Open in ui.perfetto.dev or chrome://tracing.

#include <span>
#include <string>

#include "engine/runtime/metrics.h"

namespace pagoda::runtime {

std::string traceJson(std::span<const StepMetrics> steps);

}  // namespace pagoda::runtime

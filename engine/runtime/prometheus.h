#pragma once
// The engine's statistics in the Prometheus text exposition format
// (version 0.0.4): every family has # HELP and # TYPE lines, counters end
// in _total, units are in the names (_seconds, _bytes, _tokens). The names
// are listed in docs/ENGINE.md.

#include <string>

#include "engine/runtime/metrics.h"

namespace pagoda::runtime {

std::string prometheusText(const StatsSnapshot& stats);

}  // namespace pagoda::runtime

#pragma once
// Named spdlog loggers ("engine", "cpu", ...). Programs call setupLogging
// once; libraries only fetch loggers and never configure sinks.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace pagoda {

// Returns the named logger, creating it (stderr sink) on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

// Sets the level of every Pagoda logger: "trace" ... "off".
void setupLogging(const std::string& level);

}  // namespace pagoda

#include "engine/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace pagoda {

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
    if (auto existing = spdlog::get(name)) return existing;
    auto created = spdlog::stderr_color_mt(name);
    created->set_level(spdlog::get_level());
    return created;
}

void setupLogging(const std::string& level) {
    spdlog::set_level(spdlog::level::from_str(level));
    spdlog::set_pattern("[%H:%M:%S.%e] [%n] [%^%l%$] %v");
}

}  // namespace pagoda

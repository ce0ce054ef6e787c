#include "app/common/args.h"

#include <charconv>
#include <cstdlib>

namespace pagoda {

Result<Args> Args::parse(int argc, char** argv, int first, const std::set<std::string>& flags) {
    Args args;
    for (int i = first; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
            args.m_positional.push_back(arg);
            continue;
        }
        const std::string name = arg.substr(2);
        if (flags.contains(name)) {
            args.m_flags.insert(name);
            continue;
        }
        if (i + 1 >= argc) return fail("option --{} needs a value", name);
        if (args.m_values.contains(name)) return fail("option --{} given twice", name);
        args.m_values[name] = argv[++i];
    }
    return args;
}

bool Args::flag(const std::string& name) {
    m_used.insert(name);
    return m_flags.contains(name);
}

std::optional<std::string> Args::value(const std::string& name) {
    m_used.insert(name);
    auto it = m_values.find(name);
    if (it == m_values.end()) return std::nullopt;
    return it->second;
}

Result<std::string> Args::required(const std::string& name) {
    auto v = value(name);
    if (!v) return fail("missing required option --{}", name);
    return *v;
}

Result<int64_t> Args::integer(const std::string& name, int64_t fallback, int64_t min, int64_t max) {
    auto v = value(name);
    if (!v) return fallback;
    int64_t parsed = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), parsed);
    if (ec != std::errc() || end != v->data() + v->size()) return fail("--{}: '{}' is not an integer", name, *v);
    if (parsed < min || parsed > max) return fail("--{}: {} outside [{}, {}]", name, parsed, min, max);
    return parsed;
}

Result<double> Args::number(const std::string& name, double fallback, double min, double max) {
    auto v = value(name);
    if (!v) return fallback;
    char* end = nullptr;
    const double parsed = std::strtod(v->c_str(), &end);
    if (v->empty() || end != v->c_str() + v->size()) return fail("--{}: '{}' is not a number", name, *v);
    if (!(parsed >= min && parsed <= max)) return fail("--{}: {} outside [{}, {}]", name, parsed, min, max);
    return parsed;
}

Result<void> Args::checkAllUsed() const {
    for (const auto& [name, value] : m_values) {
        if (!m_used.contains(name)) return fail("unknown option --{}", name);
    }
    for (const std::string& name : m_flags) {
        if (!m_used.contains(name)) return fail("unknown option --{}", name);
    }
    return {};
}

}  // namespace pagoda

#pragma once
// A small command-line parser shared by the programs: "--name value" and
// "--flag" options after a subcommand. Every option must be consumed, so a
// misspelled one is an error rather than silently ignored.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/core/result.h"

namespace pagoda {

class Args {
public:
    // Parses argv[first..argc). `flags` names the options that take no value.
    static Result<Args> parse(int argc, char** argv, int first, const std::set<std::string>& flags);

    bool flag(const std::string& name);
    std::optional<std::string> value(const std::string& name);
    Result<std::string> required(const std::string& name);
    Result<int64_t> integer(const std::string& name, int64_t fallback, int64_t min, int64_t max);
    Result<double> number(const std::string& name, double fallback, double min, double max);
    const std::vector<std::string>& positional() const { return m_positional; }

    // Error naming the first option nobody asked for.
    Result<void> checkAllUsed() const;

private:
    std::map<std::string, std::string> m_values;
    std::set<std::string> m_flags;
    std::set<std::string> m_used;
    std::vector<std::string> m_positional;
};

}  // namespace pagoda

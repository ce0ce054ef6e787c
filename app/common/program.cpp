#include "app/common/program.h"

#include <cstdio>

#include <fmt/format.h>

#include "engine/core/log.h"

namespace pagoda {

int runProgram(const char* name, ProgramFn run, int argc, char** argv) {
    setupLogging("warn");
    auto result = run(argc, argv);
    if (!result) {
        fmt::print(stderr, "{}: error: {}\n", name, result.error().message);
        return 1;
    }
    return 0;
}

}  // namespace pagoda

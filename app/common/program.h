#pragma once
// The shared main() of the command-line programs: logging set up once, the
// program's run() called, and any error printed as one line
// "NAME: error: MESSAGE" with exit code 1.

#include "engine/core/result.h"

namespace pagoda {

using ProgramFn = Result<void> (*)(int argc, char** argv);

int runProgram(const char* name, ProgramFn run, int argc, char** argv);

}  // namespace pagoda

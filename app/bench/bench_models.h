#pragma once
// Models and inputs shared by the pagoda-bench subcommands: the model a
// benchmark runs (a file, or a synthetic preset created once under
// ~/.cache/pagoda/models) and deterministic token ids.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/common/args.h"
#include "engine/core/result.h"
#include "kernels/dtype.h"

namespace pagoda {

// The path of preset `preset` with `dtype` weights (bench-PRESET-DTYPE.gguf),
// written on first use.
Result<std::filesystem::path> presetModel(const std::string& preset, DType dtype);

// --model PATH, or --preset NAME (default small) with --dtype (default f16).
Result<std::filesystem::path> benchModelPath(Args& args);

// n token ids spread over [0, vocab), the same on every run for a seed.
std::vector<int32_t> benchTokens(int n, int vocab, uint64_t seed = 0x243f6a8885a308d3ull);

}  // namespace pagoda

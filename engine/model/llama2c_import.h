#pragma once
// Import of llama2.c models: a legacy (version 0) checkpoint and its
// tokenizer.bin become one GGUF v3 file of architecture "llama".

#include <filesystem>

#include "engine/core/result.h"

namespace pagoda {

// Writes `out` (through a temporary file renamed into place) from a llama2.c
// legacy checkpoint and tokenizer. Tensors are copied bit for bit (F32); a
// shared classifier becomes an absent output.weight (tied to token_embd).
// Both inputs are checked against their file sizes before any tensor is
// read: a truncated or corrupt file yields an Error naming the file, the
// field or tensor and the offending size.
Result<void> importLlama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer,
                           const std::filesystem::path& out);

}  // namespace pagoda

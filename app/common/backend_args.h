#pragma once
// The backend options every command-line program takes:
// --backend auto|cpu|cuda, --device N (a CUDA device; by default the first
// usable one), --gpu-layers auto|N (how many of the model's layers the GPU
// runs, BackendOptions::gpuLayers) and --threads N (CPU threads; 0, the
// default: all).

#include "app/common/args.h"
#include "engine/backend/backend_select.h"

namespace pagoda {

Result<BackendOptions> parseBackendOptions(Args& args);

}  // namespace pagoda

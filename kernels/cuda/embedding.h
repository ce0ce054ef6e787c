#pragma once
// Embedding lookup: rows of a token-embedding table (any CUDA weight type)
// as f32 activations.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/device_weight.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/status.h"

namespace pagoda::cuda {

// out[i] = row ids[i] of table as f32. ids: device [n]; out: device
// [n][table.cols]. Ids outside [0, table.rows) give rows of zeros (the
// engine validates token ids before they get here).
Status embedRows(const LaunchStream& stream, const DeviceWeight& table, const int32_t* ids, int n, float* out);

}  // namespace pagoda::cuda

#pragma once
// A weight matrix in device memory, stored as in GGUF: `rows` rows (output
// features) of `cols` elements, rowBytes(type, cols) bytes each.

#include <cstdint>

#include "kernels/dtype.h"

namespace pagoda::cuda {

struct DeviceWeight {
    DType type = DType::F32;
    const void* data = nullptr;  // device: [rows][rowBytes(type, cols)]
    int64_t rows = 0;
    int64_t cols = 0;
};

// The types the CUDA kernels read: F32, F16, BF16 (cuBLAS), Q8_0 and Q4_0
// (read in place).
inline bool isCudaWeightType(DType type) {
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 || type == DType::Q8_0 ||
           type == DType::Q4_0;
}

}  // namespace pagoda::cuda

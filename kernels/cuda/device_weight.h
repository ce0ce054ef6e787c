#pragma once
// A weight matrix in device memory, stored as in GGUF: `rows` rows (output
// features) of `cols` elements, rowBytes(type, cols) bytes each.

#include <cstdint>

#include "kernels/cuda/quant_blocks.h"
#include "kernels/dtype.h"

namespace pagoda::cuda {

struct DeviceWeight {
    DType type = DType::F32;
    const void* data = nullptr;  // device: [rows][rowBytes(type, cols)]
    int64_t rows = 0;
    int64_t cols = 0;
};

// The block-quantized types the CUDA kernels read in place (quantMatmul,
// embedRows, dequantizeToF16): those with QuantTraits, every one the CPU
// backend computes with.
inline bool isCudaQuantType(DType type) {
    return visitQuantType(type, [](auto) {});
}

// The types the CUDA kernels read: F32, F16, BF16 (cuBLAS) and the
// block-quantized types above.
inline bool isCudaWeightType(DType type) {
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 || isCudaQuantType(type);
}

}  // namespace pagoda::cuda

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

// Whether w's blocks start as aligned as the kernels read them
// (QuantTraits::kAlignment); the rows of a matrix whose data is keep it,
// as every block size is a multiple of its alignment. True for the other
// types.
inline bool quantBlocksAligned(const DeviceWeight& w) {
    int alignment = 1;
    visitQuantType(w.type, [&](auto q) { alignment = QuantTraits<decltype(q)::value>::kAlignment; });
    return reinterpret_cast<uintptr_t>(w.data) % uintptr_t(alignment) == 0;
}

// The types the CUDA kernels read: F32, F16, BF16 (cuBLAS) and the
// block-quantized types above.
inline bool isCudaWeightType(DType type) {
    return type == DType::F32 || type == DType::F16 || type == DType::BF16 || isCudaQuantType(type);
}

}  // namespace pagoda::cuda

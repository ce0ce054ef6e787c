#pragma once
// What every attention kernel of one call reads: the query and output
// activations, one layer's paged K/V pools (f16 or Q8_0 rows), and the
// descriptors that attention_plan.h packed and the backend uploaded.

#include <cstdint>

#include "kernels/cuda/host_device.h"

namespace pagoda::cuda {

// Q8_0 K/V rows: per 32 elements an f16 scale, then 32 int8 (llama.cpp's
// block_q8_0, as the CPU's KV cache holds them); an element is scale * q.
constexpr int kKvQ8Block = 32;
constexpr int kKvQ8BlockBytes = 34;

// One layer's pools: [numBlocks][nKvHeads][blockSize] rows of headDim
// elements each, f16 (2 bytes an element) or Q8_0 (headDim / 32 blocks).
struct DeviceKvView {
    const void* k = nullptr;
    const void* v = nullptr;
    int nKvHeads = 0;
    int blockSize = 0;
    int headDim = 0;
    bool q8 = false;  // Q8_0 rows; headDim a multiple of 32

    // Bytes of one row (a position of one KV head).
    PAGODA_HD int rowBytes() const { return q8 ? headDim / kKvQ8Block * kKvQ8BlockBytes : 2 * headDim; }
};

struct AttentionArgs {
    const float* q = nullptr;  // device [nTokens][nHeads][headDim]
    float* out = nullptr;      // device [nTokens][nHeads][headDim]
    int nHeads = 0;            // a multiple of kv.nKvHeads
    float scale = 1.0f;
    int window = 0;            // 0: full causal attention
    // > 0: each score s = scale * q·k becomes softcap * tanh(s / softcap)
    // before the softmax (Gemma 2; softcapValue in activations.h)
    float softcap = 0.0f;
    DeviceKvView kv;
    const int32_t* seqs = nullptr;    // device [nSeqs][kSeqDescInts]
    const int32_t* tables = nullptr;  // device, the packed block tables
};

}  // namespace pagoda::cuda

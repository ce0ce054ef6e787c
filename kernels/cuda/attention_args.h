#pragma once
// What every attention kernel of one call reads: the query and output
// activations, one layer's paged f16 K/V pools, and the descriptors that
// attention_plan.h packed and the backend uploaded.

#include <cstdint>

namespace pagoda::cuda {

// One layer's pools, f16: [numBlocks][nKvHeads][blockSize][headDim] each.
struct DeviceKvView {
    const void* k = nullptr;
    const void* v = nullptr;
    int nKvHeads = 0;
    int blockSize = 0;
    int headDim = 0;
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

#pragma once
// The operations the transformer's layer loop is written over. The CPU
// backend implements them with kernels/cpu; a device backend implements the
// same calls on its own memory. Pointers are activations in the backend's
// memory; shapes are in the comments.

#include <cstdint>
#include <span>
#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"

namespace pagoda {

class KvCache;

class Ops {
public:
    virtual ~Ops() = default;

    // "cpu: 2 threads, avx512"
    virtual std::string description() const = 0;

    // out[i] = row ids[i] of table as f32. out: [ids.size()][table.cols]
    virtual void embed(const cpu::WeightMatrix& table, std::span<const int32_t> ids, float* out) = 0;
    // x, y: [nRows][n]; weight: [n]
    virtual void rmsNorm(const float* x, const float* weight, float* y, int64_t nRows, int64_t n, float eps) = 0;
    // x: [nTokens][w.cols], y: [nTokens][w.rows]
    virtual void matmul(const cpu::WeightMatrix& w, const float* x, float* y, int64_t nTokens) = 0;
    // x: [nTokens][nHeads][headDim], rotated in place at positions[t]
    virtual void rope(float* x, int nTokens, int nHeads, const int32_t* positions, const cpu::RopeParams& params) = 0;
    // k, v: [nTokens][nKvHeads][headDim] written to slots[t] of layer's pools
    virtual void storeKv(KvCache& cache, int layer, const float* k, const float* v, const int32_t* slots,
                         int nTokens) = 0;
    virtual void attention(const cpu::AttentionParams& params) = 0;
    // out[i] = silu(gate[i]) * up[i]
    virtual void swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;
    // y[i] += x[i]
    virtual void add(float* y, const float* x, int64_t n) = 0;
    // y[r][i] += bias[i] for every row r. y: [nRows][n], bias: [n]
    virtual void addBias(float* y, const float* bias, int64_t nRows, int64_t n) = 0;
};

}  // namespace pagoda

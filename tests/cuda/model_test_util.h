#pragma once
// Shared by the engine-level CUDA tests: a CudaOps or the reason to skip,
// synthetic models built in memory, KV caches without prefix reuse, batches
// of chunks, and the same sequences run through the CPU and CUDA
// Transformers.

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/backend/cpu_ops.h"
#include "engine/backend/cuda_loader.h"
#include "engine/backend/cuda_ops.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"
#include "engine/transformer/transformer.h"
#include "tests/built_model.h"

namespace pagoda::test {

// A CudaOps on device 0 through the module built with the tests, or null
// with the reason in `reason`.
inline std::unique_ptr<CudaOps> cudaOpsOrSkipReason(std::string& reason) {
    const CudaProbeResult probe = probeCuda({PAGODA_TEST_CUDA_MODULE});
    if (!probe.available) {
        reason = probe.reason;
        return nullptr;
    }
    auto ops = CudaOps::create(probe.module);
    if (!ops) {
        reason = ops.error().message;
        return nullptr;
    }
    return std::move(*ops);
}

// Declares `ops`, a CudaOps, or skips the test with "no CUDA device: <reason>".
#define PAGODA_CUDA_OPS_OR_SKIP(ops)                                                          \
    std::string skipReason_;                                                                  \
    std::unique_ptr<::pagoda::CudaOps> ops = ::pagoda::test::cudaOpsOrSkipReason(skipReason_); \
    if (!ops) GTEST_SKIP() << "no CUDA device: " << skipReason_

// A cache of `tokens` tokens in 16-token blocks (f16 or `kvType`), every
// token computed, its pools where `ops` keeps them (null: host memory).
inline std::unique_ptr<KvCache> makeCache(const ModelConfig& config, int tokens, Ops* ops = nullptr,
                                          DType kvType = DType::F16) {
    BlockManagerConfig manager;
    manager.maxContext = config.contextLength;
    manager.prefixCaching = false;
    manager.watermark = 0;
    auto cache = KvCache::create(kvLayoutForTokens(config, tokens, 16, kvType), manager, ops);
    EXPECT_TRUE(cache) << cache.error().message;
    return cache ? std::move(*cache) : nullptr;
}

inline SeqId admit(KvCache& cache, std::span<const int32_t> prompt) {
    auto admission = cache.blocks().admit(prompt);
    EXPECT_TRUE(admission) << admission.error().message;
    return admission ? admission->seq : SeqId{};
}

inline void addChunk(ForwardBatch& batch, KvCache& cache, SeqId seq, std::span<const int32_t> tokens) {
    auto status = cache.addChunk(batch, seq, tokens, true);
    ASSERT_TRUE(status) << status.error().message;
    ASSERT_EQ(*status, Alloc::Ok);
}

// The batch of chunk `index` of `batch` alone: its tokens, slots and chunk.
inline ForwardBatch onlyChunk(const ForwardBatch& batch, size_t index) {
    size_t first = 0;
    for (size_t i = 0; i < index; ++i) first += size_t(batch.chunks[i].nTokens);
    const auto from = [&](const std::vector<int32_t>& v) {
        const auto begin = v.begin() + ptrdiff_t(first);
        return std::vector<int32_t>(begin, begin + batch.chunks[index].nTokens);
    };
    return ForwardBatch{from(batch.tokens), from(batch.slots), {batch.chunks[index]}};
}

inline std::vector<int32_t> randomTokens(int n, int vocab, std::mt19937_64& rng) {
    std::vector<int32_t> ids(size_t(n), 0);
    for (int32_t& id : ids) id = int32_t(rng() % uint64_t(vocab));
    return ids;
}

// max |got - want| relative to want's RMS; +inf on NaN.
inline double relativeError(std::span<const float> got, std::span<const float> want) {
    double maxDiff = 0;
    double sumSquares = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double diff = std::abs(double(got[i]) - double(want[i]));
        if (!(diff == diff)) return INFINITY;
        maxDiff = std::max(maxDiff, diff);
        sumSquares += double(want[i]) * double(want[i]);
    }
    return maxDiff / std::sqrt(sumSquares / double(want.size()));
}

// Every row of got ([rows][vocab]) within `tolerance` (relativeError) of
// the same row of want.
inline testing::AssertionResult rowsClose(std::span<const float> got, std::span<const float> want, int vocab,
                                          double tolerance) {
    if (got.size() != want.size() || want.size() % size_t(vocab) != 0) {
        return testing::AssertionFailure() << got.size() << " logits against " << want.size();
    }
    for (size_t row = 0; row < want.size() / size_t(vocab); ++row) {
        const double error =
            relativeError(got.subspan(row * vocab, size_t(vocab)), want.subspan(row * vocab, size_t(vocab)));
        if (!(error < tolerance)) {
            return testing::AssertionFailure() << "row " << row << ": relative error " << error << ", tolerance "
                                               << tolerance;
        }
    }
    return testing::AssertionSuccess();
}

// The logits' tolerance against the CPU, relative to their RMS. F32
// weights compute in f32 on both sides (the tensor-core prefill attention
// rounding q and probabilities to f16); with 16-bit weights cuBLAS rounds
// the activations to 16 bits, and so it does for quantized weights in
// products of more than 16 tokens (an f16 copy of the weights).
inline double logitTolerance(DType weights) { return weights == DType::F32 ? 1e-2 : 3e-2; }

// The same sequences through the CPU Transformer (a host KV cache) and the
// CUDA Transformer (the device KV cache: another cache created through the
// same CudaOps makes this one stale), or one on a model split by layer. Every token's logits are computed.
class CpuAndCuda {
public:
    CpuAndCuda(const Model& model, Ops& cuda, int maxTokens, const TransformerOptions& options,
               int cacheTokens = 512, DType kvType = DType::F16)
        : m_options(options), m_cpuOps(CpuOpsOptions{0}), m_cpu(model, m_cpuOps, maxTokens, options),
          m_cuda(model, cuda, maxTokens, options), m_vocab(model.config().vocabSize) {
        m_cpuCache = makeCache(model.config(), cacheTokens, nullptr, kvType);
        m_cudaCache = makeCache(model.config(), cacheTokens, &cuda, kvType);
    }

    // Starts a sequence on both sides, computing nothing; sequences are
    // numbered in the order they were admitted (forks included).
    void admit(std::span<const int32_t> prompt) {
        m_cpuSeqs.push_back(test::admit(*m_cpuCache, prompt));
        m_cudaSeqs.push_back(test::admit(*m_cudaCache, prompt));
    }

    // A copy-on-write fork of sequence `index`, its block copies applied on
    // both sides (on the device by the backend).
    void fork(size_t index) {
        auto cpuFork = m_cpuCache->blocks().fork(m_cpuSeqs[index]);
        auto cudaFork = m_cudaCache->blocks().fork(m_cudaSeqs[index]);
        ASSERT_TRUE(cpuFork && cudaFork);
        ASSERT_EQ(cudaFork->status, Alloc::Ok);
        ASSERT_FALSE(cudaFork->copies.empty());
        auto cpuCopied = m_cpuCache->copyBlocks(cpuFork->copies);
        ASSERT_TRUE(cpuCopied) << cpuCopied.error().message;
        auto cudaCopied = m_cudaCache->copyBlocks(cudaFork->copies);
        ASSERT_TRUE(cudaCopied) << cudaCopied.error().message;
        m_cpuSeqs.push_back(cpuFork->seq);
        m_cudaSeqs.push_back(cudaFork->seq);
    }

    // chunks[i] continues sequence i (an empty chunk leaves it out), the
    // same batch for each side.
    struct Batches {
        ForwardBatch cpu;
        ForwardBatch cuda;
    };
    Batches batches(const std::vector<std::vector<int32_t>>& chunks) {
        Batches b;
        for (size_t i = 0; i < chunks.size(); ++i) {
            if (chunks[i].empty()) continue;
            addChunk(b.cpu, *m_cpuCache, m_cpuSeqs[i], chunks[i]);
            addChunk(b.cuda, *m_cudaCache, m_cudaSeqs[i], chunks[i]);
        }
        return b;
    }

    // Empty on an error (reported as a test failure).
    std::vector<float> cpuLogits(const ForwardBatch& batch) { return logits(m_cpu, batch, *m_cpuCache); }
    // With `graphs`, a decode step runs as the CUDA graph of its bucket.
    std::vector<float> cudaLogits(const ForwardBatch& batch, bool graphs) {
        TransformerOptions options = m_options;
        options.decodeGraphs = graphs;
        m_cuda.setOptions(options);
        return logits(m_cuda, batch, *m_cudaCache);
    }

    struct Logits {
        std::vector<float> cuda;
        std::vector<float> cpu;
    };
    Logits step(const std::vector<std::vector<int32_t>>& chunks, bool graphs = false) {
        const Batches b = batches(chunks);
        return {cudaLogits(b.cuda, graphs), cpuLogits(b.cpu)};
    }

    int vocab() const { return m_vocab; }
    // Whether both caches were created (a failure was reported).
    bool ready() const { return m_cpuCache && m_cudaCache; }

private:
    static std::vector<float> logits(Transformer& transformer, const ForwardBatch& batch, KvCache& cache) {
        auto logits = transformer.forward(batch, cache);
        EXPECT_TRUE(logits) << logits.error().message;
        if (!logits) return {};
        return std::vector<float>(logits->begin(), logits->end());
    }

    TransformerOptions m_options;
    CpuOps m_cpuOps;
    Transformer m_cpu;
    Transformer m_cuda;
    int m_vocab;
    std::unique_ptr<KvCache> m_cpuCache;
    std::unique_ptr<KvCache> m_cudaCache;
    std::vector<SeqId> m_cpuSeqs;
    std::vector<SeqId> m_cudaSeqs;
};

}  // namespace pagoda::test

// Whole-model logits of the Transformer on the device (CudaOps through the
// loaded module) against the CPU Transformer on synthetic presets: prefill
// chunks of two sequences, then decode steps; F32, F16 and every quantized
// weight type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// embedding table included); flash and naive attention; forked sequences
// decoding from blocks copied on the device; a device KV cache made stale by
// a newer one; the out-of-memory error of weights that do not fit; a
// second backend running on the weights the first uploaded; and a model
// split by layer, its first layers on the CPU. Skipped with
// "no CUDA device: <reason>" without a device. (Batch composition and CUDA
// graphs: transformer_batches_test.cpp.)

#include <gtest/gtest.h>

#include "engine/backend/layer_split_ops.h"
#include "tests/cuda/model_test_util.h"

namespace pagoda {
namespace {

struct Param {
    const char* preset;
    DType dtype;
    cpu::AttentionAlgorithm attention;
};

void PrintTo(const Param& p, std::ostream* out) {
    *out << p.preset << " " << dtypeName(p.dtype) << (p.attention == cpu::AttentionAlgorithm::Flash ? " flash" : " naive");
}

class ModelLogits : public testing::TestWithParam<Param> {};

TEST_P(ModelLogits, PrefillAndDecodeMatchTheCpu) {
    PAGODA_CUDA_OPS_OR_SKIP(cuda);
    const Param param = GetParam();
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    SyntheticSpec spec = *syntheticPreset(param.preset);
    spec.dtype = param.dtype;
    spec.seed = seed;
    spec.contextLength = 512;
    test::BuiltModel built = test::buildModel(spec);
    ASSERT_TRUE(built.model);
    auto uploaded = cuda->uploadModel(*built.model);
    ASSERT_TRUE(uploaded) << uploaded.error().message;
    const int vocab = built.model->config().vocabSize;

    TransformerOptions options;
    options.attention = param.attention;
    test::CpuAndCuda run(*built.model, *cuda, 96, options);
    ASSERT_TRUE(run.ready());
    const std::vector<int32_t> a = test::randomTokens(70, vocab, rng);
    const std::vector<int32_t> b = test::randomTokens(23, vocab, rng);
    run.admit(a);
    run.admit(b);
    for (int step = 0; step < 4; ++step) {
        std::vector<std::vector<int32_t>> chunks = {a, b};
        if (step > 0) chunks = {test::randomTokens(1, vocab, rng), test::randomTokens(1, vocab, rng)};
        const test::CpuAndCuda::Logits logits = run.step(chunks);
        ASSERT_TRUE(test::rowsClose(logits.cuda, logits.cpu, vocab, test::logitTolerance(param.dtype)))
            << "step " << step;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Presets, ModelLogits,
    testing::Values(Param{"tiny", DType::F32, cpu::AttentionAlgorithm::Flash},
                    Param{"tiny", DType::Q4_0, cpu::AttentionAlgorithm::Naive},
                    Param{"small", DType::F32, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::F16, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q8_0, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q4_0, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::F16, cpu::AttentionAlgorithm::Naive},
                    // tiny's rows (64) are too short for the 256-element K-quant blocks
                    Param{"tiny", DType::Q4_1, cpu::AttentionAlgorithm::Flash},
                    Param{"tiny", DType::Q5_0, cpu::AttentionAlgorithm::Flash},
                    Param{"tiny", DType::Q5_1, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q2_K, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q3_K, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q4_K, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q5_K, cpu::AttentionAlgorithm::Flash},
                    Param{"small", DType::Q6_K, cpu::AttentionAlgorithm::Flash}),
    [](const testing::TestParamInfo<Param>& info) {
        return std::string(info.param.preset) + "_" + std::string(dtypeName(info.param.dtype)) +
               (info.param.attention == cpu::AttentionAlgorithm::Flash ? "_flash" : "_naive");
    });

TEST(ModelFork, ForkedSequencesDecodeFromCopiedDeviceBlocks) {
    PAGODA_CUDA_OPS_OR_SKIP(cuda);
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.seed = seed;
    test::BuiltModel built = test::buildModel(spec);
    ASSERT_TRUE(built.model);
    ASSERT_TRUE(cuda->uploadModel(*built.model));
    const int vocab = built.model->config().vocabSize;
    test::CpuAndCuda run(*built.model, *cuda, 64, TransformerOptions{});
    ASSERT_TRUE(run.ready());
    const std::vector<int32_t> prompt = test::randomTokens(37, vocab, rng);  // the last block is partly filled
    run.admit(prompt);
    run.step({prompt});
    run.fork(0);
    for (int step = 0; step < 3; ++step) {
        const std::vector<int32_t> token = test::randomTokens(1, vocab, rng);
        const test::CpuAndCuda::Logits logits = run.step({token, token});
        ASSERT_TRUE(test::rowsClose(logits.cuda, logits.cpu, vocab, test::logitTolerance(spec.dtype)))
            << "step " << step;
        const std::span<const float> parent(logits.cuda.data(), size_t(vocab));
        const std::span<const float> child(logits.cuda.data() + vocab, size_t(vocab));
        EXPECT_LT(test::relativeError(child, parent), 1e-5) << "step " << step;
    }
}

TEST(ModelKv, ACacheWhoseDevicePoolWasReplacedIsAnError) {
    PAGODA_CUDA_OPS_OR_SKIP(cuda);
    SyntheticSpec spec = *syntheticPreset("tiny");
    test::BuiltModel built = test::buildModel(spec);
    ASSERT_TRUE(built.model);
    ASSERT_TRUE(cuda->uploadModel(*built.model));
    const ModelConfig& c = built.model->config();
    std::unique_ptr<KvCache> stale = test::makeCache(c, 64, cuda.get());
    ASSERT_TRUE(stale);
    std::mt19937_64 rng(1);
    const std::vector<int32_t> prompt = test::randomTokens(20, c.vocabSize, rng);
    const SeqId seq = test::admit(*stale, prompt);
    ForwardBatch batch;
    test::addChunk(batch, *stale, seq, prompt);
    // The backend holds one pool: this cache's replaces the first's.
    std::unique_ptr<KvCache> current = test::makeCache(c, 64, cuda.get());
    ASSERT_TRUE(current);

    Transformer transformer(*built.model, *cuda, 32);
    auto logits = transformer.forward(batch, *stale);
    ASSERT_FALSE(logits);
    EXPECT_NE(logits.error().message.find("replaced by a newer cache"), std::string::npos) << logits.error().message;
    auto copied = stale->copyBlocks(std::vector<BlockCopy>{{0, 1}});
    ASSERT_FALSE(copied);
    EXPECT_NE(copied.error().message.find("replaced by a newer cache"), std::string::npos) << copied.error().message;
}

TEST(ModelUpload, WeightsThatDoNotFitAreAClearError) {
    PAGODA_CUDA_OPS_OR_SKIP(cuda);
    SyntheticSpec spec = *syntheticPreset("small");
    spec.dtype = DType::F32;
    test::BuiltModel built = test::buildModel(spec);
    ASSERT_TRUE(built.model);
    // Leave the device about 300 MiB: less than the model's ~440 MiB.
    const uint64_t freeBytes = cuda->memory().deviceFree;
    ASSERT_GT(freeBytes, 400ull << 20);
    auto filler = cuda->allocateActivations((freeBytes - (300ull << 20)) / sizeof(float));
    ASSERT_TRUE(filler) << filler.error().message;
    auto uploaded = cuda->uploadModel(*built.model);
    ASSERT_FALSE(uploaded);
    EXPECT_TRUE(uploaded.error().message.starts_with("out of device memory: the model's weights need "))
        << uploaded.error().message;
}

// A second backend runs on the weights the first uploaded, after the first
// is gone, with the CPU's logits.
TEST(ModelUpload, ASecondBackendRunsOnTheWeightsTheFirstUploaded) {
    PAGODA_CUDA_OPS_OR_SKIP(first);
    std::unique_ptr<CudaOps> second = test::cudaOpsOrSkipReason(skipReason_);
    ASSERT_NE(second, nullptr) << skipReason_;
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.seed = seed;
    spec.dtype = DType::F16;
    test::BuiltModel built = test::buildModel(spec);
    ASSERT_TRUE(built.model);
    ASSERT_TRUE(first->uploadModel(*built.model));
    const uint64_t weights = first->memory().inUseBy(cuda::MemoryUse::Weights);
    ASSERT_GT(weights, 0u);
    auto used = second->useWeights(*built.model, first->sharedWeights());
    ASSERT_TRUE(used) << used.error().message;
    EXPECT_EQ(second->memory().inUseBy(cuda::MemoryUse::Weights), weights);
    first.reset();

    const int vocab = built.model->config().vocabSize;
    test::CpuAndCuda run(*built.model, *second, 64, TransformerOptions{});
    ASSERT_TRUE(run.ready());
    const std::vector<int32_t> prompt = test::randomTokens(21, vocab, rng);
    run.admit(prompt);
    test::CpuAndCuda::Logits logits = run.step({prompt});
    ASSERT_TRUE(test::rowsClose(logits.cuda, logits.cpu, vocab, test::logitTolerance(spec.dtype)));
    const std::vector<int32_t> token = test::randomTokens(1, vocab, rng);
    logits = run.step({token});
    ASSERT_TRUE(test::rowsClose(logits.cuda, logits.cpu, vocab, test::logitTolerance(spec.dtype)));
}

// The model's first layers on the CPU, the rest on the device
// (LayerSplitOps): the device holds only its layers' weights, and prefill,
// a fork and decode steps, eager and as CUDA graphs, match the CPU alone.
TEST(ModelSplit, LayersSplitBetweenTheCpuAndTheDeviceMatchTheCpu) {
    PAGODA_CUDA_OPS_OR_SKIP(cuda);
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    SyntheticSpec spec = *syntheticPreset("small");
    spec.seed = seed;
    spec.dtype = DType::F16;
    test::BuiltModel built = test::buildModel(spec);
    ASSERT_TRUE(built.model);
    const int nLayers = built.model->config().nLayers;
    const int from = nLayers / 2;
    ASSERT_TRUE(cuda->uploadModel(*built.model, {}, from));
    EXPECT_EQ(cuda->firstLayer(), from);
    const uint64_t weights = cuda->memory().inUseBy(cuda::MemoryUse::Weights);
    EXPECT_GE(weights, CudaOps::weightBytes(*built.model, from));
    EXPECT_LT(weights, CudaOps::weightBytes(*built.model, from - 1));
    auto split = LayerSplitOps::create(std::make_unique<CpuOps>(CpuOpsOptions{0}), std::move(cuda), from, nLayers);
    ASSERT_TRUE(split) << split.error().message;

    const int vocab = built.model->config().vocabSize;
    test::CpuAndCuda run(*built.model, **split, 64, TransformerOptions{});
    ASSERT_TRUE(run.ready());
    const std::vector<int32_t> a = test::randomTokens(37, vocab, rng);
    const std::vector<int32_t> b = test::randomTokens(12, vocab, rng);
    run.admit(a);
    run.admit(b);
    test::CpuAndCuda::Logits logits = run.step({a, b});
    ASSERT_TRUE(test::rowsClose(logits.cuda, logits.cpu, vocab, test::logitTolerance(spec.dtype)));
    run.fork(0);
    for (int step = 0; step < 4; ++step) {
        std::vector<std::vector<int32_t>> tokens;
        for (int s = 0; s < 3; ++s) tokens.push_back(test::randomTokens(1, vocab, rng));
        logits = run.step(tokens, step % 2 == 1);
        ASSERT_TRUE(test::rowsClose(logits.cuda, logits.cpu, vocab, test::logitTolerance(spec.dtype)))
            << "step " << step;
    }
}

}  // namespace
}  // namespace pagoda

// The CUDA Transformer (CudaOps) against the CPU Transformer (CpuOps) on
// the same batches, composed as a scheduler composes them: prefill chunks of
// several sequences together, a prompt's chunks mixed with other sequences'
// decode tokens, each chunk of a batch run again alone; and decode steps as
// CUDA graphs (captured per batch-size bucket, replayed after, interleaved
// with eager steps) against the same steps run eagerly; int8 decode near
// float decode; programmatic dependent launch against ordinary launches.
// llama, qwen2 (biases, NeoX RoPE), qwen3 (QK-norm), phi3 (weights that
// are row ranges of fused tensors), gemma3 and gemma2 (local and global
// layers, post-norms, GeGLU, soft-capping), full and windowed attention,
// flash and naive; f16 and Q8_0 KV caches. Skipped with "no CUDA device:
// <reason>" without a device.

#include <gtest/gtest.h>

#include "tests/cuda/model_test_util.h"

namespace pagoda {
namespace {

struct Variant {
    const char* preset;
    const char* architecture;
    DType dtype;
    int window;
    cpu::AttentionAlgorithm attention;
    bool ropeFreqs = false;  // rope_freqs.weight, as Llama 3.1 and later carry
    const char* ropeScaling = "";  // SyntheticSpec::ropeScaling: linear, yarn or longrope
    DType kvType = DType::F16;     // of both sides' KV caches
};

void PrintTo(const Variant& v, std::ostream* out) {
    *out << v.preset << " " << v.architecture << " " << dtypeName(v.dtype) << ", window " << v.window
         << (v.attention == cpu::AttentionAlgorithm::Flash ? ", flash" : ", naive")
         << (v.ropeFreqs ? ", rope freqs" : "") << (*v.ropeScaling != '\0' ? ", " : "") << v.ropeScaling
         << (v.kvType != DType::F16 ? ", kv " + std::string(dtypeName(v.kvType)) : "");
}

std::string variantName(const testing::TestParamInfo<Variant>& info) {
    const Variant& v = info.param;
    return std::string(v.preset) + "_" + v.architecture + "_" + std::string(dtypeName(v.dtype)) + "_w" +
           std::to_string(v.window) + (v.attention == cpu::AttentionAlgorithm::Flash ? "_flash" : "_naive") +
           (v.ropeFreqs ? "_ropefreqs" : "") + (*v.ropeScaling != '\0' ? "_" : "") + v.ropeScaling +
           (v.kvType != DType::F16 ? "_kv" + std::string(dtypeName(v.kvType)) : "");
}

test::BuiltModel buildVariant(const Variant& variant, uint64_t seed) {
    SyntheticSpec spec = *syntheticPreset(variant.preset);
    spec.architecture = variant.architecture;
    spec.ropeFreqFactors = variant.ropeFreqs;
    spec.ropeScaling = variant.ropeScaling;
    spec.dtype = variant.dtype;
    spec.seed = seed;
    spec.contextLength = 512;
    if (spec.architecture.starts_with("gemma")) {
        // Six layers (gemma3's sixth is global), local windows of 8 that
        // these sequences outgrow, and gemma2's caps low enough to bend
        // these models' scores and logits.
        spec.nLayers = 6;
        spec.slidingWindow = 8;
        spec.attnSoftcap = 2.0f;
        spec.finalSoftcap = 3.0f;
    }
    return test::buildModel(spec);
}

TransformerOptions optionsOf(const Variant& variant) {
    TransformerOptions options;
    options.attention = variant.attention;
    options.slidingWindow = variant.window;
    return options;
}

// The variant's model on a device, with a fresh seed; skipped without one.
class OnDevice : public testing::TestWithParam<Variant> {
protected:
    void SetUp() override {
        std::string reason;
        m_cuda = test::cudaOpsOrSkipReason(reason);
        if (!m_cuda) GTEST_SKIP() << "no CUDA device: " << reason;
        SCOPED_TRACE(testing::Message() << "seed " << m_seed);
        m_built = buildVariant(GetParam(), m_seed);
        ASSERT_TRUE(m_built.model);
        auto uploaded = m_cuda->uploadModel(*m_built.model);
        ASSERT_TRUE(uploaded) << uploaded.error().message;
        m_vocab = m_built.model->config().vocabSize;
        m_tolerance = test::logitTolerance(GetParam().dtype);
    }

    const uint64_t m_seed = std::random_device{}();
    std::mt19937_64 m_rng{m_seed};
    std::unique_ptr<CudaOps> m_cuda;
    test::BuiltModel m_built;
    int m_vocab = 0;
    double m_tolerance = 0;
};

std::span<const float> rows(const std::vector<float>& logits, int first, int count, int vocab) {
    return std::span(logits).subspan(size_t(first) * vocab, size_t(count) * vocab);
}

using MixedBatches = OnDevice;

TEST_P(MixedBatches, MatchTheCpuAndEachChunkAlone) {
    SCOPED_TRACE(testing::Message() << "seed " << m_seed);
    const int vocab = m_vocab;
    const double tolerance = m_tolerance;
    std::mt19937_64& rng = m_rng;
    test::CpuAndCuda run(*m_built.model, *m_cuda, 64, optionsOf(GetParam()), 512, GetParam().kvType);
    ASSERT_TRUE(run.ready());
    const std::vector<int32_t> a = test::randomTokens(30, vocab, rng);
    const std::vector<int32_t> b = test::randomTokens(17, vocab, rng);
    const std::vector<int32_t> c = test::randomTokens(21, vocab, rng);
    for (const auto& prompt : {a, b, c}) run.admit(prompt);
    const auto token = [&] { return test::randomTokens(1, vocab, rng); };
    const std::vector<int32_t> cHead(c.begin(), c.begin() + 11);
    const std::vector<int32_t> cTail(c.begin() + 11, c.end());
    // Two prompts; c's prompt in two chunks beside decode tokens of a and b;
    // then decode steps of all three.
    const std::vector<std::vector<std::vector<int32_t>>> steps = {{a, b, {}},
                                                                   {token(), token(), cHead},
                                                                   {token(), token(), cTail},
                                                                   {token(), token(), token()},
                                                                   {token(), token(), token()}};
    for (size_t s = 0; s < steps.size(); ++s) {
        SCOPED_TRACE(testing::Message() << "step " << s);
        const test::CpuAndCuda::Batches batches = run.batches(steps[s]);
        const std::vector<float> cpu = run.cpuLogits(batches.cpu);
        const std::vector<float> device = run.cudaLogits(batches.cuda, false);
        ASSERT_TRUE(test::rowsClose(device, cpu, vocab, tolerance));
        // Each chunk again on its own: it rewrites the same K/V and must see
        // only its own sequence.
        int first = 0;
        for (size_t i = 0; i < batches.cuda.chunks.size(); ++i) {
            SCOPED_TRACE(testing::Message() << "chunk " << i << " alone");
            const int count = batches.cuda.chunks[i].nTokens;
            const std::vector<float> alone = run.cudaLogits(test::onlyChunk(batches.cuda, i), false);
            ASSERT_TRUE(test::rowsClose(alone, rows(device, first, count, vocab), vocab, tolerance));
            ASSERT_TRUE(test::rowsClose(alone, rows(cpu, first, count, vocab), vocab, tolerance));
            first += count;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Variants, MixedBatches,
    testing::Values(Variant{"tiny", "llama", DType::F32, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "llama", DType::Q8_0, 0, cpu::AttentionAlgorithm::Naive},
                    Variant{"tiny", "llama", DType::F16, 9, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "qwen2", DType::Q4_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "qwen3", DType::F16, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "llama", DType::F16, 0, cpu::AttentionAlgorithm::Flash, true},
                    Variant{"tiny", "qwen3", DType::F16, 0, cpu::AttentionAlgorithm::Flash, false, "yarn"},
                    Variant{"tiny", "phi3", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "phi3", DType::F16, 0, cpu::AttentionAlgorithm::Flash, false, "longrope"},
                    Variant{"small", "llama", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "gemma3", DType::F16, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "gemma2", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "gemma2", DType::F32, 0, cpu::AttentionAlgorithm::Naive},
                    // Q8_0 KV caches on both sides (small's heads are 64 wide, tiny's 16: too narrow).
                    Variant{"small", "llama", DType::F16, 0, cpu::AttentionAlgorithm::Flash, false, "", DType::Q8_0},
                    Variant{"small", "qwen3", DType::Q8_0, 9, cpu::AttentionAlgorithm::Flash, false, "", DType::Q8_0},
                    Variant{"small", "llama", DType::Q4_0, 0, cpu::AttentionAlgorithm::Naive, false, "", DType::Q8_0}),
    variantName);

// Three prompts of 5, 8 and 11 tokens, admitted to `run`.
std::vector<std::vector<int32_t>> admitPrompts(test::CpuAndCuda& run, int vocab, std::mt19937_64& rng) {
    std::vector<std::vector<int32_t>> prompts;
    for (int s = 0; s < 3; ++s) {
        prompts.push_back(test::randomTokens(5 + 3 * s, vocab, rng));
        run.admit(prompts.back());
    }
    return prompts;
}

// A decode step of those three sequences: a new token for each of `members`.
std::vector<std::vector<int32_t>> decodeChunks(const std::vector<int>& members, int vocab, std::mt19937_64& rng) {
    std::vector<std::vector<int32_t>> chunks(3);
    for (int seq : members) chunks[size_t(seq)] = test::randomTokens(1, vocab, rng);
    return chunks;
}

// Decode steps as CUDA graphs (captured per bucket, replayed, interleaved
// with eager steps) against the same steps run eagerly, and both against
// the CPU within cpuTolerance.
void decodeStepsMatch(const test::BuiltModel& built, CudaOps& cuda, const Variant& variant, std::mt19937_64& rng,
                      double tolerance, double cpuTolerance) {
    const int vocab = built.model->config().vocabSize;
    // The prompts in one batch; decode buckets 1, 2, 4, 8, 16, 24 and 32.
    test::CpuAndCuda run(*built.model, cuda, 32, optionsOf(variant), 512, variant.kvType);
    ASSERT_TRUE(run.ready());
    const test::CpuAndCuda::Logits prefill = run.step(admitPrompts(run, vocab, rng));
    ASSERT_TRUE(test::rowsClose(prefill.cuda, prefill.cpu, vocab, cpuTolerance));

    // The sequences in each step, and what its bucket does: 4 captured,
    // replayed; 1 captured; 4 replayed after another bucket's capture; 2
    // captured; 1 and 4 replayed again.
    const std::vector<std::vector<int>> members = {{0, 1, 2}, {0, 1, 2}, {1}, {0, 1, 2}, {0, 2}, {1}, {0, 1, 2}};
    for (size_t s = 0; s < members.size(); ++s) {
        SCOPED_TRACE(testing::Message() << "decode step " << s << ", " << members[s].size() << " sequences");
        const test::CpuAndCuda::Batches batches = run.batches(decodeChunks(members[s], vocab, rng));
        const std::vector<float> cpu = run.cpuLogits(batches.cpu);
        // Eager first: the graph's K/V then stay in the cache for the steps
        // after, so that a graph storing them wrongly shows there too.
        const std::vector<float> eager = run.cudaLogits(batches.cuda, false);
        const std::vector<float> graph = run.cudaLogits(batches.cuda, true);
        ASSERT_TRUE(test::rowsClose(eager, cpu, vocab, cpuTolerance));
        ASSERT_TRUE(test::rowsClose(graph, cpu, vocab, cpuTolerance));
        ASSERT_TRUE(test::rowsClose(graph, eager, vocab, tolerance));
    }
}

using DecodeGraphs = OnDevice;

TEST_P(DecodeGraphs, ReplaysMatchEagerStepsAndTheCpu) {
    SCOPED_TRACE(testing::Message() << "seed " << m_seed);
    decodeStepsMatch(m_built, *m_cuda, GetParam(), m_rng, m_tolerance, m_tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, DecodeGraphs,
    testing::Values(Variant{"small", "llama", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "llama", DType::F16, 9, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "qwen2", DType::Q4_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "qwen3", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash, true},
                    // Local layers' windows in a step staged for the global one.
                    Variant{"tiny", "gemma3", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash},
                    Variant{"tiny", "gemma2", DType::F16, 12, cpu::AttentionAlgorithm::Flash},
                    Variant{"small", "llama", DType::Q4_0, 0, cpu::AttentionAlgorithm::Flash, false, "", DType::Q8_0}),
    variantName);

// Programmatic dependent launch (compute capability 9.0 and newer; skipped
// before): a prompt batch and decode steps of 3, 1 and 2 sequences, eager
// and as CUDA graphs, with float and with int8 decode, give the same bits
// with it as launched as usual. Each step runs as usual first, then with
// it, rewriting the same K/V: a kernel that read its input before the
// kernel writing it was done would show here or in the steps after.
using DependentLaunch = OnDevice;

TEST_P(DependentLaunch, GivesTheBitsOfOrdinaryLaunches) {
    SCOPED_TRACE(testing::Message() << "seed " << m_seed);
    m_cuda->setDependentLaunch(true);
    if (const std::string d = m_cuda->description(); d.find(", dependent launch") == std::string::npos) {
        GTEST_SKIP() << "no dependent launch on this device: " << d;
    }
    test::CpuAndCuda run(*m_built.model, *m_cuda, 32, optionsOf(GetParam()));
    ASSERT_TRUE(run.ready());
    auto same = [&](const ForwardBatch& batch, bool graphs) {
        m_cuda->setDependentLaunch(false);
        const std::vector<float> ordinary = run.cudaLogits(batch, graphs);
        m_cuda->setDependentLaunch(true);
        const std::vector<float> dependent = run.cudaLogits(batch, graphs);
        ASSERT_FALSE(ordinary.empty());
        ASSERT_EQ(dependent, ordinary);  // NaN never compares equal
    };
    same(run.batches(admitPrompts(run, m_vocab, m_rng)).cuda, false);
    const std::vector<std::vector<int>> members = {{0, 1, 2}, {1}, {0, 2}, {0, 1, 2}};
    for (const bool int8 : {false, true}) {
        m_cuda->setInt8Matmul(int8 ? Int8Matmul::On : Int8Matmul::Off);
        for (size_t s = 0; s < members.size(); ++s) {
            for (const bool graphs : {false, true}) {
                SCOPED_TRACE(testing::Message() << "int8 " << int8 << ", step " << s << ", graphs " << graphs);
                same(run.batches(decodeChunks(members[s], m_vocab, m_rng)).cuda, graphs);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, DependentLaunch,
                         testing::Values(Variant{"small", "llama", DType::Q4_K, 0, cpu::AttentionAlgorithm::Flash},
                                         Variant{"tiny", "llama", DType::F16, 0, cpu::AttentionAlgorithm::Naive},
                                         Variant{"tiny", "qwen2", DType::Q8_0, 9, cpu::AttentionAlgorithm::Flash}),
                         variantName);

// Int8 decode on the device (the products of block-quantized weights in
// decode steps over their inputs rounded to 8 bits per block of 32): eager
// steps and graph replays alike, within the CPU's own int8-matmul bound
// (0.25 relative to the float result, tests/transformer/test_forward.cpp)
// of the CPU's float decode.
using Int8DecodeGraphs = OnDevice;

TEST_P(Int8DecodeGraphs, StayNearTheFloatDecodeInEagerStepsAndReplays) {
    SCOPED_TRACE(testing::Message() << "seed " << m_seed);
    decodeStepsMatch(m_built, *m_cuda, GetParam(), m_rng, m_tolerance, m_tolerance);
    m_cuda->setInt8Matmul(Int8Matmul::On);
    EXPECT_NE(m_cuda->description().find("int8 matmul"), std::string::npos) << m_cuda->description();
    decodeStepsMatch(m_built, *m_cuda, GetParam(), m_rng, m_tolerance, 0.25);
}

INSTANTIATE_TEST_SUITE_P(Variants, Int8DecodeGraphs,
                         testing::Values(Variant{"small", "llama", DType::Q4_K, 0, cpu::AttentionAlgorithm::Flash},
                                         Variant{"small", "llama", DType::Q6_K, 0, cpu::AttentionAlgorithm::Flash},
                                         Variant{"small", "llama", DType::Q3_K, 0, cpu::AttentionAlgorithm::Flash},
                                         Variant{"tiny", "llama", DType::Q5_1, 0, cpu::AttentionAlgorithm::Flash},
                                         Variant{"tiny", "llama", DType::Q8_0, 0, cpu::AttentionAlgorithm::Flash},
                                         Variant{"tiny", "qwen2", DType::Q4_0, 9, cpu::AttentionAlgorithm::Flash}),
                         variantName);

}  // namespace
}  // namespace pagoda

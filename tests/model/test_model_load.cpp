// Loading models: config from metadata, and clear errors for unknown
// architectures, missing keys and tensors, wrong shapes and types.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "engine/backend/backend_select.h"
#include "engine/backend/cpu_ops.h"
#include "engine/backend/layer_split_ops.h"
#include "engine/generation/generator.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"

namespace pagoda {
namespace {

using testing::HasSubstr;

SyntheticSpec tinySpec() {
    SyntheticSpec spec = *syntheticPreset("tiny");
    spec.dtype = DType::Q8_0;
    return spec;
}

// Loads the GGUF a writer produces; the buffer is kept alive in `storage`.
Result<std::unique_ptr<Model>> loadFrom(const gguf::GgufWriter& writer, std::vector<uint8_t>& storage) {
    auto bytes = writer.writeToMemory();
    if (!bytes) return std::unexpected(bytes.error());
    storage = std::move(*bytes);
    auto file = gguf::GgufFile::parse(storage);
    if (!file) return std::unexpected(file.error());
    return Model::fromFile(std::move(*file));
}

TEST(ModelLoad, SyntheticTinyConfigComesFromMetadata) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    auto model = loadFrom(*writer, storage);
    ASSERT_TRUE(model) << model.error().message;
    const ModelConfig& c = (*model)->config();
    EXPECT_EQ(c.architecture, "llama");
    EXPECT_EQ(c.dim, 64);
    EXPECT_EQ(c.nLayers, 2);
    EXPECT_EQ(c.nHeads, 4);
    EXPECT_EQ(c.nKvHeads, 2);
    EXPECT_EQ(c.headDim, 16);
    EXPECT_EQ(c.ropeDim, 16);
    EXPECT_EQ(c.ffnDim, 192);
    EXPECT_EQ(c.vocabSize, 512);
    EXPECT_EQ(c.contextLength, 512);
    EXPECT_TRUE(c.tiedOutput);
    EXPECT_EQ(c.bos, 1);
    EXPECT_EQ(c.eos, 2);
    EXPECT_FLOAT_EQ(c.rmsEps, 1e-5f);
    EXPECT_EQ((*model)->weightTypeName(), "q8_0");
    ASSERT_NE((*model)->tokenizer(), nullptr);
    EXPECT_EQ((*model)->tokenizer()->vocab().size(), 512);
}

TEST(ModelLoad, SyntheticTokenizerRoundTripsText) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    auto model = loadFrom(*writer, storage);
    ASSERT_TRUE(model) << model.error().message;
    const Tokenizer& tok = *(*model)->tokenizer();
    const std::string text = "Hello, world! caf\xC3\xA9 \xF0\x9F\x98\x80";
    const std::vector<int32_t> ids = tok.encode(text, true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(tok.decode(ids), text);
}

TEST(ModelLoad, UnknownArchitectureIsAClearError) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    writer->set("general.architecture", "mamba");
    auto model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("unsupported architecture 'mamba'"));
}

// Mixtral-style files are "llama" with experts: refused saying so, not for
// a missing tensor.
TEST(ModelLoad, MixtureOfExpertsIsAClearError) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    writer->set("llama.expert_count", uint32_t(8));
    auto model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("mixture-of-experts model (8 experts per layer"));
    writer->set("llama.expert_count", uint32_t(0));
    EXPECT_TRUE(loadFrom(*writer, storage));
}

TEST(ModelLoad, MissingRequiredKeyIsNamed) {
    gguf::GgufWriter writer;
    writer.set("general.architecture", "llama");
    writer.set("llama.embedding_length", uint32_t(64));
    std::vector<uint8_t> storage;
    auto model = loadFrom(writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("llama.block_count"));
}

TEST(ModelLoad, WrongKeyTypeAndBadValuesAreNamed) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    writer->set("llama.block_count", "two");
    auto model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("llama.block_count"));

    writer->set("llama.block_count", uint32_t(2));
    writer->set("llama.attention.head_count_kv", uint32_t(3));
    model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("head_count_kv 3"));
}

// rope.scaling.*: none, linear (also the legacy rope.scale_linear) or YaRN,
// with the parameters the forward pass gets; another type is refused.
TEST(ModelLoad, RopeScalingComesFromMetadata) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    auto model = loadFrom(*writer, storage);
    ASSERT_TRUE(model) << model.error().message;
    EXPECT_EQ((*model)->config().ropeScaling, RopeScalingType::None);
    cpu::RopeParams rope = ropeParamsFor((*model)->config());
    EXPECT_EQ(rope.scaling.freqScale, 1.0f);
    EXPECT_EQ(rope.scaling.extFactor, 0.0f);
    EXPECT_EQ(rope.scaling.mscale, 1.0f);

    writer->set("llama.rope.scale_linear", 2.0f);
    model = loadFrom(*writer, storage);
    ASSERT_TRUE(model) << model.error().message;
    EXPECT_EQ((*model)->config().ropeScaling, RopeScalingType::Linear);
    rope = ropeParamsFor((*model)->config());
    EXPECT_EQ(rope.scaling.freqScale, 0.5f);
    EXPECT_EQ(rope.scaling.extFactor, 0.0f);

    // Qwen3's long-context setting: YaRN, factor 4 over 32768 positions.
    writer->set("llama.rope.scaling.type", "yarn");
    writer->set("llama.rope.scaling.factor", 4.0f);
    writer->set("llama.rope.scaling.original_context_length", uint32_t(32768));
    writer->set("llama.rope.freq_base", 1e6f);
    model = loadFrom(*writer, storage);
    ASSERT_TRUE(model) << model.error().message;
    const ModelConfig& c = (*model)->config();
    EXPECT_EQ(c.ropeScaling, RopeScalingType::Yarn);
    EXPECT_EQ(c.ropeOriginalContext, 32768);
    rope = ropeParamsFor(c);
    EXPECT_EQ(rope.scaling.freqScale, 0.25f);
    EXPECT_EQ(rope.scaling.extFactor, 1.0f);
    // head dim 16: the pair with 32 turns in 32768 positions is 16 ln(32768 /
    // (2 pi 32)) / (2 ln 1e6) = 2.95 (low 2), with one turn 4.96 (high 5).
    EXPECT_EQ(rope.scaling.corrLow, 2.0f);
    EXPECT_EQ(rope.scaling.corrHigh, 5.0f);
    EXPECT_NEAR(rope.scaling.mscale, 1.0 + 0.1 * std::log(4.0), 1e-6);

    writer->set("llama.rope.scaling.type", "longrope");
    model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("rope.scaling.type': 'longrope' is not supported"));
    writer->set("llama.rope.scaling.type", "yarn");
    writer->set("llama.rope.scaling.factor", -1.0f);
    model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("llama.rope.scaling.factor"));
}

TEST(ModelLoad, ShapeMismatchNamesTheTensor) {
    std::vector<uint8_t> storage;
    auto writer = syntheticModelWriter(tinySpec());
    ASSERT_TRUE(writer);
    writer->set("llama.feed_forward_length", uint32_t(128));  // tensors were written for 192
    auto model = loadFrom(*writer, storage);
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("blk.0.ffn_gate.weight"));
}

TEST(ModelLoad, MissingFileIsAClearError) {
    auto model = Model::load("/nonexistent/dir/model.gguf");
    ASSERT_FALSE(model);
    EXPECT_THAT(model.error().message, HasSubstr("/nonexistent/dir/model.gguf"));
}

// A synthetic model written to a file of its own, removed at the end.
struct ModelFile {
    ModelFile(const SyntheticSpec& spec, const std::string& name)
        : path(std::filesystem::path(::testing::TempDir()) /
               ("pagoda_" + name + "_" + std::to_string(::getpid()) + ".gguf")),
          written(bool(writeSyntheticModel(spec, path))) {}
    ~ModelFile() { std::filesystem::remove(path); }
    std::filesystem::path path;
    bool written;
};

// On the CPU backend the weights are copied from the file mapping into
// memory (copyWeightsForTheCpu), which the note says, and greedy output
// stays the same; PAGODA_MAP_WEIGHTS keeps them mapped, saying why.
TEST(ModelLoad, TheCpuReadsItsWeightsFromMemory) {
    const ModelFile file(tinySpec(), "weights");
    ASSERT_TRUE(file.written);
    const std::filesystem::path& path = file.path;
    BackendOptions cpu;
    cpu.choice = BackendChoice::Cpu;
    cpu.cpu.threads = 1;
    auto generate = [&](bool mapped) {
        if (mapped) setenv("PAGODA_MAP_WEIGHTS", "1", 1);
        auto model = Model::load(path);
        EXPECT_TRUE(model) << model.error().message;
        auto backend = selectBackend(cpu);
        EXPECT_TRUE(backend) << backend.error().message;
        copyWeightsForTheCpu(*backend, **model);
        unsetenv("PAGODA_MAP_WEIGHTS");
        EXPECT_EQ((*model)->weightBytesInMemory(), mapped ? 0u : (*model)->file().fileSize());
        EXPECT_THAT(backend->note, HasSubstr(mapped ? "; the cpu reads the weights from the file mapping "
                                                      "(PAGODA_MAP_WEIGHTS is set)"
                                                    : "; the cpu reads the weights from memory ("));
        Generator generator(**model, *backend->ops);
        SamplingParams greedy;
        greedy.temperature = 0;
        const std::vector<int32_t> prompt = {1, 40, 41, 300};
        std::vector<int32_t> out;
        EXPECT_TRUE(generator.generate({prompt, 12, greedy, false}, [&](int32_t id) { out.push_back(id); }));
        return out;
    };
    const std::vector<int32_t> mapped = generate(true);
    EXPECT_EQ(generate(false), mapped);
    EXPECT_EQ(mapped.size(), 12u);
}

// A split's CPU side copies only the tensors of its layers (here two CPU
// backends stand in for the CPU and the GPU).
TEST(ModelLoad, TheCpuSideOfASplitCopiesOnlyItsLayers) {
    SyntheticSpec spec = tinySpec();
    spec.dim = 512, spec.nHeads = 8, spec.nKvHeads = 8, spec.ffnDim = 1536, spec.nLayers = 4;
    spec.dtype = DType::F32;  // 13.6 MB a layer
    const ModelFile file(spec, "split");
    ASSERT_TRUE(file.written);
    const std::filesystem::path& path = file.path;
    auto model = Model::load(path);
    ASSERT_TRUE(model) << model.error().message;
    auto split = LayerSplitOps::create(std::make_unique<CpuOps>(CpuOpsOptions{1, std::nullopt}),
                                       std::make_unique<CpuOps>(CpuOpsOptions{1, std::nullopt}), 2, 4);
    ASSERT_TRUE(split) << split.error().message;
    SelectedBackend backend;
    backend.ops = std::move(*split);
    const uint64_t layerBytes = 4ull * 512 * 512 * 4 + 3ull * 512 * 1536 * 4;
    const uint64_t expected = (*model)->bytesToCopy(2);
    EXPECT_GE(expected, 2 * layerBytes);
    EXPECT_LE(expected, 2 * layerBytes + (uint64_t(4) << 20));  // widened to 2 MiB at both ends
    copyWeightsForTheCpu(backend, **model);
    EXPECT_THAT(backend.note, HasSubstr(" copied, layers 0-1)"));
    EXPECT_EQ((*model)->weightBytesInMemory(), expected);
    EXPECT_LT((*model)->weightBytesInMemory(), (*model)->file().fileSize());
    // The copied bytes are the file's.
    auto again = Model::load(path);
    ASSERT_TRUE(again);
    const gguf::TensorInfo* wq = (*model)->file().findTensor("blk.1.attn_q.weight");
    ASSERT_NE(wq, nullptr);
    const std::span<const uint8_t> copied = (*model)->file().tensorData(*wq);
    const gguf::GgufFile& reopened = (*again)->file();
    const std::span<const uint8_t> mapped = reopened.tensorData(*reopened.findTensor("blk.1.attn_q.weight"));
    EXPECT_TRUE(std::equal(copied.begin(), copied.end(), mapped.begin(), mapped.end()));
}

TEST(Synthetic, PresetsHaveTheirRealShapes) {
    for (const std::string& name : syntheticPresetNames()) {
        auto spec = syntheticPreset(name);
        ASSERT_TRUE(spec) << name;
        spec->dtype = DType::Q4_0;
        EXPECT_TRUE(validateSpec(*spec)) << name;
    }
    EXPECT_NEAR(double(syntheticPreset("small")->parameterCount()), 110e6, 5e6);
    EXPECT_NEAR(double(syntheticPreset("7b")->parameterCount()), 6.74e9, 0.05e9);
    EXPECT_NEAR(double(syntheticPreset("8b-gqa")->parameterCount()), 8.03e9, 0.05e9);
    EXPECT_EQ(syntheticPreset("8b-gqa")->nKvHeads, 8);
    EXPECT_EQ(syntheticPreset("7b-mqa")->nKvHeads, 1);
    // Qwen3-0.6B's model card: 0.6B parameters, 0.44B without the embedding.
    const SyntheticSpec qwen3 = *syntheticPreset("qwen3-0.6b");
    EXPECT_NEAR(double(qwen3.parameterCount()), 0.6e9, 0.01e9);
    EXPECT_NEAR(double(qwen3.parameterCount() - uint64_t(qwen3.vocabSize) * qwen3.dim), 0.44e9, 0.01e9);
    EXPECT_EQ(syntheticPreset("qwen3-0.6b")->headSize(), 128);
    EXPECT_NEAR(double(syntheticPreset("phi3-mini")->parameterCount()), 3.82e9, 0.01e9);  // Phi-3-mini: "3.8B"
    EXPECT_NEAR(double(syntheticPreset("gemma3-1b")->parameterCount()), 1.0e9, 0.01e9);   // Gemma 3 1B
    EXPECT_NEAR(double(syntheticPreset("gemma2-2b")->parameterCount()), 2.61e9, 0.01e9);  // Gemma 2 2B
    EXPECT_FALSE(syntheticPreset("13b"));
}

TEST(Synthetic, SameSeedSameBytesOtherSeedOtherBytes) {
    SyntheticSpec spec = tinySpec();
    auto a = syntheticModelWriter(spec)->writeToMemory();
    auto b = syntheticModelWriter(spec)->writeToMemory();
    spec.seed += 1;
    auto c = syntheticModelWriter(spec)->writeToMemory();
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(*a, *b);
    EXPECT_NE(*a, *c);
}

TEST(Synthetic, InvalidSpecIsRejected) {
    SyntheticSpec spec = tinySpec();
    spec.nKvHeads = 3;
    EXPECT_FALSE(validateSpec(spec));
    spec = tinySpec();
    spec.dim = 48;  // not a multiple of the Q8_0 block (32)
    spec.nHeads = 2;
    EXPECT_FALSE(validateSpec(spec));
    spec = tinySpec();
    spec.vocabSize = 100;
    EXPECT_FALSE(validateSpec(spec));
}

}  // namespace
}  // namespace pagoda

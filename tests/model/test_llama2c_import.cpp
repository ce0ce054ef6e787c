// llama2.c import: a synthetic checkpoint whose every float records its own
// position (so any misplaced slice shows), the real stories260K checkpoint
// against its published GGUF conversion, and truncated or corrupt inputs.

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/gguf/gguf_reader.h"
#include "engine/model/llama2c_import.h"

namespace pagoda {
namespace {

namespace fs = std::filesystem;

struct Header {
    int32_t dim = 8;
    int32_t hiddenDim = 12;
    int32_t layerCount = 2;
    int32_t headCount = 2;
    int32_t kvHeadCount = 1;
    int32_t vocabSize = -5;  // negative: separate classifier
    int32_t seqLen = 4;
};

struct TokenEntry {
    float score;
    std::string text;
};

const std::vector<TokenEntry> kTokens = {
    {0.0f, "<unk>"}, {0.0f, "\n<s>\n"}, {0.0f, "\n</s>\n"}, {0.0f, "<0x0A>"}, {-1.5f, " hi there"},
};

std::vector<uint8_t> checkpointBytes(const Header& h) {
    const int64_t dim = h.dim;
    const int64_t layers = h.layerCount;
    const int64_t kvDim = h.kvHeadCount * (h.dim / h.headCount);
    const int64_t vocab = std::abs(h.vocabSize);
    const int64_t halfHead = h.dim / h.headCount / 2;
    const int64_t floatCount = vocab * dim + layers * (dim + dim * dim + 2 * kvDim * dim + dim * dim + dim +
                                                       3 * h.hiddenDim * dim) +
                               dim + 2 * h.seqLen * halfHead + (h.vocabSize < 0 ? vocab * dim : 0);
    std::vector<uint8_t> bytes(28 + size_t(floatCount) * 4);
    const int32_t fields[7] = {h.dim, h.hiddenDim, h.layerCount, h.headCount, h.kvHeadCount, h.vocabSize, h.seqLen};
    std::memcpy(bytes.data(), fields, sizeof(fields));
    for (int64_t i = 0; i < floatCount; ++i) {
        const float value = float(i);  // exact: every test checkpoint has fewer than 2^24 floats
        std::memcpy(bytes.data() + 28 + i * 4, &value, 4);
    }
    return bytes;
}

std::vector<uint8_t> tokenizerBytes(const std::vector<TokenEntry>& tokens) {
    std::vector<uint8_t> bytes;
    auto append = [&](const void* data, size_t size) {
        const auto* p = static_cast<const uint8_t*>(data);
        bytes.insert(bytes.end(), p, p + size);
    };
    int32_t maxLength = 0;
    for (const TokenEntry& t : tokens) maxLength = std::max(maxLength, int32_t(t.text.size()));
    append(&maxLength, 4);
    for (const TokenEntry& t : tokens) {
        const int32_t length = int32_t(t.text.size());
        append(&t.score, 4);
        append(&length, 4);
        append(t.text.data(), t.text.size());
    }
    return bytes;
}

void writeBytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream stream(path, std::ios::binary | std::ios::trunc);
    stream.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    ASSERT_TRUE(stream.good()) << path;
}

std::vector<float> tensorFloats(const gguf::GgufFile& file, const std::string& name) {
    const gguf::TensorInfo* tensor = file.findTensor(name);
    EXPECT_NE(tensor, nullptr) << name;
    if (tensor == nullptr) return {};
    EXPECT_EQ(tensor->type, DType::F32) << name;
    const std::span<const uint8_t> data = file.tensorData(*tensor);
    std::vector<float> values(data.size() / 4);
    std::memcpy(values.data(), data.data(), values.size() * 4);
    return values;
}

std::vector<std::string> stringArray(const gguf::GgufFile& file, const std::string& key) {
    Result<const gguf::Array*> array = file.getArray(key);
    EXPECT_TRUE(array) << key;
    std::vector<std::string> strings;
    if (!array) return strings;
    for (const gguf::Value& v : (*array)->items) strings.push_back(v.asString() ? *v.asString() : std::string());
    return strings;
}

std::vector<double> numberArray(const gguf::GgufFile& file, const std::string& key) {
    Result<const gguf::Array*> array = file.getArray(key);
    EXPECT_TRUE(array) << key;
    std::vector<double> numbers;
    if (!array) return numbers;
    for (const gguf::Value& v : (*array)->items) numbers.push_back(v.asFloat().value_or(-12345.0));
    return numbers;
}

class Llama2cImport : public testing::Test {
protected:
    void SetUp() override {
        m_dir = fs::temp_directory_path() /
                fmt::format("pagoda_llama2c_{}_{}", getpid(), testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(m_dir);
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(m_dir, ignored);
    }

    // Imports the given bytes; the output must exist exactly when the import succeeds.
    Result<void> importBytes(const std::vector<uint8_t>& checkpoint, const std::vector<uint8_t>& tokenizer) {
        writeBytes(m_dir / "model.bin", checkpoint);
        writeBytes(m_dir / "tokenizer.bin", tokenizer);
        std::error_code ignored;
        fs::remove(output(), ignored);
        Result<void> result = importLlama2c(m_dir / "model.bin", m_dir / "tokenizer.bin", output());
        EXPECT_EQ(fs::exists(output()), result.has_value());
        return result;
    }

    fs::path output() const { return m_dir / "model.gguf"; }

    fs::path m_dir;
};

TEST_F(Llama2cImport, PlacesEveryTensorAndToken) {
    const Header h;
    ASSERT_TRUE(importBytes(checkpointBytes(h), tokenizerBytes(kTokens)));
    Result<gguf::GgufFile> file = gguf::GgufFile::open(output());
    ASSERT_TRUE(file) << file.error().message;

    // Walk the checkpoint in llama2.c order; each tensor must hold the
    // consecutive float indices of its slice.
    const uint64_t dim = 8;
    const uint64_t kvDim = 4;
    const uint64_t hidden = 12;
    const uint64_t vocab = 5;
    uint64_t next = 0;
    auto expectSlices = [&](const std::string& suffix, std::vector<uint64_t> dims, bool perLayer) {
        const uint64_t count = dims.size() == 1 ? dims[0] : dims[0] * dims[1];
        for (int layer = 0; layer < (perLayer ? h.layerCount : 1); ++layer) {
            const std::string name = perLayer ? fmt::format("blk.{}.{}", layer, suffix) : suffix;
            const gguf::TensorInfo* tensor = file->findTensor(name);
            ASSERT_NE(tensor, nullptr) << name;
            EXPECT_EQ(tensor->dims, dims) << name;
            const std::vector<float> values = tensorFloats(*file, name);
            ASSERT_EQ(values.size(), count) << name;
            for (uint64_t i = 0; i < count; ++i) ASSERT_EQ(values[i], float(next + i)) << name << "[" << i << "]";
            next += count;
        }
    };
    expectSlices("token_embd.weight", {dim, vocab}, false);
    expectSlices("attn_norm.weight", {dim}, true);
    expectSlices("attn_q.weight", {dim, dim}, true);
    expectSlices("attn_k.weight", {dim, kvDim}, true);
    expectSlices("attn_v.weight", {dim, kvDim}, true);
    expectSlices("attn_output.weight", {dim, dim}, true);
    expectSlices("ffn_norm.weight", {dim}, true);
    expectSlices("ffn_gate.weight", {dim, hidden}, true);
    expectSlices("ffn_down.weight", {hidden, dim}, true);
    expectSlices("ffn_up.weight", {dim, hidden}, true);
    expectSlices("output_norm.weight", {dim}, false);
    next += 2 * uint64_t(h.seqLen) * 2;  // freq_cis_real and freq_cis_imag: [seq_len][head_size / 2] each
    expectSlices("output.weight", {dim, vocab}, false);
    EXPECT_EQ(file->tensors().size(), 3u + 9u * 2u);

    EXPECT_EQ(file->getString("general.architecture").value_or(""), "llama");
    EXPECT_EQ(file->getString("general.name").value_or(""), "model");
    EXPECT_EQ(file->getInt("llama.context_length").value_or(0), 4);
    EXPECT_EQ(file->getInt("llama.embedding_length").value_or(0), 8);
    EXPECT_EQ(file->getInt("llama.block_count").value_or(0), 2);
    EXPECT_EQ(file->getInt("llama.feed_forward_length").value_or(0), 12);
    EXPECT_EQ(file->getInt("llama.attention.head_count").value_or(0), 2);
    EXPECT_EQ(file->getInt("llama.attention.head_count_kv").value_or(0), 1);
    EXPECT_EQ(file->getInt("llama.rope.dimension_count").value_or(0), 4);
    EXPECT_EQ(file->getFloat("llama.attention.layer_norm_rms_epsilon").value_or(0), double(1e-5f));
    EXPECT_EQ(file->getFloat("llama.rope.freq_base").value_or(0), 10000.0);
    EXPECT_EQ(file->getString("tokenizer.ggml.model").value_or(""), "llama");
    EXPECT_EQ(file->getInt("tokenizer.ggml.bos_token_id").value_or(-1), 1);
    EXPECT_EQ(file->getInt("tokenizer.ggml.eos_token_id").value_or(-1), 2);
    EXPECT_EQ(file->getInt("tokenizer.ggml.unknown_token_id").value_or(-1), 0);
    EXPECT_TRUE(file->getBool("tokenizer.ggml.add_bos_token").value_or(false));
    EXPECT_TRUE(file->getBool("tokenizer.ggml.add_space_prefix").value_or(false));
    EXPECT_EQ(stringArray(*file, "tokenizer.ggml.tokens"),
              (std::vector<std::string>{"<unk>", "<s>", "</s>", "<0x0A>", "\u2581hi\u2581there"}));
    EXPECT_EQ(numberArray(*file, "tokenizer.ggml.scores"), (std::vector<double>{0, 0, 0, 0, -1.5}));
    EXPECT_EQ(numberArray(*file, "tokenizer.ggml.token_type"), (std::vector<double>{2, 3, 3, 6, 1}));
}

TEST_F(Llama2cImport, SharedClassifierLeavesOutputTied) {
    Header h;
    h.vocabSize = 5;
    ASSERT_TRUE(importBytes(checkpointBytes(h), tokenizerBytes(kTokens)));
    Result<gguf::GgufFile> file = gguf::GgufFile::open(output());
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->findTensor("output.weight"), nullptr);
    EXPECT_EQ(file->tensors().size(), 2u + 9u * 2u);
}

TEST_F(Llama2cImport, TruncatedOrExtendedCheckpointIsAnError) {
    const std::vector<uint8_t> checkpoint = checkpointBytes(Header{});
    const std::vector<uint8_t> tokenizer = tokenizerBytes(kTokens);
    // Every cut inside the header, then a cut every 37 bytes (a prime: it lands at
    // varied places within the tensors), then the last byte.
    std::vector<size_t> sizes;
    for (size_t size = 0; size < checkpoint.size(); size += size < 32 ? 1 : 37) sizes.push_back(size);
    sizes.push_back(checkpoint.size() - 1);
    for (size_t size : sizes) {
        Result<void> result = importBytes({checkpoint.begin(), checkpoint.begin() + ptrdiff_t(size)}, tokenizer);
        ASSERT_FALSE(result) << "size " << size;
        EXPECT_NE(result.error().message.find("model.bin"), std::string::npos) << result.error().message;
    }
    std::vector<uint8_t> extended = checkpoint;
    extended.push_back(0);
    Result<void> result = importBytes(extended, tokenizer);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("1 bytes after the last tensor"), std::string::npos)
        << result.error().message;
}

TEST_F(Llama2cImport, CorruptHeaderIsAnError) {
    const std::vector<uint8_t> tokenizer = tokenizerBytes(kTokens);
    auto expectError = [&](Header h, const std::string& needle) {
        std::vector<uint8_t> bytes = checkpointBytes(Header{});
        const int32_t fields[7] = {h.dim, h.hiddenDim, h.layerCount, h.headCount, h.kvHeadCount, h.vocabSize, h.seqLen};
        std::memcpy(bytes.data(), fields, sizeof(fields));
        Result<void> result = importBytes(bytes, tokenizer);
        ASSERT_FALSE(result) << needle;
        EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
    };
    Header h;
    h.dim = -8;
    expectError(h, "dim = -8");
    h = Header{};
    h.headCount = 0;
    expectError(h, "n_heads = 0");
    h = Header{};
    h.kvHeadCount = 3;
    expectError(h, "n_kv_heads = 3");
    h = Header{};
    h.vocabSize = 0;
    expectError(h, "vocab_size = 0");
    h = Header{};
    h.dim = 1 << 30;
    h.hiddenDim = 1 << 30;
    h.layerCount = 1 << 30;
    h.headCount = 1 << 20;
    h.kvHeadCount = 1 << 20;
    expectError(h, "tensor token_embedding_table");
    h = Header{};
    h.dim = 0x616b3432;  // "ak42"
    expectError(h, "version 0");
}

TEST_F(Llama2cImport, TruncatedOrCorruptTokenizerIsAnError) {
    const std::vector<uint8_t> checkpoint = checkpointBytes(Header{});
    const std::vector<uint8_t> tokenizer = tokenizerBytes(kTokens);
    for (size_t size = 0; size < tokenizer.size(); ++size) {
        Result<void> result = importBytes(checkpoint, {tokenizer.begin(), tokenizer.begin() + ptrdiff_t(size)});
        ASSERT_FALSE(result) << "size " << size;
        EXPECT_NE(result.error().message.find("tokenizer.bin"), std::string::npos) << result.error().message;
    }
    std::vector<uint8_t> hugeLength = tokenizer;
    const int32_t length = 0x7fffffff;
    std::memcpy(hugeLength.data() + 4 + 4, &length, 4);  // token 0's length
    Result<void> result = importBytes(checkpoint, hugeLength);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("token 0 of 5"), std::string::npos) << result.error().message;

    std::vector<TokenEntry> tooFew = kTokens;
    tooFew.pop_back();
    result = importBytes(checkpoint, tokenizerBytes(tooFew));
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("token 4 of 5"), std::string::npos) << result.error().message;
}

TEST_F(Llama2cImport, Stories260KMatchesPublishedGguf) {
    const fs::path models = fs::path(PAGODA_SHARED_DIR) / "models";
    const fs::path checkpoint = models / "stories260K.bin";
    const fs::path tokenizer = models / "tok512.bin";
    const fs::path golden = models / "stories260K.gguf";
    for (const fs::path& path : {checkpoint, tokenizer, golden}) {
        if (!fs::exists(path)) GTEST_SKIP() << path << " not found: golden model unavailable";
    }
    Result<void> imported = importLlama2c(checkpoint, tokenizer, output());
    ASSERT_TRUE(imported) << imported.error().message;
    Result<gguf::GgufFile> ours = gguf::GgufFile::open(output());
    ASSERT_TRUE(ours) << ours.error().message;
    Result<gguf::GgufFile> theirs = gguf::GgufFile::open(golden);
    ASSERT_TRUE(theirs) << theirs.error().message;

    // stories260K.bin shares its classifier; the published file stores a copy as output.weight.
    EXPECT_EQ(ours->findTensor("output.weight"), nullptr);
    EXPECT_EQ(ours->tensors().size() + 1, theirs->tensors().size());
    for (const gguf::TensorInfo& expected : theirs->tensors()) {
        const std::string name = expected.name == "output.weight" ? "token_embd.weight" : expected.name;
        const gguf::TensorInfo* actual = ours->findTensor(name);
        ASSERT_NE(actual, nullptr) << name;
        EXPECT_EQ(actual->dims, expected.dims) << name;
        EXPECT_EQ(actual->type, expected.type) << name;
        const std::span<const uint8_t> a = ours->tensorData(*actual);
        const std::span<const uint8_t> b = theirs->tensorData(expected);
        EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << expected.name << " differs";
    }

    EXPECT_EQ(stringArray(*ours, "tokenizer.ggml.tokens"), stringArray(*theirs, "tokenizer.ggml.tokens"));
    EXPECT_EQ(numberArray(*ours, "tokenizer.ggml.scores"), numberArray(*theirs, "tokenizer.ggml.scores"));
    EXPECT_EQ(numberArray(*ours, "tokenizer.ggml.token_type"), numberArray(*theirs, "tokenizer.ggml.token_type"));
    for (const char* key : {"llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                            "llama.attention.head_count", "llama.attention.head_count_kv",
                            "llama.rope.dimension_count", "tokenizer.ggml.bos_token_id",
                            "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
        EXPECT_EQ(ours->getInt(key).value_or(-1), theirs->getInt(key).value_or(-2)) << key;
    }
    EXPECT_EQ(ours->getFloat("llama.attention.layer_norm_rms_epsilon").value_or(0),
              theirs->getFloat("llama.attention.layer_norm_rms_epsilon").value_or(1));
    EXPECT_EQ(ours->getInt("llama.context_length").value_or(0), 512);  // the published file says 2048: a converter default
    EXPECT_EQ(ours->getString("general.name").value_or(""), "stories260K");
}

}  // namespace
}  // namespace pagoda

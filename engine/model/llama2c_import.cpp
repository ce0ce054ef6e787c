#include "engine/model/llama2c_import.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/vocab.h"

namespace pagoda {
namespace {

// llama2.c and GGUF both store little-endian values; tensor bytes are copied as they are.
static_assert(std::endian::native == std::endian::little, "the importer copies little-endian data verbatim");

constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);
constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42": llama2.c checkpoints of version 1 and later
constexpr uint64_t kFloatBytes = sizeof(float);
constexpr int32_t kUnknownId = 0;
constexpr int32_t kBosId = 1;
constexpr int32_t kEosId = 2;

// The 7 int32 of a legacy checkpoint's header.
struct CheckpointHeader {
    int32_t dim = 0;
    int32_t hiddenDim = 0;
    int32_t layerCount = 0;
    int32_t headCount = 0;
    int32_t kvHeadCount = 0;
    int32_t vocabSize = 0;  // absolute value of the stored field
    bool sharedClassifier = true;  // stored vocab_size > 0
    int32_t seqLen = 0;

    int32_t headSize() const { return dim / headCount; }
    int32_t kvDim() const { return kvHeadCount * headSize(); }
};

// Where one tensor lies in the checkpoint: `count` consecutive slices (one
// per layer for the per-layer tensors) of `sliceBytes` each.
struct Segment {
    uint64_t offset = 0;
    uint64_t sliceBytes = 0;
    uint64_t sliceOffset(uint64_t index) const { return offset + index * sliceBytes; }
};

struct CheckpointLayout {
    Segment tokenEmbedding;  // [vocab][dim]
    Segment attnNorm;        // [layers][dim]
    Segment wq;              // [layers][dim][dim]
    Segment wk;              // [layers][kvDim][dim]
    Segment wv;              // [layers][kvDim][dim]
    Segment wo;              // [layers][dim][dim]
    Segment ffnNorm;         // [layers][dim]
    Segment w1;              // [layers][hidden][dim]
    Segment w2;              // [layers][dim][hidden]
    Segment w3;              // [layers][hidden][dim]
    Segment outputNorm;      // [dim]
    Segment classifier;      // [vocab][dim], only when not shared
};

struct ImportedVocab {
    std::vector<std::string> tokens;  // [vocab], SentencePiece spelling ("▁" for space)
    std::vector<float> scores;        // [vocab]
    std::vector<int32_t> types;       // [vocab] TokenType values
};

std::optional<uint64_t> checkedProduct(std::initializer_list<uint64_t> factors) {
    uint64_t product = 1;
    for (uint64_t f : factors) {
        if (__builtin_mul_overflow(product, f, &product)) return std::nullopt;
    }
    return product;
}

Result<uint64_t> fileSize(const std::filesystem::path& path) {
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(path, error);
    if (error) return fail("{}: cannot read the file size: {}", path.string(), error.message());
    return size;
}

int32_t readI32(const uint8_t* p) {
    int32_t value;
    std::memcpy(&value, p, sizeof(value));
    return value;
}

Result<CheckpointHeader> readHeader(const std::filesystem::path& path, uint64_t size) {
    if (size < kHeaderBytes) {
        return fail("{}: {} bytes is too short for the {}-byte llama2.c header", path.string(), size, kHeaderBytes);
    }
    uint8_t bytes[kHeaderBytes];
    std::ifstream stream(path, std::ios::binary);
    if (!stream.read(reinterpret_cast<char*>(bytes), kHeaderBytes)) {
        return fail("{}: cannot read the header", path.string());
    }
    if (uint32_t(readI32(bytes)) == kVersionedMagic) {
        return fail("{}: a llama2.c version 1+ checkpoint (magic \"ak42\"); only the legacy version 0 format is "
                    "supported",
                    path.string());
    }
    CheckpointHeader h;
    h.dim = readI32(bytes);
    h.hiddenDim = readI32(bytes + 4);
    h.layerCount = readI32(bytes + 8);
    h.headCount = readI32(bytes + 12);
    h.kvHeadCount = readI32(bytes + 16);
    const int32_t storedVocab = readI32(bytes + 20);
    h.seqLen = readI32(bytes + 24);

    const std::pair<const char*, int32_t> positive[] = {
        {"dim", h.dim},           {"hidden_dim", h.hiddenDim},      {"n_layers", h.layerCount},
        {"n_heads", h.headCount}, {"n_kv_heads", h.kvHeadCount}, {"seq_len", h.seqLen},
    };
    for (const auto& [name, value] : positive) {
        if (value <= 0) return fail("{}: header {} = {} must be positive", path.string(), name, value);
    }
    if (storedVocab == 0 || storedVocab == std::numeric_limits<int32_t>::min()) {
        return fail("{}: header vocab_size = {} is invalid", path.string(), storedVocab);
    }
    h.sharedClassifier = storedVocab > 0;
    h.vocabSize = storedVocab > 0 ? storedVocab : -storedVocab;
    if (h.vocabSize < 3) {
        return fail("{}: header vocab_size = {} leaves no room for <unk>, <s> and </s>", path.string(), h.vocabSize);
    }
    if (h.dim % h.headCount != 0 || h.headSize() % 2 != 0) {
        return fail("{}: header dim = {} does not split into n_heads = {} heads of even size", path.string(), h.dim,
                    h.headCount);
    }
    if (h.kvHeadCount > h.headCount || h.headCount % h.kvHeadCount != 0) {
        return fail("{}: header n_heads = {} is not a multiple of n_kv_heads = {}", path.string(), h.headCount,
                    h.kvHeadCount);
    }
    return h;
}

// Lays the tensors out in llama2.c order and checks that they end exactly
// at the end of the file.
Result<CheckpointLayout> computeLayout(const std::filesystem::path& path, const CheckpointHeader& h, uint64_t size) {
    uint64_t offset = kHeaderBytes;
    std::optional<Error> error;
    auto next = [&](const char* name, uint64_t sliceCount, std::initializer_list<uint64_t> sliceDims) {
        if (error) return Segment{};
        const std::optional<uint64_t> sliceElements = checkedProduct(sliceDims);
        const std::optional<uint64_t> sliceBytes =
            sliceElements ? checkedProduct({*sliceElements, kFloatBytes}) : std::nullopt;
        const std::optional<uint64_t> bytes = sliceBytes ? checkedProduct({*sliceBytes, sliceCount}) : std::nullopt;
        if (!bytes || *bytes > size - offset) {
            error = Error{fmt::format(
                "{}: tensor {} at offset {} needs {} bytes but the file has {} (truncated, or a header that does not "
                "match: dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={})",
                path.string(), name, offset, bytes ? fmt::to_string(*bytes) : std::string("more than 2^64"), size,
                h.dim, h.hiddenDim, h.layerCount, h.headCount, h.kvHeadCount, h.vocabSize, h.seqLen)};
            return Segment{};
        }
        const Segment segment{offset, *sliceBytes};
        offset += *bytes;
        return segment;
    };
    const uint64_t dim = uint64_t(h.dim);
    const uint64_t layers = uint64_t(h.layerCount);
    const uint64_t hidden = uint64_t(h.hiddenDim);
    const uint64_t kvDim = uint64_t(h.kvDim());
    const uint64_t vocab = uint64_t(h.vocabSize);

    CheckpointLayout layout;
    layout.tokenEmbedding = next("token_embedding_table", 1, {vocab, dim});
    layout.attnNorm = next("rms_att_weight", layers, {dim});
    layout.wq = next("wq", layers, {dim, dim});
    layout.wk = next("wk", layers, {kvDim, dim});
    layout.wv = next("wv", layers, {kvDim, dim});
    layout.wo = next("wo", layers, {dim, dim});
    layout.ffnNorm = next("rms_ffn_weight", layers, {dim});
    layout.w1 = next("w1", layers, {hidden, dim});
    layout.w2 = next("w2", layers, {dim, hidden});
    layout.w3 = next("w3", layers, {hidden, dim});
    layout.outputNorm = next("rms_final_weight", 1, {dim});
    // RoPE tables of the legacy format: recomputed by every reader, skipped here.
    next("freq_cis_real", 1, {uint64_t(h.seqLen), uint64_t(h.headSize() / 2)});
    next("freq_cis_imag", 1, {uint64_t(h.seqLen), uint64_t(h.headSize() / 2)});
    if (!h.sharedClassifier) layout.classifier = next("wcls", 1, {vocab, dim});
    if (error) return std::unexpected(*error);
    if (offset != size) {
        return fail("{}: {} bytes after the last tensor (which ends at offset {}): the header does not describe "
                    "this file",
                    path.string(), size - offset, offset);
    }
    return layout;
}

bool isBytePiece(const std::string& piece) {
    auto isHex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    return piece.size() == 6 && piece.starts_with("<0x") && isHex(piece[3]) && isHex(piece[4]) && piece[5] == '>';
}

// llama2.c's exporter wrote SentencePiece's "▁" as a plain space.
std::string toSentencePiece(const std::string& piece) {
    std::string out;
    for (char c : piece) {
        if (c == ' ') {
            out += "\u2581";
        } else {
            out += c;
        }
    }
    return out;
}

Result<ImportedVocab> readTokenizer(const std::filesystem::path& path, int32_t vocabSize) {
    Result<uint64_t> size = fileSize(path);
    if (!size) return std::unexpected(size.error());
    std::ifstream stream(path, std::ios::binary);
    if (!stream) return fail("{}: cannot open", path.string());
    uint64_t offset = 0;
    auto readBytes = [&](void* out, uint64_t count, std::string_view what) -> Result<void> {
        if (count > *size - offset) {
            return fail("{}: {} at offset {} needs {} bytes, past the end of the file (size {})", path.string(), what,
                        offset, count, *size);
        }
        if (!stream.read(static_cast<char*>(out), std::streamsize(count))) {
            return fail("{}: read of {} at offset {} failed", path.string(), what, offset);
        }
        offset += count;
        return {};
    };

    int32_t maxTokenLength = 0;
    if (Result<void> r = readBytes(&maxTokenLength, sizeof(maxTokenLength), "max_token_length"); !r) {
        return std::unexpected(r.error());
    }
    if (maxTokenLength <= 0) return fail("{}: max_token_length = {} must be positive", path.string(), maxTokenLength);

    ImportedVocab vocab;
    vocab.tokens.reserve(size_t(vocabSize));
    vocab.scores.reserve(size_t(vocabSize));
    vocab.types.reserve(size_t(vocabSize));
    for (int32_t id = 0; id < vocabSize; ++id) {
        const std::string what = fmt::format("token {} of {}", id, vocabSize);
        float score = 0.0f;
        int32_t length = 0;
        if (Result<void> r = readBytes(&score, sizeof(score), what + " score"); !r) return std::unexpected(r.error());
        if (Result<void> r = readBytes(&length, sizeof(length), what + " length"); !r) {
            return std::unexpected(r.error());
        }
        if (length < 0 || uint64_t(length) > *size - offset) {
            return fail("{}: {} at offset {} has length {}, but {} bytes are left", path.string(), what, offset, length,
                        *size - offset);
        }
        std::string piece(size_t(length), '\0');
        if (Result<void> r = readBytes(piece.data(), uint64_t(length), what + " text"); !r) {
            return std::unexpected(r.error());
        }
        // llama2.c spells the specials "<unk>", "\n<s>\n" and "\n</s>\n"; GGUF wants the plain names.
        if (id == kUnknownId) {
            vocab.tokens.push_back("<unk>");
            vocab.types.push_back(int32_t(TokenType::Unknown));
        } else if (id == kBosId || id == kEosId) {
            vocab.tokens.push_back(id == kBosId ? "<s>" : "</s>");
            vocab.types.push_back(int32_t(TokenType::Control));
        } else if (isBytePiece(piece)) {
            vocab.tokens.push_back(piece);
            vocab.types.push_back(int32_t(TokenType::Byte));
        } else {
            vocab.tokens.push_back(toSentencePiece(piece));
            vocab.types.push_back(int32_t(TokenType::Normal));
        }
        vocab.scores.push_back(score);
    }
    return vocab;
}

// Reads tensor bytes for GgufWriter's fill callbacks, which cannot return
// errors: the first failure is kept and reported once writing ends.
class CheckpointReader {
public:
    explicit CheckpointReader(const std::filesystem::path& path) : m_path(path), m_stream(path, std::ios::binary) {}

    bool isOpen() const { return m_stream.is_open(); }
    const std::optional<Error>& error() const { return m_error; }

    void read(uint64_t offset, std::span<uint8_t> out) {
        if (m_error) return;
        m_stream.seekg(std::streamoff(offset));
        if (!m_stream.read(reinterpret_cast<char*>(out.data()), std::streamsize(out.size()))) {
            m_error = Error{fmt::format("{}: read of {} bytes at offset {} failed (file changed during the import?)",
                                        m_path.string(), out.size(), offset)};
        }
    }

private:
    std::filesystem::path m_path;
    std::ifstream m_stream;
    std::optional<Error> m_error;
};

void setMetadata(gguf::GgufWriter& writer, const std::filesystem::path& checkpoint, const CheckpointHeader& h,
                 const ImportedVocab& vocab) {
    writer.set("general.architecture", "llama");
    writer.set("general.name", checkpoint.stem().string());
    writer.set("llama.context_length", uint32_t(h.seqLen));
    writer.set("llama.embedding_length", uint32_t(h.dim));
    writer.set("llama.block_count", uint32_t(h.layerCount));
    writer.set("llama.feed_forward_length", uint32_t(h.hiddenDim));
    writer.set("llama.attention.head_count", uint32_t(h.headCount));
    writer.set("llama.attention.head_count_kv", uint32_t(h.kvHeadCount));
    writer.set("llama.rope.dimension_count", uint32_t(h.headSize()));
    writer.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    writer.set("llama.rope.freq_base", 10000.0f);
    writer.set("tokenizer.ggml.model", "llama");
    writer.set("tokenizer.ggml.tokens", gguf::makeArray(vocab.tokens));
    writer.set("tokenizer.ggml.scores", gguf::makeArray(vocab.scores));
    writer.set("tokenizer.ggml.token_type", gguf::makeArray(vocab.types));
    writer.set("tokenizer.ggml.bos_token_id", uint32_t(kBosId));
    writer.set("tokenizer.ggml.eos_token_id", uint32_t(kEosId));
    writer.set("tokenizer.ggml.unknown_token_id", uint32_t(kUnknownId));
    writer.set("tokenizer.ggml.add_bos_token", true);
    writer.set("tokenizer.ggml.add_space_prefix", true);
}

void addTensors(gguf::GgufWriter& writer, const CheckpointHeader& h, const CheckpointLayout& layout,
                const std::shared_ptr<CheckpointReader>& reader) {
    auto add = [&](std::string name, std::vector<uint64_t> dims, uint64_t offset) {
        writer.addTensor(std::move(name), std::move(dims), DType::F32,
                         [reader, offset](std::span<uint8_t> out) { reader->read(offset, out); });
    };
    const uint64_t dim = uint64_t(h.dim);
    const uint64_t hidden = uint64_t(h.hiddenDim);
    const uint64_t kvDim = uint64_t(h.kvDim());
    const uint64_t vocab = uint64_t(h.vocabSize);

    // GGUF dims list ne0 first, so llama2.c's row-major [rows][cols] is [cols, rows].
    add("token_embd.weight", {dim, vocab}, layout.tokenEmbedding.offset);
    add("output_norm.weight", {dim}, layout.outputNorm.offset);
    if (!h.sharedClassifier) add("output.weight", {dim, vocab}, layout.classifier.offset);
    for (uint64_t i = 0; i < uint64_t(h.layerCount); ++i) {
        const std::string p = fmt::format("blk.{}.", i);
        add(p + "attn_norm.weight", {dim}, layout.attnNorm.sliceOffset(i));
        add(p + "attn_q.weight", {dim, dim}, layout.wq.sliceOffset(i));
        add(p + "attn_k.weight", {dim, kvDim}, layout.wk.sliceOffset(i));
        add(p + "attn_v.weight", {dim, kvDim}, layout.wv.sliceOffset(i));
        add(p + "attn_output.weight", {dim, dim}, layout.wo.sliceOffset(i));
        add(p + "ffn_norm.weight", {dim}, layout.ffnNorm.sliceOffset(i));
        add(p + "ffn_gate.weight", {dim, hidden}, layout.w1.sliceOffset(i));
        add(p + "ffn_up.weight", {dim, hidden}, layout.w3.sliceOffset(i));
        add(p + "ffn_down.weight", {hidden, dim}, layout.w2.sliceOffset(i));
    }
}

}  // namespace

Result<void> importLlama2c(const std::filesystem::path& checkpoint, const std::filesystem::path& tokenizer,
                           const std::filesystem::path& out) {
    Result<uint64_t> size = fileSize(checkpoint);
    if (!size) return std::unexpected(size.error());
    Result<CheckpointHeader> header = readHeader(checkpoint, *size);
    if (!header) return std::unexpected(header.error());
    Result<CheckpointLayout> layout = computeLayout(checkpoint, *header, *size);
    if (!layout) return std::unexpected(layout.error());
    Result<ImportedVocab> vocab = readTokenizer(tokenizer, header->vocabSize);
    if (!vocab) return std::unexpected(vocab.error());

    auto reader = std::make_shared<CheckpointReader>(checkpoint);
    if (!reader->isOpen()) return fail("{}: cannot open", checkpoint.string());
    gguf::GgufWriter writer;
    setMetadata(writer, checkpoint, *header, *vocab);
    addTensors(writer, *header, *layout, reader);
    if (Result<void> written = writer.writeFile(out); !written) return written;
    if (reader->error()) {
        std::error_code ignored;
        std::filesystem::remove(out, ignored);
        return std::unexpected(*reader->error());
    }
    return {};
}

}  // namespace pagoda

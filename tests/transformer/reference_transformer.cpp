#include "tests/transformer/reference_transformer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace pagoda::reference {
namespace {

// Bounds every hyperparameter so that products of two or three of them
// cannot overflow before they are checked against the tensors' real shapes.
constexpr int64_t kMaxDimension = int64_t(1) << 24;

uint16_t readU16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

uint32_t readU32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// IEEE binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
double halfToDouble(uint16_t h) {
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    if (exponent == 0) return sign * std::ldexp(double(mantissa), -24);
    if (exponent == 0x1f) {
        return mantissa == 0 ? sign * std::numeric_limits<double>::infinity()
                             : std::numeric_limits<double>::quiet_NaN();
    }
    return sign * std::ldexp(double(mantissa + 0x400), exponent - 25);
}

// bfloat16 is the upper half of an IEEE binary32.
double bf16ToDouble(uint16_t b) { return double(std::bit_cast<float>(uint32_t(b) << 16)); }

// Elements and bytes per block of each supported type (ggml's block_* structs).
struct BlockShape {
    uint64_t elements;
    uint64_t bytes;
};

std::optional<BlockShape> blockShape(DType type) {
    switch (type) {
        case DType::F32: return BlockShape{1, 4};
        case DType::F16:
        case DType::BF16: return BlockShape{1, 2};
        case DType::Q8_0: return BlockShape{32, 2 + 32};
        case DType::Q4_0: return BlockShape{32, 2 + 16};
        case DType::Q4_1: return BlockShape{32, 2 + 2 + 16};
        case DType::Q5_0: return BlockShape{32, 2 + 4 + 16};
        case DType::Q5_1: return BlockShape{32, 2 + 2 + 4 + 16};
        case DType::Q2_K: return BlockShape{256, 16 + 64 + 2 + 2};
        case DType::Q3_K: return BlockShape{256, 32 + 64 + 12 + 2};
        case DType::Q4_K: return BlockShape{256, 2 + 2 + 12 + 128};
        case DType::Q5_K: return BlockShape{256, 2 + 2 + 12 + 32 + 128};
        case DType::Q6_K: return BlockShape{256, 128 + 64 + 16 + 2};
        default: return std::nullopt;
    }
}

// The 4-bit integer of element j of a 32-element Q4_0/Q4_1/Q5_0/Q5_1 block:
// elements 0-15 are the low nibbles of qs[0..15], 16-31 the high nibbles.
int lowBits32(const uint8_t* qs, uint64_t j) { return j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4; }

// Q5_0/Q5_1: bit j of the little-endian u32 qh is bit 4 of element j.
int fifthBit32(const uint8_t* qh, uint64_t j) { return int(readU32(qh) >> j & 1) << 4; }

// Q4_K/Q5_K: sub-block s (of 8, 32 elements each) has a 6-bit scale and a
// 6-bit min packed into 12 bytes: sub-blocks 0-3 keep theirs in the low 6
// bits of bytes s (scale) and s + 4 (min); sub-blocks 4-7 keep their low 4
// bits in the nibbles of byte s + 4 (scale low, min high) and their top 2
// bits in the top 2 bits of bytes s - 4 (scale) and s (min).
std::pair<int, int> kScaleAndMin(const uint8_t* packed, int s) {
    if (s < 4) return {packed[s] & 63, packed[s + 4] & 63};
    return {(packed[s + 4] & 0x0f) | (packed[s - 4] >> 6) << 4, (packed[s + 4] >> 4) | (packed[s] >> 6) << 4};
}

// Q4_K (qh == nullptr) / Q5_K super-block: element 64c + i, i < 32, is the
// low nibble of qs[32c + i]; element 64c + 32 + i its high nibble. Q5_K
// adds bit 2c (first half) or 2c + 1 (second half) of qh[i] as bit 4.
// value = d * scale_s * q - dmin * min_s for sub-block s = element / 32.
void dequantizeK(const uint8_t* block, bool fiveBits, double* out) {
    const double d = halfToDouble(readU16(block));
    const double dmin = halfToDouble(readU16(block + 2));
    const uint8_t* packed = block + 4;
    const uint8_t* qh = block + 16;
    const uint8_t* qs = block + (fiveBits ? 48 : 16);
    for (int c = 0; c < 4; ++c) {
        for (int half = 0; half < 2; ++half) {
            const int s = 2 * c + half;
            const auto [scale, min] = kScaleAndMin(packed, s);
            for (int i = 0; i < 32; ++i) {
                int q = half == 0 ? qs[32 * c + i] & 0x0f : qs[32 * c + i] >> 4;
                if (fiveBits) q |= (qh[i] >> s & 1) << 4;
                out[32 * s + i] = d * scale * q - dmin * min;
            }
        }
    }
}

// Q6_K super-block: ql[128], qh[64], int8 scales[16], fp16 d. Each half
// (128 elements) reads 64 bytes of ql and 32 of qh; for i < 32 the four
// elements i, i + 32, i + 64, i + 96 take as low 4 bits the low nibble of
// ql[i], of ql[i + 32], the high nibble of ql[i], of ql[i + 32], and as
// bits 4-5 the bit pairs 0-1, 2-3, 4-5, 6-7 of qh[i].
// value = d * scales[element / 16] * (q - 32).
void dequantizeQ6K(const uint8_t* block, double* out) {
    const double d = halfToDouble(readU16(block + 208));
    for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = block + 64 * half;
        const uint8_t* qh = block + 128 + 32 * half;
        for (int i = 0; i < 32; ++i) {
            const int q[4] = {(ql[i] & 0x0f) | (qh[i] & 3) << 4, (ql[i + 32] & 0x0f) | (qh[i] >> 2 & 3) << 4,
                              (ql[i] >> 4) | (qh[i] >> 4 & 3) << 4, (ql[i + 32] >> 4) | (qh[i] >> 6 & 3) << 4};
            for (int k = 0; k < 4; ++k) {
                const int e = 128 * half + 32 * k + i;
                out[e] = d * double(int8_t(block[192 + e / 16])) * (q[k] - 32);
            }
        }
    }
}

// Q2_K / Q3_K: bits 0-1 of the integers. Each half (128 elements) reads 32
// bytes of qs; for i < 32 the elements i, i + 32, i + 64, i + 96 take bit
// pairs 0-1, 2-3, 4-5, 6-7 of qs[i].
int twoBits(const uint8_t* qs, int e) { return qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3; }

// Q2_K super-block: scales[16], qs[64], fp16 d, fp16 dmin. Byte s of
// scales holds sub-block s's (16 elements) 4-bit scale in its low nibble
// and 4-bit min in its high nibble.
// value = d * scale_s * q - dmin * min_s for sub-block s = element / 16.
void dequantizeQ2K(const uint8_t* block, double* out) {
    const double d = halfToDouble(readU16(block + 80));
    const double dmin = halfToDouble(readU16(block + 82));
    for (int e = 0; e < 256; ++e) {
        const int packed = block[e / 16];
        out[e] = d * (packed & 0x0f) * twoBits(block + 16, e) - dmin * (packed >> 4);
    }
}

// Q3_K super-block: hmask[32], qs[64], scales[12], fp16 d. Bit 2 of
// element e's integer is bit e / 32 of hmask[e % 32]. Sub-block s (16
// elements) has a 6-bit scale: its low 4 bits are the low nibble of byte s
// (s < 8) or the high nibble of byte s - 8, its top 2 bits are bits
// 2 (s / 4), 2 (s / 4) + 1 of byte 8 + s % 4.
// value = d * (scale_s - 32) * (q - 4).
void dequantizeQ3K(const uint8_t* block, double* out) {
    const uint8_t* packed = block + 96;
    const double d = halfToDouble(readU16(block + 108));
    for (int e = 0; e < 256; ++e) {
        const int s = e / 16;
        const int low = s < 8 ? packed[s] & 0x0f : packed[s - 8] >> 4;
        const int scale = low | (packed[8 + s % 4] >> (2 * (s / 4)) & 3) << 4;
        const int q = twoBits(block + 32, e) | (block[e % 32] >> (e / 32) & 1) << 2;
        out[e] = d * (scale - 32) * (q - 4);
    }
}

Result<int64_t> readDimension(const gguf::GgufFile& file, const std::string& key,
                              std::optional<int64_t> fallback) {
    int64_t value = 0;
    if (fallback && file.find(key) == nullptr) {
        value = *fallback;
    } else {
        Result<int64_t> stored = file.getInt(key);
        if (!stored) return std::unexpected(stored.error());
        value = *stored;
    }
    if (value < 1 || value > kMaxDimension) {
        return fail("{} = {} is outside [1, {}]", key, value, kMaxDimension);
    }
    return value;
}

Result<double> readFloat(const gguf::GgufFile& file, const std::string& key, std::optional<double> fallback) {
    if (fallback && file.find(key) == nullptr) return *fallback;
    return file.getFloat(key);
}

Result<std::vector<double>> loadTensor(const gguf::GgufFile& file, const std::string& name,
                                       const std::vector<uint64_t>& dims) {
    const gguf::TensorInfo* tensor = file.findTensor(name);
    if (tensor == nullptr) return fail("missing tensor {}", name);
    if (tensor->dims != dims) {
        return fail("tensor {}: dims [{}], expected [{}]", name, fmt::join(tensor->dims, ", "), fmt::join(dims, ", "));
    }
    uint64_t elementCount = 1;
    for (uint64_t d : dims) elementCount *= d;
    Result<std::vector<double>> values = dequantize(tensor->type, file.tensorData(*tensor), elementCount);
    if (!values) return std::unexpected(withContext(fmt::format("tensor {}", name), values.error()));
    return values;
}

// w: [outCount][x.size()]
std::vector<double> matVec(const std::vector<double>& w, const std::vector<double>& x, size_t outCount) {
    std::vector<double> y(outCount, 0.0);
    for (size_t o = 0; o < outCount; ++o) {
        double sum = 0.0;
        for (size_t i = 0; i < x.size(); ++i) sum += w[o * x.size() + i] * x[i];
        y[o] = sum;
    }
    return y;
}

std::vector<double> rmsNorm(const std::vector<double>& x, const std::vector<double>& weight, double eps) {
    double sumSquares = 0.0;
    for (double v : x) sumSquares += v * v;
    const double scale = 1.0 / std::sqrt(sumSquares / double(x.size()) + eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * weight[i];
    return y;
}

double silu(double x) { return x / (1.0 + std::exp(-x)); }
// gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
double geluTanh(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

void addInPlace(std::vector<double>& x, const std::vector<double>& delta) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
}

}  // namespace

Result<std::vector<double>> dequantize(DType type, std::span<const uint8_t> bytes, uint64_t elementCount) {
    const std::optional<BlockShape> shape = blockShape(type);
    if (!shape) return fail("unsupported dtype {}", dtypeName(type));
    if (elementCount % shape->elements != 0) {
        return fail("{} elements of {} are not a whole number of {}-element blocks", elementCount, dtypeName(type),
                    shape->elements);
    }
    // Every supported type takes at least a quarter of a byte per element
    // (Q2_K: 84 bytes per 256): rejects counts whose byte size would
    // overflow before computing it.
    if (elementCount > uint64_t(bytes.size()) * 4) {
        return fail("{} elements need more than the {} bytes given", elementCount, bytes.size());
    }
    const uint64_t needed = elementCount / shape->elements * shape->bytes;
    if (needed != bytes.size()) {
        return fail("{} elements of {} take {} bytes, got {}", elementCount, dtypeName(type), needed, bytes.size());
    }

    std::vector<double> values(elementCount);
    for (uint64_t b = 0; b < elementCount / shape->elements; ++b) {
        const uint8_t* block = bytes.data() + b * shape->bytes;
        double* out = values.data() + b * shape->elements;
        switch (type) {
            case DType::F32: *out = double(std::bit_cast<float>(readU32(block))); break;
            case DType::F16: *out = halfToDouble(readU16(block)); break;
            case DType::BF16: *out = bf16ToDouble(readU16(block)); break;
            case DType::Q8_0:
                // fp16 scale d, then 32 int8 q; value = d * q.
                for (uint64_t j = 0; j < 32; ++j) out[j] = halfToDouble(readU16(block)) * double(int8_t(block[2 + j]));
                break;
            case DType::Q4_0:
                // fp16 d, qs[16]; value = d * (q - 8).
                for (uint64_t j = 0; j < 32; ++j) out[j] = halfToDouble(readU16(block)) * (lowBits32(block + 2, j) - 8);
                break;
            case DType::Q4_1:
                // fp16 d, fp16 m, qs[16]; value = d * q + m.
                for (uint64_t j = 0; j < 32; ++j) {
                    out[j] = halfToDouble(readU16(block)) * lowBits32(block + 4, j) + halfToDouble(readU16(block + 2));
                }
                break;
            case DType::Q5_0:
                // fp16 d, qh[4], qs[16]; value = d * (q - 16).
                for (uint64_t j = 0; j < 32; ++j) {
                    out[j] = halfToDouble(readU16(block)) * ((lowBits32(block + 6, j) | fifthBit32(block + 2, j)) - 16);
                }
                break;
            case DType::Q5_1:
                // fp16 d, fp16 m, qh[4], qs[16]; value = d * q + m.
                for (uint64_t j = 0; j < 32; ++j) {
                    out[j] = halfToDouble(readU16(block)) * (lowBits32(block + 8, j) | fifthBit32(block + 4, j)) +
                             halfToDouble(readU16(block + 2));
                }
                break;
            case DType::Q2_K: dequantizeQ2K(block, out); break;
            case DType::Q3_K: dequantizeQ3K(block, out); break;
            case DType::Q4_K: dequantizeK(block, false, out); break;
            case DType::Q5_K: dequantizeK(block, true, out); break;
            case DType::Q6_K: dequantizeQ6K(block, out); break;
            default: break;
        }
    }
    return values;
}

namespace {

// Pair i's angle at `position`: base^(-2i / ropeDim) per position, divided
// by the pair's factor, then by the scaling factor as `scaling` says.
double ropeAngle(int i, int64_t position, int ropeDim, double base, std::span<const double> factors,
                 const ReferenceRopeScaling& scaling) {
    double angle = double(position) * std::pow(base, -2.0 * double(i) / double(ropeDim));
    if (!factors.empty()) angle /= factors[size_t(i)];
    double divided = 1.0;  // the share of the angle that is divided
    if (!scaling.yarn) {
        divided = 1.0;
    } else if (i <= scaling.low) {
        divided = 0.0;
    } else if (i < scaling.high) {
        divided = (double(i) - scaling.low) / (scaling.high - scaling.low);
    }
    return angle * (1.0 - divided) + angle / scaling.factor * divided;
}

void rotate(std::span<double> head, size_t i0, size_t i1, double angle, double magnitude) {
    const double x0 = head[i0];
    const double x1 = head[i1];
    head[i0] = magnitude * (x0 * std::cos(angle) - x1 * std::sin(angle));
    head[i1] = magnitude * (x0 * std::sin(angle) + x1 * std::cos(angle));
}

}  // namespace

void applyRope(std::span<double> head, int64_t position, int ropeDim, double base, std::span<const double> factors,
               const ReferenceRopeScaling& scaling) {
    for (int i = 0; i < ropeDim / 2; ++i) {
        rotate(head, size_t(2 * i), size_t(2 * i + 1), ropeAngle(i, position, ropeDim, base, factors, scaling),
               scaling.magnitude);
    }
}

void applyNeoxRope(std::span<double> head, int64_t position, int ropeDim, double base,
                   std::span<const double> factors, const ReferenceRopeScaling& scaling) {
    const int half = ropeDim / 2;
    for (int i = 0; i < half; ++i) {
        rotate(head, size_t(i), size_t(i + half), ropeAngle(i, position, ropeDim, base, factors, scaling),
               scaling.magnitude);
    }
}

Result<ReferenceTransformer> ReferenceTransformer::load(const gguf::GgufFile& file, int64_t context) {
    Result<std::string> architecture = file.getString("general.architecture");
    if (!architecture) return std::unexpected(architecture.error());
    if (*architecture != "llama" && *architecture != "qwen2" && *architecture != "qwen3" && *architecture != "phi3" &&
        *architecture != "gemma2" && *architecture != "gemma3") {
        return fail("unsupported architecture \"{}\" (the reference implements llama, qwen2, qwen3, phi3, gemma2 and "
                    "gemma3)",
                    *architecture);
    }

    ReferenceModel model;
    ReferenceConfig& c = model.config;
    c.neoxRope = *architecture != "llama";  // qwen2, qwen3, phi3
    c.qkvBias = *architecture == "qwen2";
    c.qkNorm = *architecture == "qwen3" || *architecture == "gemma3";
    const bool gemma3 = *architecture == "gemma3";
    c.gemma = gemma3 || *architecture == "gemma2";
    const std::string a = *architecture + ".";
    Result<int64_t> dim = readDimension(file, a + "embedding_length", std::nullopt);
    if (!dim) return std::unexpected(dim.error());
    Result<int64_t> layerCount = readDimension(file, a + "block_count", std::nullopt);
    if (!layerCount) return std::unexpected(layerCount.error());
    Result<int64_t> ffnDim = readDimension(file, a + "feed_forward_length", std::nullopt);
    if (!ffnDim) return std::unexpected(ffnDim.error());
    Result<int64_t> headCount = readDimension(file, a + "attention.head_count", std::nullopt);
    if (!headCount) return std::unexpected(headCount.error());
    Result<int64_t> kvHeadCount = readDimension(file, a + "attention.head_count_kv", *headCount);
    if (!kvHeadCount) return std::unexpected(kvHeadCount.error());
    Result<int64_t> headDim = readDimension(file, a + "attention.key_length", *dim / *headCount);
    if (!headDim) return std::unexpected(headDim.error());
    Result<int64_t> ropeDim = readDimension(file, a + "rope.dimension_count", *headDim);
    if (!ropeDim) return std::unexpected(ropeDim.error());
    Result<double> rmsEps = readFloat(file, a + "attention.layer_norm_rms_epsilon", std::nullopt);
    if (!rmsEps) return std::unexpected(rmsEps.error());
    Result<double> ropeBase = readFloat(file, a + "rope.freq_base", 10000.0);
    if (!ropeBase) return std::unexpected(ropeBase.error());

    if (*headCount % *kvHeadCount != 0) {
        return fail("{}attention.head_count = {} is not a multiple of head_count_kv = {}", a, *headCount,
                    *kvHeadCount);
    }
    if (*ropeDim % 2 != 0 || *ropeDim > *headDim) {
        return fail("{}rope.dimension_count = {} must be even and at most the head size {}", a, *ropeDim, *headDim);
    }
    if (const gguf::Value* valueLength = file.find(a + "attention.value_length")) {
        if (valueLength->asInt() != *headDim) {
            return fail("{}attention.value_length differs from the key length {}: unsupported", a, *headDim);
        }
    }
    if (!(*rmsEps >= 0.0) || !(*ropeBase > 0.0)) {
        return fail("rms epsilon {} must be >= 0 and rope base {} > 0", *rmsEps, *ropeBase);
    }
    const char* longRopeFactors = nullptr;
    if (file.findTensor("rope_factors_short.weight") != nullptr) {
        // Phi-3's LongRoPE (HF's Phi3LongRoPEScaledRotaryEmbedding): the
        // short factors divide the angles within the original context, the
        // long ones beyond it (loaded below), and cos and sin are scaled by
        // the file's attn factor either way.
        Result<int64_t> fileContext = readDimension(file, a + "context_length", std::nullopt);
        if (!fileContext) return std::unexpected(fileContext.error());
        Result<int64_t> original = readDimension(file, a + "rope.scaling.original_context_length", std::nullopt);
        if (!original) return std::unexpected(original.error());
        const int64_t runs = context > 0 ? std::min(context, *fileContext) : *fileContext;
        longRopeFactors = runs > *original ? "rope_factors_long.weight" : "rope_factors_short.weight";
        Result<double> attnFactor = readFloat(file, a + "rope.scaling.attn_factor", 1.0);
        if (!attnFactor) return std::unexpected(attnFactor.error());
        c.ropeScaling.magnitude = *attnFactor;
    } else if (const gguf::Value* type = file.find(a + "rope.scaling.type")) {
        const std::string name = type->asString() != nullptr ? *type->asString() : std::string("(not a string)");
        if (name != "none" && name != "linear" && name != "yarn") {
            return fail("{}rope.scaling.type \"{}\": the reference implements none, linear and yarn", a, name);
        }
        if (name != "none") {
            Result<double> factor = readFloat(file, a + "rope.scaling.factor", std::nullopt);
            if (!factor) return std::unexpected(factor.error());
            c.ropeScaling.factor = *factor;
        }
        if (name == "yarn") {
            // The pairs whose wavelength 2 pi base^(2i / ropeDim) fits 32
            // times (low, rounded down) and once (high, rounded up) in the
            // original context; the magnitude 1 + 0.1 ln factor.
            Result<int64_t> original =
                readDimension(file, a + "rope.scaling.original_context_length", std::nullopt);
            if (!original) return std::unexpected(original.error());
            auto pairFittingTimes = [&](double times) {
                return double(*ropeDim) * std::log(double(*original) / (2.0 * std::numbers::pi * times)) /
                       (2.0 * std::log(*ropeBase));
            };
            c.ropeScaling.yarn = true;
            c.ropeScaling.low = std::max(0.0, std::floor(pairFittingTimes(32.0)));
            c.ropeScaling.high = std::min(double(*ropeDim - 1), std::ceil(pairFittingTimes(1.0)));
            c.ropeScaling.magnitude = 1.0 + 0.1 * std::log(c.ropeScaling.factor);
        }
    }
    c.dim = int(*dim);
    c.layerCount = int(*layerCount);
    c.ffnDim = int(*ffnDim);
    c.headCount = int(*headCount);
    c.kvHeadCount = int(*kvHeadCount);
    c.headDim = int(*headDim);
    c.ropeDim = int(*ropeDim);
    c.rmsEps = *rmsEps;
    if (c.gemma) {
        Result<int64_t> window = readDimension(file, a + "attention.sliding_window", std::nullopt);
        if (!window) return std::unexpected(window.error());
        c.slidingWindow = int(*window);
        // Gemma 3: every 6th layer global, the local ones at base 10000;
        // Gemma 2: alternating, one base. query_pre_attn_scalar: the head
        // dim, but dim / heads for the 27Bs (62 and 46 layers), as llama.cpp
        // reads their configs.
        c.globalEvery = gemma3 ? 6 : 2;
        c.localRopeBase = gemma3 ? 10000.0 : c.ropeBase;
        c.queryScaleDim = c.layerCount == (gemma3 ? 62 : 46) ? c.dim / c.headCount : c.headDim;
        if (!gemma3) {
            Result<double> attnCap = readFloat(file, a + "attn_logit_softcapping", 50.0);
            if (!attnCap) return std::unexpected(attnCap.error());
            Result<double> finalCap = readFloat(file, a + "final_logit_softcapping", 30.0);
            if (!finalCap) return std::unexpected(finalCap.error());
            c.attnSoftcap = *attnCap;
            c.finalSoftcap = *finalCap;
        }
    }
    c.ropeBase = *ropeBase;

    const gguf::TensorInfo* embedding = file.findTensor("token_embd.weight");
    if (embedding == nullptr) return fail("missing tensor token_embd.weight");
    if (embedding->dims.size() != 2 || embedding->dims[0] != uint64_t(c.dim) || embedding->dims[1] < 1 ||
        embedding->dims[1] > uint64_t(kMaxDimension)) {
        return fail("tensor token_embd.weight: dims [{}], expected [{}, vocab <= {}]",
                    fmt::join(embedding->dims, ", "), c.dim, kMaxDimension);
    }
    c.vocabSize = int(embedding->dims[1]);

    const uint64_t d = uint64_t(c.dim);
    const uint64_t qDim = uint64_t(c.headCount) * uint64_t(c.headDim);
    const uint64_t kvDim = uint64_t(c.kvHeadCount) * uint64_t(c.headDim);
    const uint64_t ffn = uint64_t(c.ffnDim);
    const uint64_t vocab = uint64_t(c.vocabSize);

    // Loads one tensor into `target`, or leaves the first error in `error`.
    std::optional<Error> error;
    auto load = [&](std::vector<double>& target, const std::string& name, std::vector<uint64_t> dims) {
        if (error) return;
        Result<std::vector<double>> values = loadTensor(file, name, dims);
        if (values) {
            target = std::move(*values);
        } else {
            error = values.error();
        }
    };
    load(model.tokenEmbedding, "token_embd.weight", {d, vocab});
    load(model.outputNorm, "output_norm.weight", {d});
    if (longRopeFactors != nullptr) {
        load(model.ropeFreqs, longRopeFactors, {uint64_t(c.ropeDim / 2)});
    } else if (file.findTensor("rope_freqs.weight") != nullptr) {
        load(model.ropeFreqs, "rope_freqs.weight", {uint64_t(c.ropeDim / 2)});
    }
    if (file.findTensor("output.weight") != nullptr) {
        load(model.output, "output.weight", {d, vocab});
    } else {
        model.output = model.tokenEmbedding;
    }
    model.layers.resize(size_t(c.layerCount));
    for (int i = 0; i < c.layerCount && !error; ++i) {
        ReferenceLayer& layer = model.layers[size_t(i)];
        const std::string prefix = fmt::format("blk.{}.", i);
        load(layer.attnNorm, prefix + "attn_norm.weight", {d});
        if (*architecture == "phi3") {
            // Phi-3's qkv_proj: the output rows of Q, then K, then V (HF's
            // Phi3Attention slices them in that order).
            std::vector<double> qkv;
            load(qkv, prefix + "attn_qkv.weight", {d, qDim + 2 * kvDim});
            if (error) break;
            const auto rows = [&](uint64_t first, uint64_t count) {
                return std::vector<double>(qkv.begin() + ptrdiff_t(first * d),
                                           qkv.begin() + ptrdiff_t((first + count) * d));
            };
            layer.wq = rows(0, qDim);
            layer.wk = rows(qDim, kvDim);
            layer.wv = rows(qDim + kvDim, kvDim);
        } else {
            load(layer.wq, prefix + "attn_q.weight", {d, qDim});
            load(layer.wk, prefix + "attn_k.weight", {d, kvDim});
            load(layer.wv, prefix + "attn_v.weight", {d, kvDim});
        }
        if (c.qkvBias) {
            load(layer.bq, prefix + "attn_q.bias", {qDim});
            load(layer.bk, prefix + "attn_k.bias", {kvDim});
            load(layer.bv, prefix + "attn_v.bias", {kvDim});
        }
        if (c.qkNorm) {
            load(layer.qNorm, prefix + "attn_q_norm.weight", {uint64_t(c.headDim)});
            load(layer.kNorm, prefix + "attn_k_norm.weight", {uint64_t(c.headDim)});
        }
        load(layer.wo, prefix + "attn_output.weight", {qDim, d});
        load(layer.ffnNorm, prefix + "ffn_norm.weight", {d});
        if (c.gemma) {
            load(layer.postAttnNorm, prefix + "post_attention_norm.weight", {d});
            load(layer.postFfnNorm, prefix + "post_ffw_norm.weight", {d});
        }
        if (*architecture == "phi3") {
            // Phi-3's gate_up_proj: HF's Phi3MLP chunks its output in two, the gate first.
            std::vector<double> gateUp;
            load(gateUp, prefix + "ffn_up.weight", {d, 2 * ffn});
            if (error) break;
            layer.ffnGate.assign(gateUp.begin(), gateUp.begin() + ptrdiff_t(ffn * d));
            layer.ffnUp.assign(gateUp.begin() + ptrdiff_t(ffn * d), gateUp.end());
        } else {
            load(layer.ffnGate, prefix + "ffn_gate.weight", {d, ffn});
            load(layer.ffnUp, prefix + "ffn_up.weight", {d, ffn});
        }
        load(layer.ffnDown, prefix + "ffn_down.weight", {ffn, d});
    }
    if (error) return std::unexpected(*error);
    return ReferenceTransformer(std::move(model));
}

ReferenceTransformer::ReferenceTransformer(ReferenceModel model) : m_model(std::move(model)) {}

std::vector<std::vector<double>> ReferenceTransformer::forward(const std::vector<int32_t>& tokens) const {
    const ReferenceConfig& c = m_model.config;
    const size_t dim = size_t(c.dim);
    const size_t headDim = size_t(c.headDim);
    const size_t qDim = size_t(c.headCount) * headDim;
    const size_t kvDim = size_t(c.kvHeadCount) * headDim;
    const int groupSize = c.headCount / c.kvHeadCount;  // query heads per kv head
    const double scale = 1.0 / std::sqrt(double(c.gemma ? c.queryScaleDim : c.headDim));
    const auto cap = [](double x, double limit) { return limit > 0 ? limit * std::tanh(x / limit) : x; };
    const size_t positionCount = tokens.size();

    std::vector<std::vector<double>> x(positionCount);  // [positions][dim] residual stream
    for (size_t t = 0; t < positionCount; ++t) {
        const int32_t token = tokens[t];
        if (token < 0 || token >= c.vocabSize) {
            throw std::out_of_range(
                fmt::format("token {} at position {} is outside the vocabulary [0, {})", token, t, c.vocabSize));
        }
        const auto row = m_model.tokenEmbedding.begin() + ptrdiff_t(size_t(token) * dim);
        x[t].assign(row, row + ptrdiff_t(dim));
        if (c.gemma) {
            for (double& e : x[t]) e *= std::sqrt(double(c.dim));
        }
    }

    for (size_t li = 0; li < m_model.layers.size(); ++li) {
        const ReferenceLayer& layer = m_model.layers[li];
        const bool local = c.gemma && (li + 1) % size_t(c.globalEvery) != 0;
        const double ropeBase = local ? c.localRopeBase : c.ropeBase;
        const ReferenceRopeScaling ropeScaling = local ? ReferenceRopeScaling{} : c.ropeScaling;
        std::vector<std::vector<double>> q(positionCount);  // [positions][headCount * headDim]
        std::vector<std::vector<double>> k(positionCount);  // [positions][kvHeadCount * headDim]
        std::vector<std::vector<double>> v(positionCount);  // [positions][kvHeadCount * headDim]
        for (size_t t = 0; t < positionCount; ++t) {
            const std::vector<double> n = rmsNorm(x[t], layer.attnNorm, c.rmsEps);
            q[t] = matVec(layer.wq, n, qDim);
            k[t] = matVec(layer.wk, n, kvDim);
            v[t] = matVec(layer.wv, n, kvDim);
            if (c.qkvBias) {
                addInPlace(q[t], layer.bq);
                addInPlace(k[t], layer.bk);
                addInPlace(v[t], layer.bv);
            }
            // Each head: its own RMSNorm (qwen3), then RoPE.
            auto position = [&](std::vector<double>& heads, int count, const std::vector<double>& norm) {
                for (int h = 0; h < count; ++h) {
                    const std::span head = std::span(heads).subspan(size_t(h) * headDim, headDim);
                    if (c.qkNorm) {
                        const std::vector<double> normed = rmsNorm({head.begin(), head.end()}, norm, c.rmsEps);
                        std::copy(normed.begin(), normed.end(), head.begin());
                    }
                    if (c.neoxRope) {
                        applyNeoxRope(head, int64_t(t), c.ropeDim, ropeBase, m_model.ropeFreqs, ropeScaling);
                    } else {
                        applyRope(head, int64_t(t), c.ropeDim, ropeBase, m_model.ropeFreqs, ropeScaling);
                    }
                }
            };
            position(q[t], c.headCount, layer.qNorm);
            position(k[t], c.kvHeadCount, layer.kNorm);
        }

        for (size_t t = 0; t < positionCount; ++t) {
            std::vector<double> attention(qDim, 0.0);  // [headCount * headDim]
            for (int h = 0; h < c.headCount; ++h) {
                const size_t qOffset = size_t(h) * headDim;
                const size_t kvOffset = size_t(h / groupSize) * headDim;
                // Causal: positions first..t; a local layer sees its last slidingWindow.
                const size_t first = local && t + 1 > size_t(c.slidingWindow) ? t + 1 - size_t(c.slidingWindow) : 0;
                std::vector<double> weights(t + 1 - first);
                for (size_t u = first; u <= t; ++u) {
                    double dot = 0.0;
                    for (size_t i = 0; i < headDim; ++i) dot += q[t][qOffset + i] * k[u][kvOffset + i];
                    weights[u - first] = cap(dot * scale, c.attnSoftcap);
                }
                const double maxScore = *std::max_element(weights.begin(), weights.end());
                double sum = 0.0;
                for (double& w : weights) {
                    w = std::exp(w - maxScore);
                    sum += w;
                }
                for (size_t u = first; u <= t; ++u) {
                    for (size_t i = 0; i < headDim; ++i) {
                        attention[qOffset + i] += weights[u - first] / sum * v[u][kvOffset + i];
                    }
                }
            }
            std::vector<double> out = matVec(layer.wo, attention, dim);
            if (c.gemma) out = rmsNorm(out, layer.postAttnNorm, c.rmsEps);
            addInPlace(x[t], out);
        }

        for (size_t t = 0; t < positionCount; ++t) {
            const std::vector<double> m = rmsNorm(x[t], layer.ffnNorm, c.rmsEps);
            const std::vector<double> gate = matVec(layer.ffnGate, m, size_t(c.ffnDim));
            std::vector<double> hidden = matVec(layer.ffnUp, m, size_t(c.ffnDim));
            for (size_t i = 0; i < hidden.size(); ++i) hidden[i] *= c.gemma ? geluTanh(gate[i]) : silu(gate[i]);
            std::vector<double> out = matVec(layer.ffnDown, hidden, dim);
            if (c.gemma) out = rmsNorm(out, layer.postFfnNorm, c.rmsEps);
            addInPlace(x[t], out);
        }
    }

    std::vector<std::vector<double>> logits(positionCount);  // [positions][vocabSize]
    for (size_t t = 0; t < positionCount; ++t) {
        logits[t] = matVec(m_model.output, rmsNorm(x[t], m_model.outputNorm, c.rmsEps), size_t(c.vocabSize));
        for (double& l : logits[t]) l = cap(l, c.finalSoftcap);
    }
    return logits;
}

}  // namespace pagoda::reference

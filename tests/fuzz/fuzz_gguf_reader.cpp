// libFuzzer target for the GGUF reader. Any input must give a GgufFile or an
// Error, never a crash; a file the reader accepts must have every view in
// bounds (ASan checks the reads below) and must survive a rewrite by
// GgufWriter unchanged.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"

namespace {

using namespace pagoda::gguf;

// Compares the bits, so that NaN payloads and -0.0 count as themselves.
bool sameValue(const Value& a, const Value& b) {
    if (a.type() != b.type()) return false;
    return std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            const T& y = std::get<T>(b.storage);
            if constexpr (std::is_same_v<T, Array>) {
                if (x.elementType != y.elementType || x.items.size() != y.items.size()) return false;
                for (size_t i = 0; i < x.items.size(); ++i) {
                    if (!sameValue(x.items[i], y.items[i])) return false;
                }
                return true;
            } else if constexpr (std::is_same_v<T, float>) {
                return std::bit_cast<uint32_t>(x) == std::bit_cast<uint32_t>(y);
            } else if constexpr (std::is_same_v<T, double>) {
                return std::bit_cast<uint64_t>(x) == std::bit_cast<uint64_t>(y);
            } else {
                return x == y;
            }
        },
        a.storage);
}

bool sameBytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Every byte of every tensor, read through the spans the reader handed out.
uint64_t touchTensorData(const GgufFile& file) {
    uint64_t sum = 0;
    for (const TensorInfo& tensor : file.tensors()) {
        std::span<const uint8_t> data = file.tensorData(tensor);
        if (data.size() != tensor.byteSize) std::abort();
        for (uint8_t byte : data) sum += byte;
    }
    return sum;
}

void checkRewrite(const GgufFile& file) {
    GgufWriter writer(file.version(), uint32_t(file.alignment()));
    for (const KeyValue& kv : file.metadata()) writer.set(kv.key, kv.value);
    for (const TensorInfo& t : file.tensors()) {
        std::span<const uint8_t> data = file.tensorData(t);
        writer.addTensor(t.name, t.dims, t.type, std::vector<uint8_t>(data.begin(), data.end()));
    }
    pagoda::Result<std::vector<uint8_t>> bytes = writer.writeToMemory();
    if (!bytes) std::abort();
    pagoda::Result<GgufFile> copy = GgufFile::parse(*bytes);
    if (!copy) std::abort();
    if (copy->metadata().size() != file.metadata().size() || copy->tensors().size() != file.tensors().size()) {
        std::abort();
    }
    for (size_t i = 0; i < file.metadata().size(); ++i) {
        const KeyValue& a = file.metadata()[i];
        const KeyValue& b = copy->metadata()[i];
        if (a.key != b.key || !sameValue(a.value, b.value)) std::abort();
    }
    for (size_t i = 0; i < file.tensors().size(); ++i) {
        const TensorInfo& a = file.tensors()[i];
        const TensorInfo& b = copy->tensors()[i];
        if (a.name != b.name || a.dims != b.dims || a.type != b.type || a.byteSize != b.byteSize) std::abort();
        if (!sameBytes(file.tensorData(a), copy->tensorData(b))) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    pagoda::Result<GgufFile> file = GgufFile::parse(std::span<const uint8_t>(data, size));
    if (!file) {
        if (file.error().message.empty()) std::abort();
        return 0;
    }
    touchTensorData(*file);
    checkRewrite(*file);
    return 0;
}

#include "engine/cache/kv_budget.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace pagoda {

Result<KvLayout> kvLayoutForBudget(KvLayout dims, uint64_t budgetBytes) {
    if (dims.nLayers < 1 || dims.nKvHeads < 1 || dims.headDim < 1) {
        return fail("KV dims with {} layers, {} KV heads, head dim {}: all must be positive", dims.nLayers,
                    dims.nKvHeads, dims.headDim);
    }
    if (dims.blockSize != 8 && dims.blockSize != 16 && dims.blockSize != 32) {
        return fail("KV block size {}: must be 8, 16 or 32", dims.blockSize);
    }
    PAGODA_RETURN_IF_ERROR(checkKvType(dims.type, dims.headDim));
    const uint64_t perBlock = dims.bytesPerBlock() + dims.localBytesPerBlock();  // every layer
    uint64_t blocks = budgetBytes / perBlock;
    if (dims.localLayers() > 0) {
        // The local pools as asked, the rest to the others; a budget too
        // small for that gives every layer the same blocks.
        if (blocks < uint64_t(dims.numLocalBlocks)) {
            dims.numLocalBlocks = int(blocks);
        } else {
            blocks = (budgetBytes - dims.localBytes()) / dims.bytesPerBlock();
        }
    }
    if (blocks == 0) {
        return fail("KV budget of {} bytes is too small for one block of {} bytes ({} tokens x {} layers x {} KV "
                    "heads x head dim {}, K and V, {})",
                    budgetBytes, perBlock, dims.blockSize, dims.nLayers, dims.nKvHeads, dims.headDim,
                    dtypeName(dims.type));
    }
    if (blocks > uint64_t(std::numeric_limits<int32_t>::max())) {
        return fail("KV budget of {} bytes is {} blocks, more than block ids can address ({})", budgetBytes, blocks,
                    std::numeric_limits<int32_t>::max());
    }
    dims.numBlocks = int(blocks);
    return dims;
}

AutoKvBudget autoKvBudget(const KvLayout& dims, int contextLength, uint64_t availableBytes) {
    const uint64_t tokens = uint64_t(std::max(contextLength, 1)) * kAutoKvContexts;
    const uint64_t block = uint64_t(std::max(dims.blockSize, 1));
    KvLayout wanted = dims;
    wanted.numBlocks = int(std::min<uint64_t>((tokens + block - 1) / block, std::numeric_limits<int32_t>::max()));
    wanted.numLocalBlocks = std::min(dims.numLocalBlocks, wanted.numBlocks);
    if (wanted.bytes() <= availableBytes) return {wanted.bytes(), false};
    const Result<KvLayout> fits = kvLayoutForBudget(dims, availableBytes);
    return {fits ? fits->bytes() : 0, true};
}

Result<std::optional<uint64_t>> kvMemoryLimitFromEnvironment() {
    const char* text = std::getenv("PAGODA_KV_MEMORY_MIB");
    if (text == nullptr || *text == '\0') return std::nullopt;
    const std::string_view value(text);
    uint64_t mib = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), mib);
    if (ec != std::errc() || end != value.data() + value.size() || mib == 0 || mib > (1ull << 30)) {
        return fail("PAGODA_KV_MEMORY_MIB='{}': not a positive number of MiB", value);
    }
    return mib << 20;
}

Result<uint64_t> parseMemAvailable(std::string_view meminfo) {
    constexpr std::string_view kKey = "MemAvailable:";
    size_t at = meminfo.starts_with(kKey) ? 0 : meminfo.find("\nMemAvailable:");
    if (at == std::string_view::npos) return fail("/proc/meminfo has no MemAvailable line");
    if (at > 0) ++at;
    std::string_view line = meminfo.substr(at + kKey.size());
    line = line.substr(0, line.find('\n'));
    const std::string_view value = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    uint64_t kib = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), kib);
    if (ec != std::errc() || std::string_view(end, value.data() + value.size()) != " kB") {
        return fail("/proc/meminfo: cannot read MemAvailable from '{}'", line);
    }
    return kib * 1024;
}

Result<uint64_t> availableHostMemory() {
    std::ifstream in("/proc/meminfo");
    if (!in) return fail("cannot open /proc/meminfo");
    std::stringstream text;
    text << in.rdbuf();
    return parseMemAvailable(text.str());
}

Result<uint64_t> resolveKvBudget(const KvBudget& budget) {
    if (budget.bytes > 0) return budget.bytes;
    if (!(budget.fractionOfAvailable > 0 && budget.fractionOfAvailable <= 1)) {
        return fail("KV budget fraction {} of available memory: must be in (0, 1]", budget.fractionOfAvailable);
    }
    PAGODA_ASSIGN_OR_RETURN(const uint64_t available, availableHostMemory());
    return uint64_t(double(available) * budget.fractionOfAvailable);
}

}  // namespace pagoda

#include "app/bench/bench_models.h"

#include <fmt/format.h>

#include "engine/model/synthetic.h"
#include "engine/runtime/workload.h"

namespace pagoda {

Result<std::filesystem::path> presetModel(const std::string& preset, DType dtype) {
    auto spec = syntheticPreset(preset);
    if (!spec) return fail("unknown preset '{}'", preset);
    spec->dtype = dtype;
    const auto path = defaultModelPath().parent_path() / fmt::format("bench-{}-{}.gguf", preset, dtypeName(dtype));
    if (!std::filesystem::exists(path)) {
        fmt::print(stderr, "creating {}\n", path.string());
        PAGODA_RETURN_IF_ERROR(writeSyntheticModel(*spec, path));
    }
    return path;
}

Result<std::filesystem::path> benchModelPath(Args& args) {
    if (auto model = args.value("model")) return std::filesystem::path(*model);
    DType dtype = DType::F16;
    if (auto name = args.value("dtype")) {
        auto parsed = dtypeFromName(*name);
        if (!parsed || !isComputeSupported(*parsed)) return fail("--dtype: '{}'", *name);
        dtype = *parsed;
    }
    return presetModel(args.value("preset").value_or("small"), dtype);
}

std::vector<int32_t> benchTokens(int n, int vocab, uint64_t seed) { return runtime::lcgTokens(n, vocab, seed); }

}  // namespace pagoda

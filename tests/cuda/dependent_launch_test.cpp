// Programmatic dependent launch is safe only if every kernel started
// through launchKernel (kernels/cuda/launch.cuh) waits for the kernel before
// it (awaitPrecedingKernel) before it touches memory; a kernel that did not
// would race only on sm_90 and newer, and only with the toggle on. So the
// sources are read here: each kernel named in a launchKernel call must
// begin with awaitPrecedingKernel(), or with awaitPrecedingKernel(before),
// whose `before` may only prefetch weights (the matvecs).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

std::string readAll(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(DependentLaunch, EveryKernelLaunchKernelStartsAwaitsThePrecedingKernelFirst) {
    const std::filesystem::path dir = std::filesystem::path(PAGODA_SOURCE_DIR) / "kernels" / "cuda";
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string ext = entry.path().extension().string();
        if (ext == ".cu" || ext == ".cuh" || ext == ".h") all += readAll(entry.path()) + "\n";
    }
    ASSERT_FALSE(all.empty()) << dir;
    // launchKernel(stream, [ns::]name[<...>], ...
    const std::regex call(R"(launchKernel\(\s*stream,\s*(?:\w+::)*(\w+)\s*[<,])");
    std::set<std::string> launched;
    for (auto it = std::sregex_iterator(all.begin(), all.end(), call); it != std::sregex_iterator(); ++it) {
        launched.insert((*it)[1].str());
    }
    // Every decode-step launcher: the matvecs and the quantizer, RMSNorm,
    // RoPE and the K/V store, decode attention and its reduction, the
    // embedding, SwiGLU and the adds.
    EXPECT_GE(launched.size(), 14u);
    for (const std::string& name : launched) {
        SCOPED_TRACE(name);
        // __global__ void [__launch_bounds__(...)] name(params) { first statement
        const std::regex definition("__global__ void (?:__launch_bounds__\\([^)]*\\)\\s*)?" + name +
                                    R"(\([^)]*\)\s*\{\s*([^;]*;))");
        std::smatch match;
        ASSERT_TRUE(std::regex_search(all, match, definition)) << "no __global__ definition of " << name;
        const std::string first = std::regex_replace(match[1].str(), std::regex(R"(\s+)"), " ");
        EXPECT_TRUE(first == "awaitPrecedingKernel();" || first.rfind("awaitPrecedingKernel([&] { prefetch", 0) == 0)
            << first;
    }
}

}  // namespace

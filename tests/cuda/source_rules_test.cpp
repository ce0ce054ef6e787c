// Rules of the CUDA sources whose breach would show only on some devices,
// so the sources themselves are read here:
// - Programmatic dependent launch is safe only if every kernel started
//   through launchKernel (kernels/cuda/launch.cuh) waits for the kernel
//   before it (awaitPrecedingKernel) before it touches memory; a kernel that
//   did not would race only on sm_90 and newer, and only with the toggle
//   on. Each kernel named in a launchKernel call must begin with
//   awaitPrecedingKernel(), or with awaitPrecedingKernel(before), whose
//   `before` may only prefetch weights (the matvecs).
// - A backend on any device but the first is made on one thread and run on
//   another (the app), so every entry point of CudaBackend must make its
//   device current first (CudaContext::makeCurrent); a missing call would
//   launch on the wrong device only on machines with several GPUs.

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

std::string squeezeSpaces(const std::string& text) { return std::regex_replace(text, std::regex(R"(\s+)"), " "); }

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
        const std::string first = squeezeSpaces(match[1].str());
        EXPECT_TRUE(first == "awaitPrecedingKernel();" || first.rfind("awaitPrecedingKernel([&] { prefetch", 0) == 0)
            << first;
    }
}

TEST(CurrentDevice, EveryEntryPointOfTheBackendMakesItsDeviceCurrentFirst) {
    const std::filesystem::path dir = std::filesystem::path(PAGODA_SOURCE_DIR) / "kernels" / "cuda" / "module";
    const std::string header = readAll(dir / "cuda_backend.h");
    const std::string source = readAll(dir / "cuda_backend.cpp");
    ASSERT_FALSE(header.empty() || source.empty()) << dir;
    // The overrides, from the class's public part: name(params) [const] override
    const size_t begin = header.find("class CudaBackend final");
    ASSERT_NE(begin, std::string::npos);
    const std::string api = header.substr(begin, header.find("private:", begin) - begin);
    const std::regex overrideDecl(R"((~?\w+)\([^;{]*\)\s*(?:const\s*)?override)");
    std::set<std::string> entryPoints;
    for (auto it = std::sregex_iterator(api.begin(), api.end(), overrideDecl); it != std::sregex_iterator(); ++it) {
        entryPoints.insert((*it)[1].str());
    }
    // device() and weights() only return what the backend holds.
    EXPECT_EQ(entryPoints.erase("device"), 1u);
    EXPECT_EQ(entryPoints.erase("weights"), 1u);
    EXPECT_GE(entryPoints.size(), 30u);
    for (const std::string& name : entryPoints) {
        SCOPED_TRACE(name);
        // CudaBackend::name(params) { first statement
        const std::regex definition("CudaBackend::" + name + R"(\([^{;]*\)\s*\{\s*([^;]*;))");
        std::smatch match;
        ASSERT_TRUE(std::regex_search(source, match, definition)) << "no definition of CudaBackend::" << name;
        EXPECT_EQ(squeezeSpaces(match[1].str()), "m_context->makeCurrent();");
    }
}

}  // namespace

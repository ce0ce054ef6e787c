// pagoda-bench: measurements, one subcommand each. Benchmarks never assert on
// time; they print what they measured and write it as JSON for the record.

#include <string>

#include <fmt/format.h>

#include "app/bench/generation_bench.h"
#include "app/bench/kv_bench.h"
#include "app/common/args.h"
#include "engine/core/log.h"

namespace pagoda {
namespace {

constexpr const char* kUsage = R"(usage:
  pagoda-bench [generation] [--model PATH | --preset NAME [--dtype f32|f16|bf16|q8_0|q4_0]]
               [--threads N] [--prompt-tokens N] [--gen-tokens N] [--reps N]
               [--simd avx2|avx512] [--bandwidth-mib N] [--json FILE]
      prompt processing and generation tok/s vs the measured memory-bandwidth bound;
      a preset model is created once under ~/.cache/pagoda/models (bench-NAME-DTYPE.gguf)
  pagoda-bench kv [--json FILE] (options in docs/KV_CACHE.md)
      paged vs contiguous KV cache capacity and prefix-cache hits (bookkeeping simulation)
)";

Result<void> run(int argc, char** argv) {
    std::string command = "generation";
    int first = 1;
    if (argc > 1 && std::string(argv[1]).rfind("--", 0) != 0) {
        command = argv[1];
        first = 2;
    }
    PAGODA_ASSIGN_OR_RETURN(Args args, Args::parse(argc, argv, first, {"help"}));
    if (args.flag("help")) {
        fmt::print("{}", kUsage);
        return {};
    }
    if (command == "generation") return runGenerationBench(args);
    if (command == "kv") return runKvBench(args);
    return fail("unknown benchmark '{}'\n{}", command, kUsage);
}

}  // namespace
}  // namespace pagoda

int main(int argc, char** argv) {
    pagoda::setupLogging("warn");
    auto result = pagoda::run(argc, argv);
    if (!result) {
        fmt::print(stderr, "pagoda-bench: error: {}\n", result.error().message);
        return 1;
    }
    return 0;
}

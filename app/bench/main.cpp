// pagoda-bench: measurements, one subcommand each. Benchmarks never assert on
// time; they print what they measured and write it as JSON for the record.

#include <string>

#include <fmt/format.h>

#include "app/bench/attention_bench.h"
#include "app/bench/compare_bench.h"
#include "app/bench/generation_bench.h"
#include "app/bench/gpu_bench.h"
#include "app/bench/kv_bench.h"
#include "app/common/args.h"
#include "app/common/program.h"

namespace pagoda {
namespace {

constexpr const char* kUsage = R"(usage:
  pagoda-bench [generation] [--model PATH | --preset NAME [--dtype T]]
               [--threads N] [--prompt-tokens N] [--gen-tokens N] [--reps N]
               [--simd avx2|avx512] [--bandwidth-mib N] [--int8-matmul 0|1] [--op-times 0|1] [--json FILE]
      prompt processing and generation tok/s vs the measured memory-bandwidth bound;
      --op-times 1: then the time of one more prompt and generation by operation;
      --int8-matmul 1: quantized weights on int8 products (default 0, float: unlike the app's optimized preset);
      a preset model (T: any type pagoda-cli make-model writes) is created once under ~/.cache/pagoda/models
      (bench-NAME-T.gguf)
  pagoda-bench compare [--model PATH | --preset NAME [--dtype T]] [--requests N] [--prompt-len L]
               [--gen-len G] [--concurrency C] [--shared-prefix F] [--configs baseline,optimized[,SPEC...]]
               [--kv-budget-mib M] [--toggles 0|1] [--reps N] [--threads N] [--backend auto|cpu|cuda] [--device N]
               [--gpu-layers auto|N] [--backends B,B...] [--op-times 0|1] [--json FILE]
      the same workload through the engine under each optimization config (and each optimization
      alone over the baseline): throughput, TTFT, inter-token latency, memory; SPEC in docs/ENGINE.md;
      --backends: one per config (auto, cpu, cuda, auto:N, cuda:N; @L: L GPU layers), e.g. the CPU
      against the GPU (cpu,cuda) or half the model's layers on the GPU against all (cuda@16,cuda@32);
      --op-times 1: then each config's run once more, its time by operation
  pagoda-bench kv [--json FILE] (options in docs/KV_CACHE.md)
      paged vs contiguous KV cache capacity and prefix-cache hits (bookkeeping simulation)
  pagoda-bench attention [--quick] [--threads N] [--json FILE] (options in docs/ATTENTION.md)
      flash vs naive attention kernel, MHA/GQA/MQA: prefill GFLOP/s, decode K/V GB/s vs bandwidth
  pagoda-bench gpu [--quick] [--presets 7b,8b-gqa] [--dtype f16] [--batches 1,8,32] [--context 512]
               [--steps 32] [--prefill-tokens 512] [--attention-contexts 4096,16384] [--graphs 0|1] [--device N]
               [--int8-matmul 0|1] [--dependent-launch 0|1] [--op-times 0|1] [--kv-type f16|q8_0] [--json FILE]
      the CUDA backend: prefill tok/s, decode tok/s vs the copy-bandwidth roofline, prefill attention
      TFLOP/s (docs/CUDA.md); --op-times 1: each batch's decode step again, by operation
)";

Result<void> run(int argc, char** argv) {
    std::string command = "generation";
    int first = 1;
    if (argc > 1 && std::string(argv[1]).rfind("--", 0) != 0) {
        command = argv[1];
        first = 2;
    }
    PAGODA_ASSIGN_OR_RETURN(Args args, Args::parse(argc, argv, first, {"help", "quick"}));
    if (args.flag("help")) {
        fmt::print("{}", kUsage);
        return {};
    }
    if (command == "generation") return runGenerationBench(args);
    if (command == "kv") return runKvBench(args);
    if (command == "compare") return runCompareBench(args);
    if (command == "attention") return runAttentionBench(args);
    if (command == "gpu") return runGpuBench(args);
    return fail("unknown benchmark '{}'\n{}", command, kUsage);
}

}  // namespace
}  // namespace pagoda

int main(int argc, char** argv) { return pagoda::runProgram("pagoda-bench", pagoda::run, argc, argv); }

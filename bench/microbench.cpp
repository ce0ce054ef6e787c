// CPU kernel microbenchmarks. Decode (matvec) and small batches (batch,
// 1 to 16 tokens per pass over the weights) report the weight bytes read
// per second, to set against stream_read, the plain streaming-read
// bandwidth of the same threads over 1 GiB; prefill reports GFLOP/s.
//
// Decode and batch weights cycle through copies totalling >= 512 MiB so every call
// reads DRAM as in whole-model generation, not a matrix left in L3.

#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/bandwidth.h"
#include "kernels/cpu/cpu_context.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matvec_q8.h"

namespace {

using pagoda::DType;
using pagoda::cpu::CpuContext;
using pagoda::cpu::SimdLevel;
using pagoda::cpu::ThreadPool;
using pagoda::cpu::WeightMatrix;

constexpr size_t kStreamBytes = size_t(1) << 30;
constexpr size_t kDecodeFootprint = size_t(512) << 20;
constexpr int64_t kPrefillTokens = 64;

uint64_t nextRandom(uint64_t& state) {  // xorshift64
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

// Byte offsets of the fp16 scale fields in a block (kernels/dtype.h).
std::vector<size_t> halfOffsets(DType type) {
    switch (type) {
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K: return {0, 2};
    case DType::Q2_K: return {offsetof(pagoda::BlockQ2_K, d), offsetof(pagoda::BlockQ2_K, dmin)};
    case DType::Q3_K: return {offsetof(pagoda::BlockQ3_K, d)};
    case DType::Q6_K: return {offsetof(pagoda::BlockQ6_K, d)};
    default: return {0};
    }
}

// Valid encodings of modest values: no inf, nan or subnormal that could
// slow the arithmetic down.
void fillWeights(DType type, uint8_t* data, size_t bytes, uint64_t seed) {
    switch (type) {
    case DType::F32:
        for (size_t i = 0; i + 4 <= bytes; i += 4) {
            const float v = float(int32_t(nextRandom(seed) >> 32)) * 0x1p-31f;
            std::memcpy(data + i, &v, 4);
        }
        return;
    case DType::F16:
    case DType::BF16: {
        const uint16_t exponent = type == DType::F16 ? 0x3000 : 0x3e00;  // ~0.1 either way
        for (size_t i = 0; i + 2 <= bytes; i += 2) {
            const auto v = uint16_t(exponent | (nextRandom(seed) & 0x807f));
            std::memcpy(data + i, &v, 2);
        }
        return;
    }
    default: {  // block types: random integers and sub-block scales, every fp16 field 2^-7
        const size_t blockBytes = pagoda::dtypeInfo(type).blockBytes;
        const std::vector<size_t> halves = halfOffsets(type);
        for (size_t i = 0; i < bytes; ++i) data[i] = uint8_t(nextRandom(seed));
        const uint16_t d = 0x2000;
        for (size_t i = 0; i + blockBytes <= bytes; i += blockBytes) {
            for (const size_t offset : halves) std::memcpy(data + i + offset, &d, 2);
        }
        return;
    }
    }
}

// Encoded weight matrices for one (type, rows, cols), in `copies` copies.
struct WeightSet {
    DType type = DType::F32;
    int64_t rows = 0;
    int64_t cols = 0;
    size_t matrixBytes = 0;
    size_t copies = 0;
    std::vector<uint8_t> data;  // [copies][rows][rowBytes]

    WeightMatrix matrix(size_t copy) const {
        return WeightMatrix{type, data.data() + (copy % copies) * matrixBytes, rows, cols};
    }
};

// Buffers shared by the benchmarks, built on first use: only one weight set
// lives at a time, so benchmarks are registered grouped by shape and type.
class BenchData {
public:
    const WeightSet& weights(DType type, int64_t rows, int64_t cols, size_t footprint) {
        if (!m_weights || m_weights->type != type || m_weights->rows != rows || m_weights->cols != cols ||
            m_weights->copies * m_weights->matrixBytes < footprint) {
            m_weights.reset();
            auto set = std::make_unique<WeightSet>();
            set->type = type;
            set->rows = rows;
            set->cols = cols;
            set->matrixBytes = size_t(rows) * pagoda::rowBytes(type, size_t(cols));
            set->copies = std::max<size_t>(1, (footprint + set->matrixBytes - 1) / set->matrixBytes);
            set->data.resize(set->copies * set->matrixBytes);
            fillWeights(type, set->data.data(), set->data.size(), 0x9e3779b97f4a7c15ull);
            m_weights = std::move(set);
        }
        return *m_weights;
    }

private:
    std::unique_ptr<WeightSet> m_weights;
};

std::vector<float> activations(int64_t n) {
    std::vector<float> x(static_cast<size_t>(n));
    uint64_t seed = 12345;
    for (float& v : x) v = float(int32_t(nextRandom(seed) >> 32)) * 0x1p-31f;
    return x;
}

// The same probe pagoda-bench uses; one iteration of five timed reads.
void streamRead(benchmark::State& state, int nThreads) {
    ThreadPool pool(nThreads);
    const CpuContext ctx{&pool, SimdLevel::Avx2};
    double bytesPerSecond = 0.0;
    for (auto _ : state) {
        bytesPerSecond = pagoda::cpu::measureReadBandwidth(ctx, kStreamBytes, 5).bytesPerSecond;
        state.SetIterationTime(double(kStreamBytes) / bytesPerSecond);
    }
    state.counters["GB/s"] = bytesPerSecond * 1e-9;
}

// The kernels a benchmark runs, the last part of its name: a SIMD level
// ("avx2", "avx512"), and for the integer products (int8: the int8-matmul
// optimization, quantized types only) the level's own multiply-adds: AVX2's
// vpmaddubsw at "avx2", AVX-512 VNNI at "avx512", and at the Avx2 level
// AVX-VNNI's where the CPU has it ("avx-vnni").
struct Kernels {
    SimdLevel simd;
    bool int8;
    bool vnni;
    std::string name;
};

// nTokens tokens through the weights (1: decode; a few: continuous
// batching's decode step, which should cost little more than one token).
// Reports the weight bytes read per second.
void weightPass(benchmark::State& state, BenchData& data, DType type, int64_t rows, int64_t cols, int64_t nTokens,
                int nThreads, const Kernels& kernels) {
    const WeightSet& weights = data.weights(type, rows, cols, kDecodeFootprint);
    ThreadPool pool(nThreads);
    const CpuContext ctx{&pool, kernels.simd, kernels.int8, kernels.vnni};
    const std::vector<float> x = activations(nTokens * cols);
    std::vector<float> y(static_cast<size_t>(nTokens * rows));
    size_t copy = 0;
    for (auto _ : state) {
        pagoda::cpu::matmul(ctx, weights.matrix(copy++), x.data(), y.data(), nTokens);
        benchmark::ClobberMemory();
    }
    state.counters["GB/s"] = benchmark::Counter(
        double(state.iterations()) * double(weights.matrixBytes) * 1e-9, benchmark::Counter::kIsRate);
}

void prefill(benchmark::State& state, BenchData& data, DType type, int64_t rows, int64_t cols, int nThreads,
             const Kernels& kernels) {
    const WeightSet& weights = data.weights(type, rows, cols, 0);
    ThreadPool pool(nThreads);
    const CpuContext ctx{&pool, kernels.simd, kernels.int8, kernels.vnni};
    const std::vector<float> x = activations(kPrefillTokens * cols);
    std::vector<float> y(static_cast<size_t>(kPrefillTokens * rows));
    for (auto _ : state) {
        pagoda::cpu::matmul(ctx, weights.matrix(0), x.data(), y.data(), kPrefillTokens);
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] = benchmark::Counter(
        double(state.iterations()) * 2.0 * double(rows * cols * kPrefillTokens) * 1e-9, benchmark::Counter::kIsRate);
}

// The int8 products' rounding of x (matmul's first step with int8Matmul),
// 64 tokens of `cols` on the calling thread, for weights of `type`
// (Q8_0: blocks of 32; Q4_K: of 256).
void quantizeX(benchmark::State& state, DType type, int64_t cols) {
    const std::vector<float> x = activations(kPrefillTokens * cols);
    const size_t tokenBytes = pagoda::cpu::detail::q8ActivationBytes(type, cols);
    std::vector<uint8_t> out(size_t(kPrefillTokens) * tokenBytes);
    for (auto _ : state) {
        for (int64_t t = 0; t < kPrefillTokens; ++t) {
            pagoda::cpu::detail::quantizeActivations(type, x.data() + t * cols, cols, out.data() + t * tokenBytes);
        }
        benchmark::ClobberMemory();
    }
}

// The cost of handing an empty job to the pool and waiting for it.
void poolDispatch(benchmark::State& state, int nThreads) {
    ThreadPool pool(nThreads);
    for (auto _ : state) pool.run([](int, int) {});
}

}  // namespace

int main(int argc, char** argv) {
    BenchData data;
    const bool avx512 = pagoda::cpu::detectSimdLevel() == SimdLevel::Avx512;
    std::vector<Kernels> floatKernels = {{SimdLevel::Avx2, false, false, "avx2"}};
    std::vector<Kernels> int8Kernels = {{SimdLevel::Avx2, true, false, "avx2"}};
    if (pagoda::cpu::detectAvxVnni()) int8Kernels.push_back({SimdLevel::Avx2, true, true, "avx-vnni"});
    if (avx512) {
        floatKernels.push_back({SimdLevel::Avx512, false, false, "avx512"});
        int8Kernels.push_back({SimdLevel::Avx512, true, true, "avx512"});
    }
    const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                           DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};
    const auto shapeName = [](int64_t rows, int64_t cols) { return std::to_string(rows) + "x" + std::to_string(cols); };

    for (const int nThreads : {1, 2}) {
        benchmark::RegisterBenchmark(("stream_read/threads:" + std::to_string(nThreads)).c_str(), streamRead, nThreads)
            ->UseManualTime()
            ->Iterations(1)
            ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark("pool_dispatch/threads:2", poolDispatch, 2)->UseRealTime();
    for (const DType type : {DType::Q8_0, DType::Q4_K}) {
        const std::string name = "quantize_x/" + std::string(pagoda::dtypeName(type)) + "/4096/tokens:64";
        benchmark::RegisterBenchmark(name.c_str(), quantizeX, type, 4096)->Unit(benchmark::kMicrosecond);
    }
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{4096, 4096}, {11008, 4096}}) {
        for (const DType type : types) {
            for (const int nThreads : {1, 2}) {
                for (const Kernels& kernels : floatKernels) {
                    const std::string name = "matvec/" + std::string(pagoda::dtypeName(type)) + "/" +
                                             shapeName(rows, cols) + "/threads:" + std::to_string(nThreads) + "/" +
                                             kernels.name;
                    benchmark::RegisterBenchmark(name.c_str(), weightPass, std::ref(data), type, rows, cols, 1, nThreads,
                                                 kernels)
                        ->UseRealTime()
                        ->Unit(benchmark::kMicrosecond);
                }
            }
        }
    }
    // "_int8" names: the integer path, for the quantized types.
    const auto kernelsFor = [&](DType type) {
        std::vector<Kernels> all = floatKernels;
        if (pagoda::dtypeInfo(type).blockElements > 1) all.insert(all.end(), int8Kernels.begin(), int8Kernels.end());
        return all;
    };
    const auto suffix = [](const Kernels& kernels) { return std::string(kernels.int8 ? "_int8/" : "/"); };
    for (const DType type : types) {
        if (!(pagoda::dtypeInfo(type).blockElements > 1)) continue;
        for (const int nThreads : {1, 2}) {
            for (const Kernels& kernels : int8Kernels) {
                const std::string name = "matvec_int8/" + std::string(pagoda::dtypeName(type)) +
                                         "/4096x4096/threads:" + std::to_string(nThreads) + "/" + kernels.name;
                benchmark::RegisterBenchmark(name.c_str(), weightPass, std::ref(data), type, 4096, 4096, 1, nThreads,
                                             kernels)
                    ->UseRealTime()
                    ->Unit(benchmark::kMicrosecond);
            }
        }
    }
    for (const DType type : types) {
        for (const Kernels& kernels : kernelsFor(type)) {
            for (const int nThreads : {1, 2}) {
                for (const int64_t nTokens : {1, 2, 4, 8, 16}) {
                    const std::string name = "batch" + suffix(kernels) + std::string(pagoda::dtypeName(type)) +
                                             "/4096x4096/tokens:" + std::to_string(nTokens) + "/threads:" +
                                             std::to_string(nThreads) + "/" + kernels.name;
                    benchmark::RegisterBenchmark(name.c_str(), weightPass, std::ref(data), type, 4096, 4096, nTokens,
                                                 nThreads, kernels)
                        ->UseRealTime()
                        ->Unit(benchmark::kMicrosecond);
                }
            }
        }
    }
    // 1024 x 1024: the widths of 0.5B-class models (qwen3-0.6b's 1024).
    for (const int64_t n : {4096, 1024}) {
        for (const DType type : types) {
            for (const Kernels& kernels : kernelsFor(type)) {
                for (const int nThreads : {1, 2}) {
                    const std::string name = "prefill64" + suffix(kernels) + std::string(pagoda::dtypeName(type)) +
                                             "/" + shapeName(n, n) + "/threads:" + std::to_string(nThreads) + "/" +
                                             kernels.name;
                    benchmark::RegisterBenchmark(name.c_str(), prefill, std::ref(data), type, n, n, nThreads, kernels)
                        ->UseRealTime()
                        ->Unit(benchmark::kMillisecond);
                }
            }
        }
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

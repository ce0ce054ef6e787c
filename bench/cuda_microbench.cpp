// pagoda-cuda-microbench: the CUDA backend's choices between kernels for a
// weight product, each timed on one device.
// - Decode (1 to 32 tokens): matvec (one kernel, f32 activations) against
//   what CudaBackend::matmul would run without it: for F16/BF16, the
//   converted activations and cuBLASLt; for the quantized types, f16 panels
//   through cuBLASLt (dequantizedGemm) and, beyond 8 tokens, the f32 tiles
//   (what CUDA graph captures ran); for the types with an int8 kernel also
//   int8 decode (the activations rounded to int8, then the int8 matvec;
//   ratio: matvec's time over it). Weight GB/s next to the
//   device-to-device copy bandwidth measured in the same run; the weights
//   are cycled through enough copies (at least 512 MiB) that no launch
//   finds them in L2.
// - Decode attention (1 to 32 rows of 512 to 16k positions, head dim 128,
//   MHA and GQA): the split plan for 2 resident CTAs per SM against the
//   one for the decode kernel's occupancy, which CudaBackend plans with.
// - Prefill attention (4k and 16k positions, 32 heads of 128, causal, f16
//   K/V in 16-position blocks): the tensor-core kernel with K/V tiles of 32
//   and of 64 positions (prefillKvTile picks 64 where two CTAs of it fit
//   one SM), TFLOP/s counting 4 * heads * 128 * n(n+1)/2.
// - Prefill (8 to 256 tokens): the f32 tiles that read blocks in place
//   (quantMatmul) against the f16 panels; CudaBackend's switch to the
//   panels (kDequantizedMinTokens) was at 8 tokens after this table on an
//   H200, and is at 9 since the decode matvec took 8-token batches (the
//   decode table compares the two).
// Times are CUDA events around `reps` launches, after a warm-up
// (CudaContext::timeMs); never asserted on.
//
// usage: pagoda-cuda-microbench [--rows R] [--cols C] [--reps N]

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/matvec.h"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/cuda/probe.h"
#include "kernels/cuda/quant_matmul.h"

namespace pagoda::cuda {
namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "pagoda-cuda-microbench: %s\n", what.c_str());
    return 1;
}

StatusOr<DeviceBuffer> upload(CudaContext& context, const void* host, size_t bytes) {
    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer buffer, context.memory().allocate(bytes, MemoryUse::Workspace));
    PAGODA_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), host, bytes, cudaMemcpyHostToDevice, context.stream()));
    PAGODA_CUDA_CHECK(cudaStreamSynchronize(context.stream()));
    return buffer;
}

std::vector<uint8_t> randomWeights(std::mt19937& rng, DType type, int64_t rows, int64_t cols) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t stride = rowBytes(type, size_t(cols));
    std::vector<uint8_t> weights(stride * size_t(rows));
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = normal(rng);
        cpu::quantizeRow(type, row.data(), weights.data() + size_t(r) * stride, cols);
    }
    return weights;
}

// What a product has to work with: activations and outputs for up to
// maxTokens, an f16 panel of the whole matrix and cuBLAS scratch for it.
struct Buffers {
    DeviceBuffer x;
    DeviceBuffer y;
    DeviceBuffer panel;
    DeviceBuffer scratch;
    DeviceBuffer int8;  // int8 activations (quantizeActivations)
};

// Decode: matvec against the path it replaced, the weights cycled through
// copies that together exceed L2 several times over.
Status decodeTable(CudaContext& context, std::mt19937& rng, const Buffers& b, int64_t rows, int64_t cols, int reps) {
    constexpr size_t kCycledBytes = size_t(512) << 20;
    PAGODA_CUDA_ASSIGN_OR_RETURN(const double copyGBs, context.copyBandwidthGBs(size_t(1) << 30, 20));
    std::printf("decode: %lld x %lld weights; device-to-device copy %.1f GB/s (read + write); microseconds\n",
                (long long)rows, (long long)cols, copyGBs);
    std::printf("%-6s %7s %9s %9s %8s %14s %8s %9s %8s\n", "type", "tokens", "matvec", "GB/s", "of copy",
                "cuBLAS/panels", "ratio", "f32 tiles", "ratio");
    for (DType type : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                       DType::Q6_K}) {
        const std::vector<uint8_t> weights = randomWeights(rng, type, rows, cols);
        const size_t copies = std::max<size_t>(1, (kCycledBytes + weights.size() - 1) / weights.size());
        std::vector<DeviceBuffer> dW;
        for (size_t i = 0; i < copies; ++i) {
            PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer copy, upload(context, weights.data(), weights.size()));
            dW.push_back(std::move(copy));
        }
        size_t next = 0;
        auto weight = [&] { return DeviceWeight{type, dW[next++ % copies].data(), rows, cols}; };
        const bool quantized = isCudaQuantType(type);
        // The token counts, from 1, through which matvec stays the faster
        // path: where CudaBackend's switch (usesMatvec) belongs.
        int64_t fasterThrough = 0;
        bool fasterSoFar = true;
        for (int64_t n : {1, 2, 4, 8, 16, 32}) {
            PAGODA_CUDA_ASSIGN_OR_RETURN(const double fused, context.timeMs(reps, [&] {
                return matvec(context.stream(), weight(), b.x.as<float>(), b.y.as<float>(), n);
            }));
            // Without matvec: cuBLASLt on converted activations (float
            // types); f16 panels (quantized, eager steps).
            PAGODA_CUDA_ASSIGN_OR_RETURN(const double library, context.timeMs(reps, [&] {
                const DeviceWeight w = weight();
                if (quantized) {
                    return dequantizedGemm(context.blas(), context.stream(), w, b.x.as<float>(), b.y.as<float>(), n,
                                           rows, b.panel.data(), nullptr, b.scratch.data());
                }
                return gemm(context.blas(), context.stream(), w, b.x.as<float>(), b.y.as<float>(), n,
                            b.scratch.data());
            }));
            fasterSoFar = fasterSoFar && fused < library;
            if (fasterSoFar) fasterThrough = n;
            const double gbs = double(weights.size()) / (fused * 1e-3) / 1e9;
            std::printf("%-6s %7lld %9.1f %9.1f %7.1f%% %14.1f %7.2fx", std::string(dtypeName(type)).c_str(),
                        (long long)n, 1e3 * fused, gbs, 100.0 * gbs / copyGBs, 1e3 * library, library / fused);
            if (quantized && n > kQuantMatvecMaxTokens) {
                // What CUDA graph captures of quantized decode steps ran before matvec took them.
                PAGODA_CUDA_ASSIGN_OR_RETURN(const double tiles, context.timeMs(reps, [&] {
                    return quantMatmul(context.stream(), weight(), b.x.as<float>(), b.y.as<float>(), n);
                }));
                std::printf(" %9.1f %7.2fx", 1e3 * tiles, tiles / fused);
            }
            if (matvecInt8Takes(weight())) {
                // Int8 decode: the activations rounded, then the int8 matvec.
                PAGODA_CUDA_ASSIGN_OR_RETURN(const double int8, context.timeMs(reps, [&] {
                    auto x8 = quantizeActivations(context.stream(), b.x.as<float>(), cols, n, b.int8.data());
                    if (!x8.ok()) return x8.status();
                    const DeviceWeight w = weight();
                    float* y = b.y.as<float>();
                    return matvecsInt8(context.stream(), &w, &y, 1, x8.value());
                }));
                std::printf(" int8 %9.1f %7.2fx", 1e3 * int8, fused / int8);
            }
            std::printf("\n");
        }
        const char* other = quantized ? "the f16 panels" : "cuBLASLt";
        if (fasterThrough == 0) {
            std::printf("%-6s matvec slower than %s at 1 token\n", std::string(dtypeName(type)).c_str(), other);
        } else {
            std::printf("%-6s matvec faster than %s at every count measured through %lld tokens\n",
                        std::string(dtypeName(type)).c_str(), other, (long long)fasterThrough);
        }
    }
    return {};
}

// Prefill attention with each K/V tile size the kernel is compiled for at
// head dim 128; the largest difference between their outputs as a sanity
// check (f16 probabilities summed in another order).
Status attentionTable(CudaContext& context, std::mt19937& rng, int reps) {
    constexpr int kHeads = 32;
    constexpr int kHeadDim = 128;
    constexpr int kBlock = 16;
    int device = 0;
    int perBlock = 0;
    PAGODA_CUDA_CHECK(cudaGetDevice(&device));
    PAGODA_CUDA_CHECK(cudaDeviceGetAttribute(&perBlock, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (size_t(perBlock) < prefillSharedBytes(kHeadDim, 64)) {
        std::printf("prefill attention: skipped, a CTA may have %d bytes of shared memory, 64-position tiles "
                    "need %zu\n",
                    perBlock, prefillSharedBytes(kHeadDim, 64));
        return {};
    }
    std::printf("prefill attention: %d heads x %d, causal, one sequence; the device would pick %d-position K/V "
                "tiles; milliseconds\n",
                kHeads, kHeadDim, prefillKvTile(kHeadDim, context.sharedBytesPerSm()));
    std::printf("%8s %12s %9s %12s %9s %9s %10s\n", "context", "32: ms", "TFLOP/s", "64: ms", "TFLOP/s", "64 vs 32",
                "max |diff|");
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (int n : {4096, 16384}) {
        const size_t rowElements = size_t(kHeads) * kHeadDim;
        std::vector<float> q(size_t(n) * rowElements);
        for (float& v : q) v = uniform(rng);
        std::vector<__half> kv(q.size());
        for (__half& v : kv) v = __float2half(uniform(rng));
        PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dQ, upload(context, q.data(), q.size() * sizeof(float)));
        PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dK, upload(context, kv.data(), kv.size() * sizeof(__half)));
        std::shuffle(kv.begin(), kv.end(), rng);
        PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dV, upload(context, kv.data(), kv.size() * sizeof(__half)));
        std::vector<int32_t> table(size_t(n / kBlock));
        std::iota(table.begin(), table.end(), 0);
        const AttentionGeometry geometry{kHeads, kHeads, kHeadDim, kBlock, 0};
        PAGODA_CUDA_ASSIGN_OR_RETURN(const AttentionPlan plan,
                                     planAttention(geometry, {{0, n, 0, table.data(), int(table.size())}}, {}));
        PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer packed,
                                     upload(context, plan.packed.data(), plan.packed.size() * sizeof(int32_t)));
        AttentionArgs args;
        args.q = dQ.as<float>();
        args.nHeads = kHeads;
        args.scale = 1.0f / std::sqrt(float(kHeadDim));
        args.kv = {dK.data(), dV.data(), kHeads, kBlock, kHeadDim};
        args.seqs = packed.as<int32_t>() + plan.seqOffset;
        args.tables = packed.as<int32_t>() + plan.tableOffset;
        const int32_t* tiles = packed.as<int32_t>() + plan.tileOffset;
        const double flops = 4.0 * kHeads * kHeadDim * (double(n) * (n + 1) / 2);
        double ms[2] = {};
        std::vector<float> out[2];
        for (int i = 0; i < 2; ++i) {
            const int kvTile = i == 0 ? 32 : 64;
            PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dOut,
                                         context.memory().allocate(q.size() * sizeof(float), MemoryUse::Workspace));
            args.out = dOut.as<float>();
            PAGODA_CUDA_ASSIGN_OR_RETURN(ms[i], context.timeMs(reps, [&] {
                return prefillAttention(context.stream(), args, tiles, plan.nTiles, kvTile);
            }));
            out[i].resize(q.size());
            PAGODA_CUDA_CHECK(cudaMemcpyAsync(out[i].data(), dOut.data(), q.size() * sizeof(float),
                                              cudaMemcpyDeviceToHost, context.stream()));
            PAGODA_CUDA_RETURN_IF_ERROR(context.synchronize());
        }
        float maxDiff = 0.0f;
        for (size_t e = 0; e < q.size(); ++e) {
            const float diff = std::fabs(out[0][e] - out[1][e]);
            maxDiff = diff == diff ? std::max(maxDiff, diff) : INFINITY;  // NaN shows as inf
        }
        std::printf("%8d %12.3f %9.1f %12.3f %9.1f %8.2fx %10.2e\n", n, ms[0], flops / (ms[0] * 1e-3) / 1e12, ms[1],
                    flops / (ms[1] * 1e-3) / 1e12, ms[0] / ms[1], maxDiff);
    }
    return {};
}

// Decode attention at long contexts: the split plan for two resident CTAs
// per SM (FlashAttention-2's figure for its split-KV CTAs) against the
// decode kernel's own occupancy (decodeCtasPerSm, what CudaBackend plans
// with), on `7b` (32 heads) and `8b-gqa` (32 over 8 KV heads) shapes of
// head dim 128. Every row reads its own blocks; GB/s counts the K and V
// bytes each call reads.
Status decodeAttentionTable(CudaContext& context, std::mt19937& rng, int reps) {
    constexpr int kHeads = 32;
    constexpr int kHeadDim = 128;
    constexpr int kBlock = 16;
    constexpr int64_t kMostPositions = 131072;  // over all rows: at most 2 GiB of K and V
    std::printf("decode attention: %d heads x %d, one layer; splits and microseconds per call\n", kHeads, kHeadDim);
    std::printf("%-7s %5s %7s | %6s %9s %8s | %6s %6s %9s %8s | %8s\n", "shape", "rows", "context", "2/SM", "us",
                "GB/s", "per SM", "splits", "us", "GB/s", "speed-up");
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (int kvHeads : {32, 8}) {
        PAGODA_CUDA_ASSIGN_OR_RETURN(const int resident, decodeCtasPerSm(kHeadDim, kHeads / kvHeads));
        for (int rows : {1, 8, 32}) {
            for (int n : {512, 4096, 16384}) {
                if (int64_t(rows) * n > kMostPositions) continue;
                const int blocksPerRow = n / kBlock;
                const size_t poolBytes = size_t(rows) * blocksPerRow * kvHeads * kBlock * kHeadDim * sizeof(__half);
                PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dK, context.memory().allocate(poolBytes, MemoryUse::Workspace));
                PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dV, context.memory().allocate(poolBytes, MemoryUse::Workspace));
                // Bytes 0x2C: every element the f16 0x2C2C, 0.0652.
                PAGODA_CUDA_CHECK(cudaMemsetAsync(dK.data(), 0x2C, poolBytes, context.stream()));
                PAGODA_CUDA_CHECK(cudaMemsetAsync(dV.data(), 0x2C, poolBytes, context.stream()));
                std::vector<float> q(size_t(rows) * kHeads * kHeadDim);
                for (float& v : q) v = uniform(rng);
                PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dQ, upload(context, q.data(), q.size() * sizeof(float)));
                PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dOut, context.memory().allocate(q.size() * sizeof(float),
                                                                                          MemoryUse::Workspace));
                std::vector<int32_t> table(size_t(rows) * blocksPerRow);
                std::iota(table.begin(), table.end(), 0);
                std::vector<AttentionSequenceSpec> seqs;
                for (int r = 0; r < rows; ++r) {
                    seqs.push_back({r, 1, n - 1, table.data() + size_t(r) * blocksPerRow, blocksPerRow});
                }
                AttentionArgs args;
                args.q = dQ.as<float>();
                args.out = dOut.as<float>();
                args.nHeads = kHeads;
                args.scale = 1.0f / std::sqrt(float(kHeadDim));
                args.kv = {dK.data(), dV.data(), kvHeads, kBlock, kHeadDim};
                double us[2] = {};
                int splits[2] = {};
                for (int i = 0; i < 2; ++i) {
                    AttentionPlanOptions options;
                    options.smCount = context.device().smCount;
                    options.sharedBytesPerSm = context.sharedBytesPerSm();
                    options.decodeCtasPerSm = i == 0 ? 2 : resident;
                    PAGODA_CUDA_ASSIGN_OR_RETURN(const AttentionPlan plan,
                                                 planAttention({kHeads, kvHeads, kHeadDim, kBlock, 0}, seqs, options));
                    PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer packed, upload(context, plan.packed.data(),
                                                                             plan.packed.size() * sizeof(int32_t)));
                    PAGODA_CUDA_ASSIGN_OR_RETURN(
                        DeviceBuffer workspace,
                        context.memory().allocate(std::max<size_t>(1, plan.workspaceBytes()), MemoryUse::Workspace));
                    PAGODA_CUDA_ASSIGN_OR_RETURN(const double ms, context.timeMs(reps, [&] {
                        return runAttention(context.stream(), args, plan, packed.as<int32_t>(), workspace.data());
                    }));
                    us[i] = 1e3 * ms;
                    splits[i] = plan.split.nSplits;
                }
                const double bytes = 2.0 * double(poolBytes);
                std::printf("%-7s %5d %7d | %6d %9.1f %8.1f | %6d %6d %9.1f %8.1f | %7.2fx\n",
                            kvHeads == kHeads ? "7b" : "8b-gqa", rows, n, splits[0], us[0], bytes / us[0] / 1e3,
                            resident, splits[1], us[1], bytes / us[1] / 1e3, us[0] / us[1]);
            }
        }
    }
    return {};
}

// Prefill: the f32 tiles that read blocks in place against f16 panels.
Status prefillTable(CudaContext& context, std::mt19937& rng, const Buffers& b, int64_t rows, int64_t cols, int reps,
                    const std::vector<int64_t>& tokenCounts) {
    std::printf("prefill: %lld x %lld weights, %d launches each; microseconds per product\n", (long long)rows,
                (long long)cols, reps);
    std::printf("%-6s %7s %12s %12s %9s\n", "type", "tokens", "in place", "f16 panels", "ratio");
    for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
        const std::vector<uint8_t> weights = randomWeights(rng, type, rows, cols);
        PAGODA_CUDA_ASSIGN_OR_RETURN(DeviceBuffer dW, upload(context, weights.data(), weights.size()));
        const DeviceWeight w{type, dW.data(), rows, cols};
        for (int64_t n : tokenCounts) {
            PAGODA_CUDA_ASSIGN_OR_RETURN(const double inPlace, context.timeMs(reps, [&] {
                return quantMatmul(context.stream(), w, b.x.as<float>(), b.y.as<float>(), n);
            }));
            PAGODA_CUDA_ASSIGN_OR_RETURN(const double panels, context.timeMs(reps, [&] {
                return dequantizedGemm(context.blas(), context.stream(), w, b.x.as<float>(), b.y.as<float>(), n, rows,
                                       b.panel.data(), nullptr, b.scratch.data());
            }));
            std::printf("%-6s %7lld %12.1f %12.1f %8.2fx\n", std::string(dtypeName(type)).c_str(), (long long)n,
                        1e3 * inPlace, 1e3 * panels, inPlace / panels);
        }
    }
    return {};
}

Status run(int64_t rows, int64_t cols, int reps) {
    PAGODA_CUDA_ASSIGN_OR_RETURN(std::unique_ptr<CudaContext> context, CudaContext::create(0));
    const std::vector<int64_t> tokenCounts = {8, 12, 16, 17, 24, 32, 48, 64, 128, 256};
    const int64_t maxTokens = tokenCounts.back();
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(size_t(maxTokens * cols));
    for (float& v : x) v = normal(rng);
    Buffers b;
    PAGODA_CUDA_ASSIGN_OR_RETURN(b.x, upload(*context, x.data(), x.size() * sizeof(float)));
    PAGODA_CUDA_ASSIGN_OR_RETURN(
        b.y, context->memory().allocate(size_t(maxTokens * rows) * sizeof(float), MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(
        b.panel, context->memory().allocate(size_t(rows * cols) * sizeof(uint16_t), MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(
        b.scratch,
        context->memory().allocate(gemmScratchBytes({DType::F16, nullptr, rows, cols}, maxTokens), MemoryUse::Workspace));
    PAGODA_CUDA_ASSIGN_OR_RETURN(
        b.int8, context->memory().allocate(int8ActivationBytes(cols, maxTokens), MemoryUse::Workspace));
    PAGODA_CUDA_RETURN_IF_ERROR(decodeTable(*context, rng, b, rows, cols, reps));
    PAGODA_CUDA_RETURN_IF_ERROR(decodeAttentionTable(*context, rng, reps));
    PAGODA_CUDA_RETURN_IF_ERROR(attentionTable(*context, rng, std::max(1, reps / 4)));
    return prefillTable(*context, rng, b, rows, cols, reps, tokenCounts);
}

}  // namespace
}  // namespace pagoda::cuda

int main(int argc, char** argv) {
    int64_t rows = 4096;
    int64_t cols = 4096;
    int reps = 20;
    if (argc % 2 == 0) return pagoda::cuda::fail("usage: pagoda-cuda-microbench [--rows R] [--cols C] [--reps N]");
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string option = argv[i];
        const long long value = std::atoll(argv[i + 1]);
        if (option == "--rows" && value > 0) {
            rows = value;
        } else if (option == "--cols" && value >= 256 && value % 256 == 0) {
            cols = value;
        } else if (option == "--reps" && value > 0) {
            reps = int(value);
        } else {
            return pagoda::cuda::fail("bad option " + option + " " + argv[i + 1] +
                                      " (--rows R, --cols C a multiple of 256, --reps N)");
        }
    }
    const pagoda::cuda::DeviceProbe probe = pagoda::cuda::probeDevice(0);
    if (!probe.available) return pagoda::cuda::fail("no CUDA device: " + probe.reason);
    const pagoda::cuda::Status status = pagoda::cuda::run(rows, cols, reps);
    if (!status.ok()) return pagoda::cuda::fail(status.message());
    return 0;
}

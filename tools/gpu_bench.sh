#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (Qt not needed): builds the Qt-free
# targets for this GPU, runs the CUDA tests, then `pagoda-bench gpu` (decode
# tok/s of 7b and 8b-gqa at batch 1/8/32 against the copy-bandwidth
# roofline, prefill attention TFLOP/s at 4k and 16k) and its PyTorch peer
# (tools/torch_peer.py, when torch with CUDA is installed), then decode of
# 8b-gqa with Q4_K weights; between them, pagoda-cuda-microbench (the two
# paths of quantized products by token count); then the engine end to end
# on the CPU cores against the GPU (pagoda-bench compare --backends
# cpu,cuda) and 8b-gqa's baseline against its optimized config on the GPU;
# last, where NVIDIA's ncu is
# installed, each kernel's share of a batch-1 decode step
# (tools/ncu_decode_summary.py). Most telling first, each under a time
# limit, so that a hang or a short lease loses the least.
# Everything goes to $OUT (default build/gpu-bench-out) in at most seven
# files (the device tool returns eight): phases.txt, log.txt (every
# program's output), the two test suites' gtest JSON and three benchmark
# JSONs. A tree built here beforehand by tools/gpu_prebuild.sh (carried as
# build/gpu) saves the build.
#
# usage: tools/gpu_bench.sh [--quick]   (--quick: tiny shapes, a smoke run)
# environment: BUILD_DIR (default build/gpu), CUDACXX (default
# /usr/local/cuda/bin/nvcc). Libraries the GPU machine lacks come from
# .gpu-deps/ (tools/gpu_deps.sh, run before the session and carried).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build/gpu}
out=${OUT:-$root/build/gpu-bench-out}
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
quick=()
if [ "${1:-}" = "--quick" ]; then quick=(--quick); fi
mkdir -p "$out"
status=0
log=$out/log.txt
# When each phase starts (device time is scarce: the next plan needs these).
phase() { echo "$(date +%T) $*" | tee -a "$out/phases.txt" "$log"; }
# step SECONDS COMMAND...: its output to the log; a failure or a timeout
# makes the script fail but does not stop the phases after it.
step() {
    local limit=$1
    shift
    timeout "$limit" "$@" 2>&1 | tee -a "$log" || {
        echo "gpu_bench.sh: failed or over ${limit} s: $*" | tee -a "$out/phases.txt" "$log"
        status=1
    }
}
phase start

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv | tee -a "$log"

# Packages tools/gpu_deps.sh unpacked here (their .pc files name /usr:
# pkgconf prefixes the paths it prints with the sysroot).
deps=$root/.gpu-deps
if [ -d "$deps/usr" ]; then
    export CMAKE_PREFIX_PATH=$deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    export PATH=$deps/usr/bin:$PATH
    export PKG_CONFIG_PATH=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR=$deps
    export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

# A tree tools/gpu_prebuild.sh built for this GPU's architecture is used
# as it is when its programs find the GPU; otherwise (or without one) build.
prebuilt=""
if [ -f "$build/prebuilt-root.txt" ]; then
    prebuilt=$(cat "$build/prebuilt-root.txt")
    # The tests name the module by its absolute build path.
    if [ "$prebuilt" != "$root" ] && [ ! -e "$prebuilt" ]; then
        mkdir -p "$(dirname "$prebuilt")"
        ln -s "$root" "$prebuilt"
    fi
fi
devices=$(mktemp)
if [ -n "$prebuilt" ] && { "$build/app/cli/pagoda-cli" devices >"$devices" 2>&1 || true; } &&
    grep -q "using cuda" "$devices"; then
    phase prebuilt
else
    if [ -n "$prebuilt" ]; then build=$root/build/gpu-native; fi
    phase configure
    generator=()
    if command -v ninja >/dev/null; then generator=(-G Ninja); fi
    cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" \
        -DCMAKE_CUDA_ARCHITECTURES=native -DPAGODA_BUILD_UI=OFF
    phase build
    cmake --build "$build" -j "$(nproc)" --target $(cat "$root/tools/gpu_targets.txt")
    "$build/app/cli/pagoda-cli" devices >"$devices" 2>&1 || true
fi
tee -a "$log" <"$devices"
grep -q "using cuda" "$devices" || { echo "gpu_bench.sh: the CUDA backend is not usable here" | tee -a "$log" >&2; exit 1; }

phase tests
for suite in test_cuda_kernels test_cuda_engine; do
    step 150 "$build/tests/cuda/$suite" --gtest_output="json:$out/$suite.json"
done

phase pagoda-bench gpu
step 300 "$build/app/bench/pagoda-bench" gpu "${quick[@]}" --graphs 1 --json "$out/pagoda_gpu.json"

phase torch peer
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    step 300 python3 "$root/tools/torch_peer.py" "${quick[@]}" --json "$out/torch_peer.json"
else
    echo "skip the PyTorch peer: no torch with CUDA in python3" | tee -a "$log"
fi

phase pagoda-cuda-microbench
# Decode's matvec against cuBLAS and the f16 panels (and the int8 matvec
# of the quantized types); decode attention split for 2 CTAs per SM
# against the kernel's occupancy; prefill attention with K/V tiles of 32
# and 64 positions; where quantized products should switch to f16 panels.
step 150 "$build/bench/pagoda-cuda-microbench"

# pagoda-bench and the module of an earlier commit (tools/gpu_prebuild.sh
# --baseline REV), on the same decode cases, for a before/after ratio from
# one run (to the log only).
if [ -f "$build/baseline/pagoda-bench" ] && [ ${#quick[@]} -eq 0 ]; then
    phase "baseline $(cat "$build/baseline/commit.txt" 2>/dev/null || true)"
    for args in "--presets 7b,8b-gqa" "--presets 8b-gqa --dtype q4_k"; do
        # shellcheck disable=SC2086 # the presets and type are separate words
        PAGODA_CUDA_MODULE=$build/baseline/libpagoda_cuda.so step 150 "$build/baseline/pagoda-bench" gpu $args \
            --batches 1,8 --attention-contexts 4096 --graphs 1
    done
fi

# Decode with programmatic dependent launch (each decode-step kernel
# starting while the one before it finishes), against the run above. To
# the log only.
if [ ${#quick[@]} -eq 0 ]; then
    phase "pagoda-bench gpu dependent launch"
    step 150 "$build/app/bench/pagoda-bench" gpu --presets 7b,8b-gqa --batches 1,8 --attention-contexts 128 \
        --prefill-tokens 1 --graphs 1 --dependent-launch 1
fi

# Last (the costliest to prepare, and optional): decode with K-quant
# weights read in place, the format most local models come in.
if [ ${#quick[@]} -eq 0 ]; then
    phase pagoda-bench gpu q4_k
    step 150 "$build/app/bench/pagoda-bench" gpu --presets 8b-gqa --dtype q4_k --batches 1,8 --attention-contexts 4096 \
        --graphs 1 --json "$out/pagoda_gpu_q4_k.json"
    # The same decode with int8 decode on (Q4_K products over activations
    # rounded to 8 bits, dp4a). To the log only.
    phase "pagoda-bench gpu q4_k int8 decode"
    step 150 "$build/app/bench/pagoda-bench" gpu --presets 8b-gqa --dtype q4_k --batches 1,8 --attention-contexts 128 \
        --prefill-tokens 1 --graphs 1 --int8-matmul 1
fi

# Decode at a long context (3584 positions: 7b holds 4096), where the split-context
# attention kernel's share grows, with the splits planned for the decode
# kernel's occupancy (the microbench's decode attention table has both
# plans on one layer); then over a Q8_0 KV cache, and the Gemmas. To the
# log only.
if [ ${#quick[@]} -eq 0 ]; then
    phase "decode at context 3584"
    step 150 "$build/app/bench/pagoda-bench" gpu --presets 7b,8b-gqa --batches 1,8 --context 3584 --steps 16 \
        --prefill-tokens 1 --attention-contexts 128 --graphs 1
    # The same over a Q8_0 KV cache (the K/V a step reads: 0.53 of F16's).
    phase "decode at context 3584, q8_0 KV"
    step 120 "$build/app/bench/pagoda-bench" gpu --presets 8b-gqa --batches 1,8 --context 3584 --steps 16 \
        --prefill-tokens 1 --attention-contexts 128 --graphs 1 --kv-type q8_0
    # Gemma 3 (GeGLU, post-norms, local layers) and Gemma 2 (soft-capping).
    phase "gemma3-1b and gemma2-2b"
    step 120 "$build/app/bench/pagoda-bench" gpu --presets gemma3-1b,gemma2-2b --batches 1,8 --steps 16 \
        --prefill-tokens 64 --attention-contexts 128 --graphs 1
fi

# The engine end to end (scheduler, continuous batching, paged KV) on the
# machine's CPU cores and on the GPU, the same workload and config on both
# (pagoda-bench compare --backends). To the log only.
if [ ${#quick[@]} -eq 0 ]; then
    phase "compare cpu against cuda"
    step 120 "$build/app/bench/pagoda-bench" compare --preset small --configs optimized,optimized \
        --backends cpu,cuda --toggles 0 --requests 32 --concurrency 8 --prompt-len 128 --gen-len 64
    # A Llama-3-8B shape through the whole engine on the device, baseline
    # against optimized, each with the automatic KV budget (its kv_budget
    # line: four contexts of 8192 tokens, or what the device allowed).
    phase "engine on the device: 8b-gqa, baseline against optimized"
    step 150 "$build/app/bench/pagoda-bench" compare --preset 8b-gqa --configs baseline,optimized \
        --backends cuda,cuda --toggles 0 --requests 8 --concurrency 8 --prompt-len 256 --gen-len 32 \
        --json /dev/stdout
    # The same model split by layer (layers 16-31 on the GPU, 0-15 on the
    # 16 CPU cores) against every layer on the GPU, in one run
    # (--backends ...@L); the split's time by operation shows each side's share.
    phase "8b-gqa split by layer: 16 of 32 layers on the GPU, against 32"
    step 300 "$build/app/bench/pagoda-bench" compare --preset 8b-gqa --configs optimized,optimized \
        --backends cuda@16,cuda@32 --toggles 0 --requests 8 --concurrency 8 --prompt-len 128 --gen-len 16 \
        --kv-budget-mib 4096 --op-times 1
fi

# A decode step's time by operation, each call waited for (--op-times 1):
# unlike the kernel times below, it includes each launch's host side. To
# the log only.
if [ ${#quick[@]} -eq 0 ]; then
    phase "decode by operation"
    step 120 "$build/app/bench/pagoda-bench" gpu --presets 8b-gqa --batches 1,8 --steps 8 --prefill-tokens 1 \
        --attention-contexts 128 --op-times 1
fi

# Where a batch-1 decode step's GPU time goes, per kernel (Nsight Compute,
# one kernel at a time, the clocks and caches left alone), for 8b-gqa with
# F16 and with Q4_K weights: a summary to the log (the CSVs stay on the
# device: $OUT holds at most eight files).
if command -v ncu >/dev/null && [ ${#quick[@]} -eq 0 ]; then
    for type in f16 q4_k; do
        phase "ncu decode $type"
        csv=$(mktemp)
        if timeout 150 ncu --csv --print-units base --metrics gpu__time_duration.sum --clock-control none \
            --cache-control none "$build/app/bench/pagoda-bench" gpu --presets 8b-gqa --dtype "$type" --batches 1 \
            --graphs 0 --context 512 --steps 4 --prefill-tokens 1 --attention-contexts 128 >"$csv" 2>>"$log"; then
            python3 "$root/tools/ncu_decode_summary.py" "$csv" --steps 4 2>&1 | tee -a "$log"
        else
            echo "gpu_bench.sh: ncu of $type decode failed or ran over 150 s" | tee -a "$out/phases.txt" "$log"
            status=1
        fi
        rm -f "$csv"
    done
fi

phase done
echo "results in $out"
exit $status

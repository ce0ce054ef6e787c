#!/usr/bin/env bash
# Run HERE before a GPU session (after tools/gpu_deps.sh): builds the
# targets tools/gpu_bench.sh runs for Hopper (compute capability 9.0, the
# H100 and H200 the device tool lends) into build/gpu (about 35 MB), which
# the device tool then carries (`carry: ["build/gpu", ".gpu-deps"]`), so
# that device time goes to tests and benchmarks rather than to nvcc. The
# tree's absolute path is written to build/gpu/prebuilt-root.txt:
# gpu_bench.sh links that path to wherever the tree lands on the device
# (the tests name the module by its absolute build path), checks that the
# prebuilt programs find the GPU, and builds there only if they do not.
#
# With --baseline REV it also builds pagoda-bench and the CUDA module
# (libpagoda_cuda.so) of commit REV, from a temporary worktree, into
# build/gpu/baseline/: gpu_bench.sh then times decode with them as well
# (the module named by PAGODA_CUDA_MODULE, so that the pair matches
# whatever the module ABI of either commit), so that a change is measured
# against what it replaced on the same GPU in the same run.
#
# usage: tools/gpu_prebuild.sh [--baseline REV]
set -euo pipefail

baseline=""
if [ "${1:-}" = "--baseline" ] && [ -n "${2:-}" ]; then
    baseline=$2
elif [ $# -gt 0 ]; then
    echo "usage: tools/gpu_prebuild.sh [--baseline REV]" >&2
    exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/gpu
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DPAGODA_BUILD_UI=OFF
cmake --build "$build" -j "$(nproc)" --target $(cat "$root/tools/gpu_targets.txt")
echo "$root" >"$build/prebuilt-root.txt"
rm -rf "$build/baseline"
if [ -n "$baseline" ]; then
    worktree=$(mktemp -d)
    git -C "$root" worktree add --detach "$worktree/src" "$baseline"
    cmake -S "$worktree/src" -B "$worktree/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 -DPAGODA_BUILD_UI=OFF
    cmake --build "$worktree/build" -j "$(nproc)" --target pagoda_cuda pagoda-bench
    mkdir -p "$build/baseline"
    cp "$worktree/build/kernels/cuda/libpagoda_cuda.so" "$worktree/build/app/bench/pagoda-bench" "$build/baseline/"
    git -C "$worktree/src" rev-parse HEAD >"$build/baseline/commit.txt"
    git -C "$root" worktree remove --force "$worktree/src"
    rm -rf "$worktree"
fi
du -sh "$build"

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
# usage: tools/gpu_prebuild.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/gpu
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DPAGODA_BUILD_UI=OFF
cmake --build "$build" -j "$(nproc)" --target $(cat "$root/tools/gpu_targets.txt")
echo "$root" >"$build/prebuilt-root.txt"
du -sh "$build"

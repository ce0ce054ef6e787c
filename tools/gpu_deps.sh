#!/usr/bin/env bash
# Run HERE (Debian 12, with network to the Debian mirror) before a GPU
# session: downloads the Debian packages the Qt-free build needs beyond a
# compiler, CMake, ninja and CUDA (spdlog, fmt, GoogleTest, Google
# Benchmark, PCRE2, pkgconf) and unpacks them into .gpu-deps/ (ignored by
# git; about 10 MB), which the device tool then carries (`carry:
# [".gpu-deps"]`). tools/gpu_bench.sh finds it there and points CMake,
# pkg-config and the loader at it; nothing is installed into the GPU
# machine's / (unpacking there can break its system).
#
# usage: tools/gpu_deps.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps=$root/.gpu-deps
packages=(libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libgtest-dev libgmock-dev libbenchmark-dev
          libbenchmark1debian libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
          pkgconf pkgconf-bin libpkgconf3)

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
# apt's sandbox user must be able to write the download folder.
chmod 777 "$download"
(cd "$download" && apt-get download "${packages[@]}")
rm -rf "$deps"
mkdir -p "$deps"
for deb in "$download"/*.deb; do dpkg-deb -x "$deb" "$deps"; done
du -sh "$deps"

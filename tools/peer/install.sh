#!/usr/bin/env bash
# Installs llama.cpp's CPU build, as node-llama-cpp packages it on npm, into
# DIR (default: .peer at the repository root): the peer that
# tests/peer checks our logits against and tools/peer/bench.mjs times.
# Only the x64 Linux binaries: the GPU variants are optional dependencies,
# left out. Needs Node.js 20 and npm (on Debian: the nodejs package).
set -euo pipefail
version=3.22.1
dir=${1:-$(cd "$(dirname "$0")/../.." && pwd)/.peer}
if [ -f "$dir/node_modules/node-llama-cpp/package.json" ] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/node-llama-cpp/package.json"; then
  echo "peer: node-llama-cpp $version present in $dir"
  exit 0
fi
mkdir -p "$dir"
echo "peer: installing node-llama-cpp $version (llama.cpp's CPU build) into $dir"
npm install --prefix "$dir" --no-save --no-audit --no-fund --omit=optional --loglevel=error \
  "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version"

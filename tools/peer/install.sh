#!/usr/bin/env bash
# Installs llama.cpp's CPU build, as node-llama-cpp packages it on npm, into
# DIR (default: .peer at the repository root): the peer that
# tests/peer checks our logits against and tools/peer/bench.mjs times; and
# Hugging Face's Jinja engine (@huggingface/jinja), which renders the
# published chat templates for tests/peer to check ours against.
# Only the x64 Linux binaries: the GPU variants are optional dependencies,
# left out. Needs Node.js 20 and npm (on Debian: the nodejs package).
set -euo pipefail
version=3.22.1
jinja_version=0.5.11
dir=${1:-$(cd "$(dirname "$0")/../.." && pwd)/.peer}
installed() {  # installed PACKAGE VERSION
  grep -qs "\"version\": \"$2\"" "$dir/node_modules/$1/package.json"
}
if installed node-llama-cpp "$version" && installed @huggingface/jinja "$jinja_version"; then
  echo "peer: node-llama-cpp $version and @huggingface/jinja $jinja_version present in $dir"
  exit 0
fi
mkdir -p "$dir"
echo "peer: installing node-llama-cpp $version (llama.cpp's CPU build) and @huggingface/jinja $jinja_version into $dir"
npm install --prefix "$dir" --no-save --no-audit --no-fund --omit=optional --loglevel=error \
  "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version" "@huggingface/jinja@$jinja_version"

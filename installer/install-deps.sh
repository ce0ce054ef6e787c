#!/usr/bin/env bash
# Installs every Debian package Pagoda's build, tests and app need.
# Idempotent: packages already present are skipped. Works as root and uses
# sudo otherwise. Debian 12 (bookworm).
# --peer: also the peers the tests check us against, from npm
# (tools/peer/install.sh: llama.cpp's CPU build and a Jinja engine); they
# need Node.js 20 or later and npm (Debian 12's Node.js is 18), and without
# them those tests are skipped.
set -euo pipefail

if [ $# -gt 1 ] || { [ $# -eq 1 ] && [ "$1" != "--peer" ]; }; then
  echo "usage: $0 [--peer]" >&2
  exit 2
fi

install_peer() {
  local node_major
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null; then
    echo "install-deps: no Node.js 20+ with npm here: the peers are not installed and their tests are skipped"
  elif ! "$(dirname "$0")/../tools/peer/install.sh"; then
    echo "install-deps: installing the peers from npm failed: their tests are skipped"
  fi
}

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  # engine
  libspdlog-dev libfmt-dev libpcre2-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # desktop app (Qt 6 Widgets, QCustomPlot) and running it headless
  qt6-base-dev qt6-base-dev-tools libqcustomplot-dev libqcustomplot2.1-qt6
  libgl-dev libxkbcommon-dev xvfb xauth libxcb-cursor0 fonts-dejavu-core fontconfig
  # packaging
  dpkg-dev file
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--peer" ]; then
  install_peer
fi

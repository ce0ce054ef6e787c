#!/usr/bin/env bash
# Installs every Debian package Pagoda's build, tests and app need.
# Idempotent: packages already present are skipped. Works as root and uses
# sudo otherwise. Debian 12 (bookworm).
set -euo pipefail

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
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Screenshot of the real app on a virtual X display: starts `pagoda --demo`
# (two tabs generating at once on the default synthetic model, created on
# first use) with a throwaway data folder, waits, and saves the whole screen
# with ImageMagick's `import -window root`.
#
#   tools/screenshot.sh [path/to/pagoda] [out.png]
#
# Defaults: build/release/app/pagoda/pagoda, docs/screenshots/pagoda.png.
# PAGODA_SCREENSHOT_WAIT: seconds between start and shot (default 12: on
# the 2-core build machine the demo's replies were done by 30).
# Needs xvfb-run (installer/install-deps.sh) and ImageMagick (installed here
# when missing).
set -euo pipefail
if ! command -v import >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends imagemagick
fi
root=$(cd "$(dirname "$0")/.." && pwd)
app=$(realpath "${1:-$root/build/release/app/pagoda/pagoda}")
out=$(realpath -m "${2:-$root/docs/screenshots/pagoda.png}")
wait=${PAGODA_SCREENSHOT_WAIT:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

# A 30 s plot window, of which the shot shows the first seconds.
printf '[profiler]\nwindow=30\n' > "$work/settings.ini"

xvfb-run -a -s "-screen 0 1600x1000x24" bash -c '
  "$1" --demo --data-dir "$2/data" --settings "$2/settings.ini" -geometry 1600x1000+0+0 &
  pid=$!
  sleep "$3"
  import -window root "$4"
  kill "$pid"
  wait "$pid" || true
' screenshot "$app" "$work" "$wait" "$out"
echo "screenshot: $out"

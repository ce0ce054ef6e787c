#!/usr/bin/env bash
# Renders the hand-drawn SVG icons in resources/icons/svg/ to the PNGs the
# app embeds (resources/icons/*.png, 48 px) and the application icon at the
# hicolor sizes the installer ships (resources/icons/hicolor/<N>x<N>/pagoda.png).
# Needs rsvg-convert (apt-get install librsvg2-bin). Run after editing an SVG.
set -euo pipefail
cd "$(dirname "$0")/../resources/icons"
for svg in svg/*.svg; do
  name=$(basename "$svg" .svg)
  [ "$name" = pagoda ] && continue  # the app icon comes from hicolor/
  rsvg-convert -w 48 -h 48 "$svg" -o "$name.png"
done
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "hicolor/${size}x${size}"
  rsvg-convert -w "$size" -h "$size" svg/pagoda.svg -o "hicolor/${size}x${size}/pagoda.png"
done
echo "render_icons: $(ls ./*.png | wc -l) app icons, $(ls hicolor | wc -l) hicolor sizes"

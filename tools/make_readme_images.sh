#!/usr/bin/env bash
# Copy pictures produced by `make demo` into docs/images for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-demo_out/run}
cp "$run/previews/overlay_cam0.png" docs/images/demo_overlay.png
cp "$run/previews/points_turntable.png" docs/images/demo_points.png
echo "copied demo previews from $run to docs/images/"

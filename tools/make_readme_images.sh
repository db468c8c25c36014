#!/usr/bin/env bash
# Copy pictures produced by `make demo` into docs/images for the README, and make the visual-hull
# picture: one capture without depth maps, lifted from the hull as the views carve and label it,
# and cut to the skeleton with the skeleton's vote on the labels and only the rims kept
# (`lifting.hull_skeleton_margin`, `hull_skeleton_vote`, `hull_rim_distance`), the two turntables
# one above the other.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-demo_out/run}
cp "$run/previews/overlay_cam0.png" docs/images/demo_overlay.png
cp "$run/previews/points_turntable.png" docs/images/demo_points.png
echo "copied demo previews from $run to docs/images/"

hull=demo_out/hull
oh=.venv/bin/openhuman
[ -d "$hull/capture" ] || $oh synth "$hull/capture" --clip punch --frames 24 --no-depth
printf 'lifting:\n  hull_skeleton_margin: 0\n  hull_skeleton_vote: 0\n  hull_rim_distance: 0\n' > "$hull/uncut.yaml"
rm -rf "$hull/uncut" "$hull/cut"  # made again: an earlier version's runs would not resume
$oh run "$hull/capture" --out "$hull/uncut" --config "$hull/uncut.yaml" --no-progress
$oh run "$hull/capture" --out "$hull/cut" --no-progress
.venv/bin/python - "$hull" <<'PY'
import sys
import numpy as np
from openhuman.io import read_png, write_png_atomic
root = sys.argv[1]
a, b = (read_png(f"{root}/{name}/previews/points_turntable.png") for name in ("uncut", "cut"))
write_png_atomic("docs/images/hull_points.png", np.concatenate([a, np.full((4, a.shape[1], 3), 255, np.uint8), b]))
PY
echo "wrote docs/images/hull_points.png (visual hull uncut above; cut to the skeleton, voted and only its rims kept below)"

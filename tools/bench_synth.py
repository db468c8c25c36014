"""Benchmark the synthetic capture generator: render, generate (render + write) and decode speed.

    .venv/bin/python tools/bench_synth.py --size 640x480 --views 4 --frames 30 --out bench_out/synth.json

Rates are per view-frame (one camera image). "render" poses and renders only; "generate" is
`generate_capture` end to end (render + lossless video + depth/GT PNGs + gt/3d); "decode" reads
every written video back through `openhuman.capture.Capture.frames`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="walk", help="clip name (default walk)")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    ap.add_argument("--lossy", action="store_true", help="yuv420p videos instead of lossless RGB")
    ap.add_argument("--out", default="bench_out/synth.json", help="JSON results file")
    return ap.parse_args()


def main() -> None:
    args = _parse_args()
    from openhuman.capture import Capture
    from openhuman.synth import SynthConfig, SynthScene, generate_capture
    from openhuman.synth.generate import parse_size

    width, height = parse_size(args.size)
    cfg = SynthConfig(
        clips=(args.clip,), views=args.views, frames=args.frames, width=width, height=height, lossless=not args.lossy
    )
    n = args.views * args.frames

    with SynthScene(cfg) as synth:
        t0 = time.perf_counter()
        for _ in synth.frames():
            pass
        render_s = time.perf_counter() - t0

    tmp = Path(tempfile.mkdtemp(prefix="bench_synth."))
    try:
        t0 = time.perf_counter()
        root = generate_capture(tmp / "capture", cfg)
        generate_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1e6

        cap = Capture.open(root)
        t0 = time.perf_counter()
        decoded = sum(1 for v in cap.view_ids for _ in cap.frames(v))
        decode_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [
        ("render (pose + TinyRenderer + labels + gt/3d)", n, render_s),
        ("generate (render + write capture)", n, generate_s),
        ("decode (Capture.frames, all views)", decoded, decode_s),
    ]
    print(f"synth bench: clip={args.clip} {args.views} views x {args.frames} frames at {width}x{height}, "
          f"{'lossy' if args.lossy else 'lossless'} videos, capture {size_mb:.1f} MB")  # fmt: skip
    print(f"{'stage':<48} {'view-frames':>11} {'seconds':>9} {'frames/s':>9}")
    for name, count, secs in rows:
        print(f"{name:<48} {count:>11d} {secs:>9.2f} {count / secs:>9.1f}")

    result = {
        "config": {"clip": args.clip, "views": args.views, "frames": args.frames, "width": width, "height": height,
                   "lossless": not args.lossy},
        "capture_mb": round(size_mb, 2),
        "render_fps": n / render_s,
        "generate_fps": n / generate_s,
        "decode_fps": decoded / decode_s,
        "seconds": {"render": render_s, "generate": generate_s, "decode": decode_s},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

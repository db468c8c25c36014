"""Benchmark the per-frame parser: frames/s per view and mIoU (body14 + PPP) on synthetic captures.

Generates one capture per clip (4 views by default, 640x480) in a temporary folder with
openhuman.synth, evaluates the parser on each, prints tables and writes JSON.

    .venv/bin/python tools/bench_parse.py --clips run jump dance_a --frames 20 --out bench_out/parse.json

The default clips exclude "walk", which the landmark geometry was tuned on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=["run", "jump", "dance_a"], help="synthetic clips to evaluate")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20, help="frames per clip")
    ap.add_argument("--size", default="640x480", help="WxH of the synthetic views")
    ap.add_argument("--backend", default="mediapipe")
    ap.add_argument("--static", action="store_true", help="parse frames as unrelated photos")
    ap.add_argument("--no-hands", action="store_true")
    ap.add_argument("--no-face", action="store_true")
    ap.add_argument("--no-mask-refine", action="store_true", help="mediapipe.mask_refine_radius = 0 (ablation)")
    ap.add_argument("--no-mask-carve", action="store_true", help="mediapipe.mask_carve_threshold = 0 (ablation)")
    ap.add_argument("--out", default="bench_out/parse.json")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from openhuman.evaluate import PPP, EvalResult, evaluate_capture, results_table
    from openhuman.io import write_json_atomic
    from openhuman.parsing.config import ParserConfig
    from openhuman.synth import SynthConfig, generate_capture
    from openhuman.synth.generate import parse_size

    w, h = parse_size(args.size)
    cfg = ParserConfig(backend=args.backend)
    cfg.mediapipe.static_image_mode = args.static
    cfg.mediapipe.use_hands = not args.no_hands
    cfg.mediapipe.use_face = not args.no_face
    if args.no_mask_refine:
        cfg.mediapipe.mask_refine_radius = 0
    if args.no_mask_carve:
        cfg.mediapipe.mask_carve_threshold = 0.0
    console = Console()
    total = EvalResult()
    per_clip = {}
    steady_fps: list[float] = []
    speed = Table(title=f"parse speed ({args.backend}, {w}x{h})")
    for col in ("clip", "view", "frames", "frames/s", "steady frames/s"):
        speed.add_column(col, justify="right" if col != "clip" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            t0 = time.perf_counter()
            cap = generate_capture(
                Path(tmp) / clip,
                SynthConfig(clips=(clip,), views=args.views, frames=args.frames, width=w, height=h, seed=1),
            )
            gen_s = time.perf_counter() - t0
            res = evaluate_capture(cap, cfg)
            for v, conf in res.views.items():
                total.views[f"{clip}/{v}"] = conf
                total.view_frames[f"{clip}/{v}"] = res.view_frames[v]
                total.view_seconds[f"{clip}/{v}"] = res.view_seconds[v]
                fps = res.view_frames[v] / res.view_seconds[v]
                steady = res.steady_fps(v)
                steady_fps.append(steady or 0.0)
                speed.add_row(clip, v, str(res.view_frames[v]), f"{fps:.1f}", f"{steady or 0:.1f}")
            per_clip[clip] = {"generate_s": round(gen_s, 2), **res.to_dict()}
            console.print(results_table(res, title=f"IoU on synthetic clip {clip!r}"))
    console.print(speed)
    overall = total.to_dict()["overall"]
    fps = total.frames / total.parse_seconds
    console.print(
        f"[bold]overall[/]: {total.frames} view-frames, {fps:.1f} frames/s (median steady "
        f"{float(np.median(steady_fps)):.1f}), body14 mIoU "
        f"{overall['body14']['miou']:.3f}, PPP mIoU {overall[PPP]['miou']:.3f}, person IoU {overall['person_iou']:.3f}"
    )
    report = {
        "config": vars(args), "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "overall": overall, "parse_fps": round(fps, 2),
        "median_steady_fps": round(float(np.median(steady_fps)), 2), "clips": per_clip,
    }  # fmt: skip
    write_json_atomic(args.out, json.loads(json.dumps(report, default=_jsonable)))
    console.print(f"written {args.out}")


def _jsonable(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


if __name__ == "__main__":
    from openhuman.native_log import filter_native_stderr

    filter_native_stderr()  # mediapipe's start-up chatter off the table
    main()

"""Benchmark the training-free CLIP+SAM backend: frames/s and per-class IoU on a synthetic capture.

    .venv/bin/python tools/bench_clipsam.py --sizes tiny,vit_b --out bench_out/clipsam.json
    .venv/bin/python tools/bench_clipsam.py --sizes vit_b --vitb-frames 2 --cpu-bf16   # bfloat16 image encoders

Sizes: "tiny" (tiny SAM + tiny CLIP) and "vit_b" (SAM ViT-B + open_clip ViT-B-16). Without
--sam-checkpoint/--clip-checkpoint the models have RANDOM weights: the speed is real, the IoU
table is meaningless (it exists for users with real weights; pass the checkpoint files to get a
real table for vit_b). Pose comes from mediapipe on the synthetic frames, as in normal use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIZES = {
    "tiny": {"sam_model": "tiny", "clip_model": "tiny", "clip_short_side": 64},
    "vit_b": {"sam_model": "vit_b", "clip_model": "ViT-B-16", "clip_short_side": 448},
}


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="tiny,vit_b", help="comma list of tiny, vit_b")
    ap.add_argument("--frames", type=int, default=4, help="frames parsed with the tiny models")
    ap.add_argument("--vitb-frames", type=int, default=1, help="frames parsed with ViT-B (~15-30 s each on CPU)")
    ap.add_argument("--clip", default="jump", help="synthetic clip (default jump, not used for tuning)")
    ap.add_argument("--size", default="320x240", help="synthetic image size WIDTHxHEIGHT")
    ap.add_argument("--attention", default="trase", choices=["original", "vv", "qqkk", "trase"])
    ap.add_argument("--sam-checkpoint", default=None, help="sam_vit_b_01ec64.pth for vit_b (real weights)")
    ap.add_argument("--clip-checkpoint", default=None, help="open_clip ViT-B-16 checkpoint for vit_b")
    ap.add_argument("--cpu-bf16", action="store_true", help="SAM and CLIP image encoders in bfloat16 (parser.cpu_bf16)")
    ap.add_argument("--out", default="bench_out/clipsam.json", help="JSON results file")
    return ap.parse_args()


def _capture(tmp: Path, clip: str, size: str, frames: int) -> Any:
    from openhuman.capture import Capture
    from openhuman.synth import SynthConfig, generate_capture
    from openhuman.synth.generate import parse_size

    w, h = parse_size(size)
    cfg = SynthConfig(clips=(clip,), views=1, frames=frames, width=w, height=h, depth=False, gt_points=100)
    return Capture.open(generate_capture(tmp / "capture", cfg))


def _parser(size: str, args: argparse.Namespace) -> tuple[Any, bool]:
    from openhuman.parsing.clipsam.backend import ClipSamParser
    from openhuman.parsing.clipsam.config import ClipSamConfig
    from openhuman.parsing.config import ParserConfig

    real = size == "vit_b" and bool(args.sam_checkpoint and args.clip_checkpoint)
    ccfg = ClipSamConfig(**SIZES[size], attention=args.attention, allow_random_init=not real)  # type: ignore[arg-type]
    if real:
        ccfg.sam_checkpoint, ccfg.clip_checkpoint = args.sam_checkpoint, args.clip_checkpoint
    return ClipSamParser.from_config(ParserConfig(backend="clipsam", clipsam=ccfg, cpu_bf16=args.cpu_bf16)), real


def _run_size(size: str, cap: Any, n: int, args: argparse.Namespace) -> dict[str, Any]:
    from openhuman.metrics import confusion_matrix, iou_per_class, mean_iou
    from openhuman.ontology import BODY14, NUM_CLASSES

    t0 = time.perf_counter()
    parser, real = _parser(size, args)
    build_s = time.perf_counter() - t0
    view = cap.view_ids[0]
    conf = None
    times = []
    for frame in cap.frames(view, max_frames=n):
        t = time.perf_counter()
        parse = parser(frame)
        times.append(time.perf_counter() - t)
        c = confusion_matrix(parse.labels, cap.gt_2d(view, frame.index), NUM_CLASSES)
        conf = c if conf is None else conf + c
    parser.close()
    stages = {k: round(v / max(len(times), 1), 3) for k, v in parser.stage_seconds.items()}
    timed = times[1:] if len(times) > 1 else times  # the first call warms caches up
    per_frame = sum(timed) / max(len(timed), 1)
    ious: list[float] = [] if conf is None else iou_per_class(conf).tolist()
    return {
        "size": size,
        "real_weights": real,
        "frames": len(times),
        "build_s": round(build_s, 2),
        "s_per_frame": round(per_frame, 3),
        "frames_per_s": round(1.0 / per_frame, 3) if per_frame > 0 else None,
        "stage_s_per_frame": stages,
        "iou": {BODY14[i]: (None if v != v else round(float(v), 4)) for i, v in enumerate(ious)},
        "miou_parts": round(mean_iou(conf), 4) if conf is not None else None,
    }


def _print_tables(results: list[dict[str, Any]]) -> None:
    head = f"{'size':<8}{'weights':<9}{'frames':>7}{'build s':>9}{'s/frame':>9}{'frames/s':>10}"
    print(f"\n{head}{'pose s':>8}{'sam s':>8}{'clip s':>8}")
    for r in results:
        weights = "real" if r["real_weights"] else "RANDOM"
        st = r["stage_s_per_frame"]
        row = f"{r['size']:<8}{weights:<9}{r['frames']:>7}{r['build_s']:>9.2f}{r['s_per_frame']:>9.3f}"
        print(f"{row}{r['frames_per_s']:>10.3f}{st['pose']:>8.3f}{st['sam']:>8.3f}{st['clip']:>8.3f}")
    for r in results:
        print(f"\nper-class IoU, {r['size']} ({'real weights' if r['real_weights'] else 'RANDOM WEIGHTS'}):")
        if not r["real_weights"]:
            print("  !! random-initialised SAM/CLIP: this table is MEANINGLESS (it shows the pipeline runs);")
            print("  !! pass --sam-checkpoint/--clip-checkpoint with real weights for a real one.")
        for name, v in r["iou"].items():
            print(f"  {name:<16}{'-' if v is None else f'{v:.3f}':>8}")
        print(f"  {'mIoU (parts)':<16}{r['miou_parts']:>8.3f}")


def main() -> None:
    args = _parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)}")
    n_frames = max(args.frames, args.vitb_frames)
    with tempfile.TemporaryDirectory() as tmp:
        cap = _capture(Path(tmp), args.clip, args.size, n_frames)
        results = [_run_size(s, cap, args.frames if s == "tiny" else args.vitb_frames, args) for s in sizes]
    _print_tables(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "clip": args.clip}
    meta |= {"load_avg_1min": round(os.getloadavg()[0], 2)}
    meta |= {"image_size": args.size, "attention": args.attention, "cpu_bf16": args.cpu_bf16}
    note = "IoU with random weights is meaningless; speed only" if not all(r["real_weights"] for r in results) else ""
    out.write_text(json.dumps({"meta": meta, "note": note, "results": results}, indent=2), encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

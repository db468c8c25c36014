"""Benchmark temporal association on a synthetic capture: keyframe interval k vs speed and quality.

For each setting (k = 1, 2, 4, 8 with the configured smoothing and bidirectional keyframes, plus
raw per-frame parsing with no smoothing, and k = 4 with keyframes pulled forward only) it runs
`ViewTracker` over the same in-memory frames with the mediapipe parser (or `--backend schnet`
with a checkpoint) and reports frames/s (parser included; decoding and each sequence's first
frame, when the models load, excluded), mIoU, temporal flip rate and J&F against the capture's
2D ground truth. Prints a table and writes JSON (default bench_out/tracking.json). The "still"
column is the part of the flip rate away from moving ground-truth boundaries (flicker where
nothing moves; `tracking.metrics.SequenceScores.still_flip_rate`).

Every view of the capture is one sequence (the parser is reset between them); the table gives
frames/s over all sequences and the mean mIoU / flip rate / J&F of the sequences. A single
60-frame view is a noisy sample: which frames mediapipe sees changes its tracking state, so
mIoU moves by a few hundredths with the parse schedule alone.

    .venv/bin/python tools/bench_tracking.py                 # walk and dance_a, 4 views each, 60 frames
    .venv/bin/python tools/bench_tracking.py --backend schnet --checkpoint runs/schnet_gpu_mix/best.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

log = logging.getLogger("bench_tracking")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capture", type=Path, help="existing capture dir (default: generate a synthetic one)")
    p.add_argument("--clips", nargs="+", default=["walk", "dance_a"], help="synthetic clips (when generating)")
    p.add_argument("--frames", type=int, default=60, help="frames per clip (when generating)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--views", type=int, default=4, help="synthetic views (when generating); each is one sequence")
    p.add_argument("--view", default=None, help="run on this view id only (default: every view)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], help="keyframe intervals")
    p.add_argument("--smoothing", choices=["ema", "window", "none"], default="ema")
    p.add_argument("--flow", choices=["dis", "farneback"], default="dis")
    p.add_argument("--flow-scale", type=float, default=None, help="TrackingConfig.flow_scale (default: the config's)")
    p.add_argument(
        "--flow-check",
        choices=["auto", "residual", "forward_backward"],
        default="auto",
        help="TrackingConfig.flow_check: which flow vectors count as reliable (auto: residual at k=1, round trip at k>1)",
    )
    p.add_argument("--no-mask-carve", action="store_true", help="mediapipe.mask_carve_threshold = 0 (ablation)")
    p.add_argument("--static-image", action="store_true", help="mediapipe in static-image mode (no landmark smoothing)")
    p.add_argument(
        "--forward-only", action="store_true", help="keyframes pulled forward only (TrackingConfig.bidirectional=False)"
    )
    p.add_argument(
        "--drift-max-inconsistent",
        type=float,
        default=None,
        help="TrackingConfig.drift_max_inconsistent (default: the config's)",
    )
    p.add_argument(
        "--snap-radius", type=int, default=None, help="TrackingConfig.snap_radius (default: the config's; 0 = off)"
    )
    p.add_argument("--backend", choices=["mediapipe", "schnet"], default="mediapipe", help="parser backend")
    p.add_argument("--checkpoint", default=None, help="SCHNet checkpoint (with --backend schnet)")
    p.add_argument("--pose-sides", action="store_true", help="schnet.pose_sides: limb sides from mediapipe")
    p.add_argument("--repeats", type=int, default=1, help="runs per setting; the fastest is reported")
    p.add_argument("--out", type=Path, default=Path("bench_out/tracking.json"))
    return p.parse_args()


def _load(args: argparse.Namespace, tmp: Path) -> list[tuple[str, list, list]]:
    """Sequences (name, frames list[Frame], gts list[uint8 [H, W]]): every view of every clip."""
    from openhuman.capture import Capture

    roots = [args.capture] if args.capture is not None else []
    if not roots:
        from openhuman.synth import SynthConfig, generate_capture

        for clip in args.clips:
            cfg = SynthConfig(clips=(clip,), views=args.views, frames=args.frames, width=args.width, height=args.height)
            t = time.perf_counter()
            roots.append(generate_capture(tmp / clip, cfg))
            log.info("generated %s in %.1f s", roots[-1], time.perf_counter() - t)
    seqs = []
    for root in roots:
        cap = Capture.open(root)
        if not cap.has_gt_2d:
            raise SystemExit(f"{root} has no gt/2d ground truth")
        for view in [args.view] if args.view else cap.view_ids:
            frames = list(cap.frames(view))
            seqs.append((f"{Path(root).name}/{view}", frames, [cap.gt_2d(view, f.index) for f in frames]))
    return seqs


def _run(parser, seqs: list[tuple[str, list, list]], cfg, repeats: int) -> dict:
    from tracking.metrics import SequenceEvaluator
    from tracking.view_tracker import ViewTracker

    total, n, parsed, propagated, per_seq = 0.0, 0, 0, 0, []
    reparse: dict[str, int] = {}
    for name, frames, gts in seqs:
        best = None
        for _ in range(repeats):
            parser.reset()
            tracker = ViewTracker(parser, cfg)
            outs = [o.labels for o in tracker.push(frames[0])]  # start-up (the view's models load): not timed
            t = time.perf_counter()
            for frame in frames[1:]:
                outs += [o.labels for o in tracker.push(frame)]
            outs += [o.labels for o in tracker.flush()]
            elapsed = time.perf_counter() - t
            if best is None or elapsed < best[0]:
                best = (elapsed, outs, tracker.stats)
        assert best is not None
        elapsed, outs, stats = best
        ev = SequenceEvaluator()
        for pred, gt in zip(outs, gts, strict=True):
            ev.update(pred, gt)
        s = ev.result()
        total, n = total + elapsed, n + len(frames) - 1
        parsed, propagated = parsed + stats.parsed, propagated + stats.propagated
        for k, v in stats.reparse.items():
            reparse[k] = reparse.get(k, 0) + v
        per_seq.append({"sequence": name, "miou": s.miou, "flip_rate": s.flip_rate, "still_flip_rate": s.still_flip_rate,
                        "jf": s.jf, "parsed": stats.parsed})  # fmt: skip
    mean = {key: sum(r[key] for r in per_seq) / len(per_seq) for key in ("miou", "flip_rate", "still_flip_rate", "jf")}
    return {
        "k": cfg.keyframe_interval,
        "smoothing": cfg.smoothing,
        "bidirectional": cfg.bidirectional,
        "fps": n / total,
        "ms_per_frame": 1000 * total / n,
        "parsed": parsed,
        "propagated": propagated,
        "reparse": reparse,
        **mean,
        "sequences": per_seq,
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _args()
    from openhuman.parsing import Parser
    from openhuman.parsing.config import MediapipeConfig, ParserConfig
    from openhuman.parsing.schnet.config import SchnetConfig
    from tracking.config import TrackingConfig

    with tempfile.TemporaryDirectory() as tmp:
        seqs = _load(args, Path(tmp))
        mp_cfg = MediapipeConfig(static_image_mode=args.static_image)
        if args.no_mask_carve:
            mp_cfg.mask_carve_threshold = 0.0
        parser = Parser.from_config(
            ParserConfig(
                backend=args.backend,
                mediapipe=mp_cfg,
                schnet=SchnetConfig(checkpoint=args.checkpoint, pose_sides=args.pose_sides),
            )
        )
        base = TrackingConfig(
            flow=args.flow, smoothing=args.smoothing, bidirectional=not args.forward_only, flow_check=args.flow_check
        )
        if args.flow_scale is not None:
            base = dataclasses.replace(base, flow_scale=args.flow_scale)
        if args.snap_radius is not None:
            base = dataclasses.replace(base, snap_radius=args.snap_radius)
        if args.drift_max_inconsistent is not None:
            base = dataclasses.replace(base, drift_max_inconsistent=args.drift_max_inconsistent)
        settings = [dataclasses.replace(base, keyframe_interval=1, smoothing="none")]
        settings += [dataclasses.replace(base, keyframe_interval=k) for k in args.k]
        if not args.forward_only and 4 in args.k:  # what bidirectional keyframes add at k=4
            settings.append(dataclasses.replace(base, keyframe_interval=4, bidirectional=False))
        rows = []
        for cfg in settings:
            rows.append(_run(parser, seqs, cfg, args.repeats))
            log.info("k=%d %s: %.1f fps", cfg.keyframe_interval, cfg.smoothing, rows[-1]["fps"])
        parser.close()
    _report(rows, args, seqs)


def _report(rows: list[dict], args: argparse.Namespace, seqs: list[tuple[str, list, list]]) -> None:
    raw = rows[0]
    k1 = next((r for r in rows[1:] if r["k"] == 1), raw)

    def keys(r: dict) -> str:
        return "-" if r["k"] == 1 else "both" if r["bidirectional"] else "forward"

    header = f"{'k':>2} {'smoothing':>9} {'keys':>7} {'fps':>7} {'x raw':>6} {'x k=1':>6} {'parsed':>6} {'prop':>5} {'mIoU':>6} {'flip':>7} {'still':>7} {'J&F':>6}  reparse"
    print(header)
    for r in rows:
        reparse = ", ".join(f"{k}={v}" for k, v in r["reparse"].items() if v)
        print(
            f"{r['k']:>2} {r['smoothing']:>9} {keys(r):>7} {r['fps']:7.1f} {r['fps'] / raw['fps']:6.2f} {r['fps'] / k1['fps']:6.2f}"
            f" {r['parsed']:>6} {r['propagated']:>5} {r['miou']:6.3f} {r['flip_rate']:7.4f} {r['still_flip_rate']:7.4f} {r['jf']:6.3f}  {reparse}"
        )
    result = {
        "capture": str(args.capture or "generated"),
        "clips": args.clips,
        "sequences": [name for name, _, _ in seqs],
        "frames": sum(len(f) for _, f, _ in seqs),
        "size": [seqs[0][1][0].width, seqs[0][1][0].height],
        "flow": args.flow,
        "flow_check": args.flow_check,
        "static_image": args.static_image,
        "mask_carve": not args.no_mask_carve,
        "backend": args.backend,
        "drift_max_inconsistent": args.drift_max_inconsistent,
        "snap_radius": args.snap_radius,
        "checkpoint": args.checkpoint,
        "pose_sides": args.pose_sides,
        "bidirectional": not args.forward_only,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from openhuman.native_log import filter_native_stderr

    filter_native_stderr()  # mediapipe's start-up chatter off the table
    main()

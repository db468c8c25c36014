"""Fit the mediapipe backend's part geometry (`_bodysplit.RADIUS` and `BIAS`) to synthetic captures.

Parses every frame of in-place synthetic captures once (video mode, the configured parser) and
keeps what the landmark geometry needs: each frame's landmarks, hand/face refinements and final
person probability. Replaying those through `split_people` gives the parser's labels exactly,
for any widths and biases, in a few ms a frame. Coordinate descent then moves each part's width
(by a fraction) and bias (by an amount), left and right tied, and keeps a step while body14 mIoU
on the fitting clips rises. The check clips are scored before and after; nothing in the source
changes: paste the printed arrays into `openhuman/parsing/_bodysplit.py`. Frames with more than
one person or nobody are scored as the parser labelled them (all background without a person).

    .venv/bin/python tools/fit_bodysplit.py                  # walk kick punch spin; check on 6 others
    .venv/bin/python tools/fit_bodysplit.py --frames 10 --check run --rounds 1
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("fit_bodysplit")

PAIRS = [(1,), (2,), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14)]
"""body14 ids moved together (left and right tied)."""
STEPS = [(0.15, 0.15), (0.08, 0.08), (0.04, 0.04)]
"""Per round: (relative width step, bias step)."""


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", nargs="+", default=["walk", "kick", "punch", "spin"], help="clips to fit on")
    ap.add_argument("--check", nargs="*", default=["run", "jump", "dance_a", "dance_b", "spinkick", "cartwheel"])
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", default="640x480", help="WxH of the synthetic views")
    ap.add_argument("--rounds", type=int, default=3, help=f"coordinate-descent rounds (at most {len(STEPS)})")
    ap.add_argument("--out", type=Path, default=Path("bench_out/fit_bodysplit.json"))
    return ap.parse_args()


def _cache(clip: str, args: argparse.Namespace, tmp: Path) -> tuple[list, float]:
    """Replay records [(geometry or None, person probability float16 or None, gt uint8)] of every
    view-frame of one in-place capture, and the live parser's body14 mIoU on them."""
    from openhuman.capture import Capture
    from openhuman.metrics import confusion_matrix, mean_iou
    from openhuman.ontology import NUM_CLASSES
    from openhuman.parsing.config import MediapipeConfig
    from openhuman.parsing.mediapipe_backend import MediapipeParser
    from openhuman.synth import SynthConfig, generate_capture
    from openhuman.synth.generate import parse_size

    class Recorder(MediapipeParser):
        """Keeps what the geometry needs of the frame just parsed (one person only)."""

        last: tuple | None = None

        def person_probability(self, rgb, people):  # type: ignore[no-untyped-def]
            p = super().person_probability(rgb, people)
            self.last = ((people[0].pose.landmarks, people[0].ref), p) if len(people) == 1 else None
            return p

    w, h = parse_size(args.size)
    cfg = SynthConfig(clips=(clip,), views=args.views, frames=args.frames, width=w, height=h, root_motion="in_place")
    cap = Capture.open(generate_capture(tmp / clip, cfg))
    records, conf = [], np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    parser = Recorder(MediapipeConfig())
    try:
        for view in cap.view_ids:
            for frame in cap.frames(view):
                parser.last = None
                labels = parser(frame).labels
                gt = cap.gt_2d(view, frame.index).astype(np.uint8)
                conf += confusion_matrix(labels, gt, NUM_CLASSES)
                geom, p = parser.last if parser.last is not None else (None, None)
                records.append(
                    (geom, None if p is None else p.astype(np.float16), labels if geom is None else None, gt)
                )
    finally:
        parser.close()
    return records, mean_iou(conf)


def replay(records: list, radius: np.ndarray, bias: np.ndarray, grid_size: int = 160) -> float:
    """body14 mIoU of the cached frames with these part widths and biases."""
    import openhuman.parsing._bodysplit as bodysplit
    from openhuman.metrics import confusion_matrix, mean_iou
    from openhuman.ontology import NUM_CLASSES
    from openhuman.parsing._compose import full_resolution
    from openhuman.parsing.mediapipe_backend import split_people

    saved = bodysplit.RADIUS, bodysplit.BIAS
    bodysplit.RADIUS, bodysplit.BIAS = radius, bias
    try:
        conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        for geom, p16, labels, gt in records:
            if geom is not None:
                p = p16.astype(np.float32)
                labels = np.zeros(p.shape, np.int16)
                split = split_people(p, [geom], [p], grid_size)
                if split is not None:
                    (x0, y0, x1, y1), _owner, q, p_crop = split
                    labels[y0:y1, x0:x1] = full_resolution(q, p_crop)[1]
            conf += confusion_matrix(labels, gt, NUM_CLASSES)
        return mean_iou(conf)
    finally:
        bodysplit.RADIUS, bodysplit.BIAS = saved


def fit(records: list, radius: np.ndarray, bias: np.ndarray, rounds: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Coordinate descent from (radius, bias): (radius, bias, mIoU) never below the start's."""
    best = replay(records, radius, bias)
    for r, (width_step, bias_step) in enumerate(STEPS[:rounds]):
        for ids in PAIRS:
            for kind in ("width", "bias"):
                for sign in (1, -1):
                    while True:
                        r2, b2 = radius.copy(), bias.copy()
                        for i in ids:
                            if kind == "width":
                                r2[i] *= 1 + sign * width_step
                            else:
                                b2[i] += sign * bias_step
                        score = replay(records, r2, b2)
                        if score <= best + 1e-4:
                            break
                        radius, bias, best = r2, b2, score
                        log.info("round %d: %s of %s %s -> %.4f", r, kind, ids, "+" if sign > 0 else "-", best)
    return radius, bias, best


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _args()
    import openhuman.parsing._bodysplit as bodysplit
    from openhuman.io import write_json_atomic

    start_r, start_b = bodysplit.RADIUS.copy(), bodysplit.BIAS.copy()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cached = {c: _cache(c, args, Path(tmp)) for c in dict.fromkeys(args.fit + args.check)}
    log.info("parsed %d clips in %.0f s", len(cached), time.perf_counter() - t0)
    fit_records = [r for c in args.fit for r in cached[c][0]]
    radius, bias, score = fit(fit_records, start_r.copy(), start_b.copy(), args.rounds)
    rows = []
    for clip, (records, live) in cached.items():
        role = "fit" if clip in args.fit else "check"
        rows.append({"clip": clip, "role": role, "live": live, "replayed": replay(records, start_r, start_b),
                     "fitted": replay(records, radius, bias)})  # fmt: skip
    print(f"{'clip':<10} {'role':<6} {'live':>7} {'replay':>7} {'fitted':>7}")
    for row in rows:
        print(f"{row['clip']:<10} {row['role']:<6} {row['live']:7.4f} {row['replayed']:7.4f} {row['fitted']:7.4f}")
    check = [r for c in args.check for r in cached[c][0]]
    summary = {
        "fit_before": replay(fit_records, start_r, start_b),
        "fit_after": score,
        "check_before": replay(check, start_r, start_b) if check else None,
        "check_after": replay(check, radius, bias) if check else None,
    }
    print(", ".join(f"{k} {v:.4f}" for k, v in summary.items() if v is not None))
    print("RADIUS =", np.round(radius, 3).tolist())
    print("BIAS =", np.round(bias, 3).tolist())
    write_json_atomic(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "clips": rows, **summary,
                                 "radius": radius.tolist(), "bias": bias.tolist()})  # fmt: skip
    print(f"written {args.out}")


if __name__ == "__main__":
    main()

"""Where a parser gives limbs the wrong side, on synthetic captures with gt/2d, gt/3d and cameras.

"Mirrored": of a limb's ground-truth pixels that the parser gives that limb type on either side,
the share given the other side (0.5 = chance). Images are binned by their facing component: how
squarely the camera sees the person's front or back, |forward . d|, where forward is the body's
forward direction (its up axis, head above thighs, crossed with its left axis, right upper arm
and thigh to the left ones) and d the horizontal direction from the body to the camera: near 0
in profile, near 1 from the front or the back. Also the body14 mIoU, and the mIoU the same
predictions would score with every mirrored limb pixel counted right ("sides given").

    .venv/bin/python tools/side_errors.py runs/synth_data_384/test_dance_a runs/synth_data_384/test_kick \
        --checkpoint runs/schnet_synth_side/best.pt --stride 2 --out bench_out/side_errors.json

Without --checkpoint or --config it scores the default mediapipe parser.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from openhuman.ontology import LEFT_IDS, RIGHT_IDS

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAIRS = tuple(zip(LEFT_IDS, RIGHT_IDS, strict=True))  # body14 (left, right) ids of each limb type
ARMS, LEGS = PAIRS[:3], PAIRS[3:]  # upper arm, forearm, hand; thigh, shin, foot
BINS = (0.0, 0.3, 0.6, 0.85, 1.01)


def mirrored_counts(pred: np.ndarray, gt: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """(pixels given their own side, pixels given the other side) over the limb pairs."""
    right = wrong = 0
    for a, b in pairs:
        for own, other in ((a, b), (b, a)):
            g = gt == own
            right += int(np.count_nonzero(g & (pred == own)))
            wrong += int(np.count_nonzero(g & (pred == other)))
    return right, wrong


def facing_component(xyz: np.ndarray, labels: np.ndarray, camera_centre: np.ndarray) -> float:
    """|forward . d| of one frame's labelled 3D points (see the module docstring); NaN where the
    head, an upper arm or a thigh of either side is missing."""
    parts = {}
    for name, ids in (("head", [1]), ("left", [3, 9]), ("right", [4, 10]), ("thighs", [9, 10])):
        m = np.isin(labels, ids)
        if not m.any():
            return float("nan")
        parts[name] = xyz[m].mean(0)
    up = parts["head"] - parts["thighs"]
    up /= np.linalg.norm(up)
    left = parts["left"] - parts["right"]
    left -= up * (left @ up)
    left /= np.linalg.norm(left)
    d = camera_centre - (parts["head"] + parts["left"] + parts["right"]) / 3
    d -= up * (d @ up)
    return float(abs(np.cross(up, left) @ d) / max(np.linalg.norm(d), 1e-9))


def sides_given(conf: np.ndarray) -> np.ndarray:
    """The confusion matrix with every limb pixel given the other side moved to the diagonal."""
    out = conf.copy()
    for a, b in PAIRS:
        for own, other in ((a, b), (b, a)):
            out[own, own] += out[own, other]
            out[own, other] = 0
    return out


def score_capture(path: str, parser_cfg: object, stride: int) -> tuple[list[dict], np.ndarray]:
    """Per image (view, frame, facing, arm and leg counts) and the capture's body14 confusion."""
    from openhuman.capture import Capture
    from openhuman.errors import InputError
    from openhuman.metrics import confusion_matrix
    from openhuman.ontology import NUM_CLASSES
    from openhuman.parsing.base import Parser

    cap = Capture.open(path)
    if not (cap.has_gt_2d and cap.has_gt_3d and cap.cameras):
        raise InputError(f"{path}: needs gt/2d, gt/3d and cameras (make it with `openhuman synth`)")
    parser = Parser.from_config(parser_cfg)
    rows, conf = [], np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    points: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for view in cap.view_ids:
        parser.reset()
        centre = np.asarray(cap.cameras[view].world_from_cam, np.float64)[:3, 3]
        for frame in cap.frames(view, stride=stride):
            pred, gt = parser(frame).labels, np.asarray(cap.gt_2d(view, frame.index))
            conf += confusion_matrix(pred, gt, NUM_CLASSES)
            if frame.index not in points:
                points[frame.index] = cap.gt_3d(frame.index)
            rows.append({
                "capture": Path(path).name, "view": view, "frame": frame.index,
                "facing": facing_component(*points[frame.index], centre),
                "arms": mirrored_counts(pred, gt, ARMS), "legs": mirrored_counts(pred, gt, LEGS),
            })  # fmt: skip
    return rows, conf


def summarise(rows: list[dict], conf: np.ndarray) -> dict:
    """Mirrored shares of all images and of each facing bin; mIoU as parsed and with the sides given."""
    from openhuman.metrics import mean_iou

    def share(sel: list[dict], key: str) -> float | None:
        right, wrong = (sum(r[key][i] for r in sel) for i in (0, 1))
        return round(wrong / (right + wrong), 3) if right + wrong else None

    bins = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        sel = [r for r in rows if lo <= r["facing"] < hi]
        bins.append({"facing": [lo, min(hi, 1.0)], "images": len(sel), "arms": share(sel, "arms"),
                     "legs": share(sel, "legs")})  # fmt: skip
    return {
        "images": len(rows),
        "mirrored": {"arms": share(rows, "arms"), "legs": share(rows, "legs")},
        "by_facing": bins,
        "miou": round(mean_iou(conf), 4),
        "miou_sides_given": round(mean_iou(sides_given(conf)), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", nargs="+", help="capture directories with gt/2d, gt/3d and cameras")
    ap.add_argument("--config", help="PipelineConfig YAML; its parser section is used")
    ap.add_argument("--checkpoint", help="SCHNet checkpoint (sets the schnet backend)")
    ap.add_argument("--stride", type=int, default=2, help="every n-th frame (2, as train_schnet_synth scores)")
    ap.add_argument("--out", default="bench_out/side_errors.json")
    args = ap.parse_args()

    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from openhuman.config import PipelineConfig, load_config
    from openhuman.io import write_json_atomic

    cfg = (load_config(args.config, PipelineConfig) if args.config else PipelineConfig()).parser
    if args.checkpoint:
        cfg.backend = "schnet"
        cfg.schnet = dataclasses.replace(cfg.schnet, checkpoint=args.checkpoint)
    rows, conf = [], None
    for path in args.captures:
        r, c = score_capture(path, cfg, args.stride)
        rows += r
        conf = c if conf is None else conf + c
    assert conf is not None
    result = summarise(rows, conf)
    table = Table(title=f"mirrored limb pixels, {cfg.backend} ({result['images']} images)")
    for col in ("facing component", "images", "arms", "legs"):
        table.add_column(col, justify="right")
    for b in result["by_facing"]:
        table.add_row(f"{b['facing'][0]:.2f}-{b['facing'][1]:.2f}", str(b["images"]), str(b["arms"]), str(b["legs"]))
    table.add_row("all", str(result["images"]), str(result["mirrored"]["arms"]), str(result["mirrored"]["legs"]))
    Console().print(table)
    Console().print(f"body14 mIoU {result['miou']}; with the sides given {result['miou_sides_given']}")
    result.update(captures=args.captures, backend=cfg.backend, checkpoint=args.checkpoint, stride=args.stride)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, {**result, "per_image": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Train SCHNet from scratch on synthetic captures and evaluate on clips it never saw.

1. Generates (if missing) one capture per training clip (the config's data.train_split, e.g.
   walk,run,jump,punch), a validation capture (training clips, new camera azimuths) and held-out
   captures (dance_a, kick) under --data, with `openhuman.synth.generate_capture` (in-place root
   motion, 4-view ring, --size x --size pixels).
2. Trains with `openhuman.parsing.schnet.train.train` and --config (default configs/schnet_synth.yaml).
3. Evaluates best.pt on the held-out captures at full resolution (body14 mIoU, background
   excluded) and writes JSON to --json (default <out_dir>/heldout.json).

    nice -n 10 .venv/bin/python tools/train_schnet_synth.py --config configs/schnet_synth.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from openhuman.config import load_config
from openhuman.parsing.schnet.config import TrainConfig

log = logging.getLogger("train_schnet_synth")
HELDOUT_CLIPS = ("dance_a", "kick")


def generate(
    root: Path, name: str, clips: tuple[str, ...], views: int, frames: int, size: int, seed: int,
    limb_mix: float = 0.0, donors: tuple[str, ...] = (),
) -> Path:  # fmt: skip
    from openhuman.synth.generate import SynthConfig, generate_capture

    out = root / name
    if (out / "capture.json").is_file():
        return out
    cfg = SynthConfig(
        clips=clips, views=views, frames=frames, fps=20.0, width=size, height=size, seed=seed,
        root_motion="in_place", depth=False, gt=True, gt_points=64, limb_mix=limb_mix, limb_mix_clips=donors,
    )  # fmt: skip
    t0 = time.perf_counter()
    generate_capture(out, cfg)
    log.info(
        "generated %s (%s, %d views x %d frames) in %.1f s",
        out,
        ",".join(clips),
        views,
        frames,
        time.perf_counter() - t0,
    )
    return out


def evaluate_heldout(
    checkpoint: Path,
    captures: list[Path],
    stride: int,
    flip_test: bool = False,
    cpu_bf16: bool = False,
    pose_sides: bool = False,
) -> dict:
    """Body14 confusion of the checkpoint on `captures`, parsed by the `schnet` backend through
    `openhuman.evaluate.evaluate_capture` (what `openhuman eval` runs)."""
    from openhuman.evaluate import evaluate_capture, scores_from_confusion
    from openhuman.metrics import mean_iou
    from openhuman.parsing.config import ParserConfig
    from openhuman.parsing.schnet.config import SchnetConfig

    cfg = ParserConfig(
        backend="schnet",
        schnet=SchnetConfig(checkpoint=str(checkpoint), flip_test=flip_test, pose_sides=pose_sides),
        cpu_bf16=cpu_bf16,
    )
    total = np.zeros((15, 15), dtype=np.int64)
    per_clip = {}
    for path in captures:
        conf = evaluate_capture(path, cfg, stride=stride).overall
        per_clip[path.name] = mean_iou(conf)
        total += conf
        log.info("held-out %s: body14 mIoU %.4f", path.name, per_clip[path.name])
    side = np.zeros((15, 9), dtype=np.int64)  # body14 -> side-agnostic parts (left/right merged)
    side[np.arange(15), [0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]] = 1
    return {
        "miou": mean_iou(total),
        "miou_left_right_merged": mean_iou(side.T @ total @ side),
        "confusion": total.tolist(),
        "miou_with_background": mean_iou(total, include_background=True),
        "per_clip": per_clip,
        "iou": scores_from_confusion(total)["body14"]["iou"],
        "pixels": int(total.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/schnet_synth.yaml")
    ap.add_argument("--data", default=None, help="data root (default: the config's data.root)")
    ap.add_argument("--steps", type=int, default=None, help="override the config's steps")
    ap.add_argument("--train-clips", default=None, help="override the config's data.train_split (comma list)")
    ap.add_argument("--frames", type=int, default=40, help="frames per training clip and view")
    ap.add_argument("--views", type=int, default=4, help="cameras per training clip")
    ap.add_argument("--test-views", type=int, default=4, help="cameras per held-out clip")
    ap.add_argument(
        "--limb-mix",
        type=float,
        default=0.0,
        help="also train on mix_<clip> captures whose limbs come from other training clips "
        "(SynthConfig.limb_mix, this probability per limb and 12-frame stretch); 0 = off",
    )
    ap.add_argument("--mix-views", type=int, default=None, help="cameras per mix_<clip> capture (default --views)")
    ap.add_argument("--test-frames", type=int, default=40, help="frames per held-out clip and view")
    ap.add_argument("--out", default=None, help="override the config's out_dir")
    ap.add_argument("--threads", type=int, default=None, help="override the config's threads (CPU)")
    ap.add_argument("--size", type=int, default=192, help="rendered image size (square)")
    ap.add_argument("--eval-stride", type=int, default=2, help="evaluate every n-th held-out frame")
    ap.add_argument("--json", default=None, help="result JSON (default <out_dir>/heldout.json)")
    ap.add_argument("--skip-train", action="store_true", help="only evaluate an existing best.pt")
    ap.add_argument("--flip-test", action="store_true", help="evaluate with test-time flip (schnet.flip_test)")
    ap.add_argument(
        "--pose-sides", action="store_true", help="evaluate with the limbs' sides from mediapipe (schnet.pose_sides)"
    )
    ap.add_argument("--cpu-bf16", action="store_true", help="evaluate in bfloat16 (parser.cpu_bf16)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for name in ("openhuman", "train_schnet_synth"):
        logging.getLogger(name).setLevel(logging.INFO)

    from openhuman.parsing.schnet.train import train

    cfg = load_config(args.config, TrainConfig)
    if args.data:
        cfg.data.root = args.data
    if args.steps:
        cfg.steps = args.steps
    if args.train_clips:
        cfg.data.train_split = args.train_clips
    if args.out:
        cfg.out_dir = args.out
    if args.threads:
        cfg.threads = args.threads
    root = Path(cfg.data.root)
    train_clips = tuple(c.strip() for c in cfg.data.train_split.split(",") if c.strip())
    if set(train_clips) & set(HELDOUT_CLIPS):
        raise SystemExit(f"data.train_split must not contain the held-out clips {', '.join(HELDOUT_CLIPS)}")
    for i, clip in enumerate(train_clips):
        generate(root, clip, (clip,), args.views, args.frames, args.size, seed=i)
    if args.limb_mix > 0:
        mix_views = args.mix_views or args.views
        for i, clip in enumerate(train_clips):
            generate(
                root, f"mix_{clip}", (clip,), mix_views, args.frames, args.size, 50 + i, args.limb_mix, train_clips
            )
        cfg.data.train_split = ",".join([*train_clips, *(f"mix_{c}" for c in train_clips)])
    generate(root, "val", train_clips, 2, 4, args.size, seed=100)
    held = [
        generate(root, f"test_{c}", (c,), args.test_views, args.test_frames, args.size, seed=200 + i)
        for i, c in enumerate(HELDOUT_CLIPS)
    ]
    record: dict[str, Any] = {}
    if not args.skip_train:
        t0 = time.perf_counter()
        record = {"train": train(cfg)}
        record["train_seconds"] = round(time.perf_counter() - t0, 1)
    result = evaluate_heldout(
        Path(cfg.out_dir) / "best.pt", held, args.eval_stride, args.flip_test, args.cpu_bf16, args.pose_sides
    )
    result.update({"flip_test": args.flip_test, "cpu_bf16": args.cpu_bf16, "pose_sides": args.pose_sides,
                   **record, "config": args.config, "train_clips": list(train_clips), "limb_mix": args.limb_mix,
                   "heldout_clips": list(HELDOUT_CLIPS)})  # fmt: skip
    out = Path(args.json or Path(cfg.out_dir) / "heldout.json")
    if args.skip_train and out.is_file():  # keep the training record of the run being re-evaluated
        previous = json.loads(out.read_text())
        result.update({k: previous[k] for k in ("train", "train_seconds") if k in previous})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"held-out body14 mIoU {result['miou']:.4f} ({', '.join(f'{k} {v:.3f}' for k, v in result['per_clip'].items())}) -> {out}"
    )


if __name__ == "__main__":
    main()

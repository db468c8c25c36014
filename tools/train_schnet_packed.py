"""Train SCHNet on packed synthetic captures (`tools/pack_synth.py`) within a time budget, then
score it on the packed held-out clips. For GPU machines without pybullet, PyAV or decord.

    python3 tools/train_schnet_packed.py --name M --pack PACK --out OUT --deadline EPOCH_S \\
        --train train16:2,mix16 --batch 32 --lr 0.003 --workers 6

- `--train`: pack folders holding one sub-folder per training clip of --config's data.train_split;
  `folder:N` takes every N-th view of it. Validation reads `PACK/val`.
- The step count is set so training ends by --deadline: a 100-step calibration run measures
  s/step (steps 20 to 100, so start-up is left out), then the real run uses 92 % of the time left
  after --eval-reserve seconds. The schedule (poly) spans exactly those steps.
- Held-out: best.pt parses every 2nd frame of `PACK/test_dance_a` and `PACK/test_kick` through
  the `schnet` parser backend; body14 mIoU (background excluded) -> OUT/NAME.json. The packed
  videos are lossy (see pack_synth.py), so report figures from `tools/train_schnet_synth.py
  --skip-train` on the lossless captures.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import lzma
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from openhuman.config import load_config
from openhuman.evaluate import scores_from_confusion
from openhuman.metrics import confusion_matrix, mean_iou
from openhuman.ontology import BODY14, NUM_CLASSES
from openhuman.parsing.schnet import train as schnet_train
from openhuman.parsing.schnet.config import TrainConfig
from openhuman.parsing.schnet.data import ArrayPairs
from openhuman.types import Frame

log = logging.getLogger("train_schnet_packed")
HELDOUT = ("test_dance_a", "test_kick")
_loaded: dict[tuple[str, str], ArrayPairs] = {}


def load_view(mp4: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB frames and label maps of one packed view."""
    labels = np.load(io.BytesIO(lzma.decompress(mp4.with_name(mp4.stem + ".labels.npy.xz").read_bytes())))
    video, frames = cv2.VideoCapture(str(mp4)), []
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if len(frames) != len(labels):
        raise SystemExit(f"{mp4}: {len(frames)} frames decoded but {len(labels)} label maps; re-pack it")
    return frames, list(labels)


def open_packed(fmt: str, root: str, split: str, frame_stride: int = 1) -> ArrayPairs:
    """Stands in for `openhuman.parsing.schnet.data.open_pairs`: `split` lists pack folders (`dir:N`)."""
    if (root, split) not in _loaded:
        images: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for item in split.split(","):
            name, _, every = item.strip().partition(":")
            for mp4 in sorted((Path(root) / name).glob("*.mp4"))[:: int(every or 1)]:
                f, lab = load_view(mp4)
                images += f[::frame_stride]
                labels += lab[::frame_stride]
        _loaded[root, split] = ArrayPairs(tuple(BODY14[1:]), images, labels)
        log.info("pack %s: %d frames", split[:60], len(images))
    return _loaded[root, split]


class StepTimes(logging.Handler):
    """Collects (step, time) from the trainer's progress lines."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = re.search(r"step (\d+)/\d+ loss", record.getMessage())
        if m:
            self.marks.append((int(m.group(1)), record.created))

    def seconds_per_step(self) -> float:
        (s0, t0), (s1, t1) = self.marks[1], self.marks[-1]  # marks[0] is step 1 (start-up)
        return (t1 - t0) / (s1 - s0)


def heldout(checkpoint: Path, pack: Path, stride: int = 2) -> dict[str, Any]:
    from openhuman.parsing.base import Parser
    from openhuman.parsing.config import ParserConfig
    from openhuman.parsing.schnet.config import SchnetConfig

    parser = Parser.from_config(ParserConfig(backend="schnet", schnet=SchnetConfig(checkpoint=str(checkpoint))))
    total = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    per_clip = {}
    for clip in HELDOUT:
        conf = np.zeros_like(total)
        for mp4 in sorted((pack / clip).glob("*.mp4")):
            parser.reset()
            frames, labels = load_view(mp4)
            for i in range(0, len(frames), stride):
                parse = parser(Frame(view_id=mp4.stem, index=i, timestamp_s=i / 20.0, rgb=frames[i]))
                conf += confusion_matrix(parse.labels, labels[i], NUM_CLASSES)
        per_clip[clip] = mean_iou(conf)
        total += conf
    parser.close()
    return {"miou": mean_iou(total), "per_clip": per_clip, "iou": scores_from_confusion(total)["body14"]["iou"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="run name: OUT/NAME/ (checkpoints), OUT/NAME.json")
    ap.add_argument("--config", default="configs/schnet_synth_13.yaml")
    ap.add_argument("--pack", required=True)
    ap.add_argument("--train", default="train16", help="comma list of pack folders, each optionally :N")
    ap.add_argument("--out", required=True)
    ap.add_argument("--deadline", type=float, required=True, help="time (epoch seconds) to be done by")
    ap.add_argument("--eval-reserve", type=float, default=45.0, help="seconds kept for the held-out scoring")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="training seed (default: the config's)")
    ap.add_argument("--size", default=None, help="model size (default: the config's model.size)")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--val-every", type=int, default=1000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name} %(message)s")
    times = StepTimes()
    logging.getLogger().addHandler(times)
    schnet_train.open_pairs = open_packed  # type: ignore[assignment]
    pack, out = Path(args.pack), Path(args.out)
    cfg = load_config(args.config, TrainConfig)
    cfg.model.image_size = args.image_size or cfg.model.image_size
    cfg.model.size = args.size or cfg.model.size
    cfg.seed = cfg.seed if args.seed is None else args.seed
    cfg.batch_size = args.batch or cfg.batch_size
    cfg.lr = args.lr or cfg.lr
    folders = [(f.split(":")[0], f.partition(":")[2]) for f in args.train.split(",")]
    clips = [c.strip() for c in cfg.data.train_split.split(",") if c.strip()]
    cfg.data.root, cfg.data.val_split = str(pack), "val"
    cfg.data.train_split = ",".join(f"{d}/{c}" + (f":{n}" if n else "") for d, n in folders for c in clips)
    cfg.num_workers, cfg.val_every, cfg.resume = args.workers, args.val_every, False
    cal = replace(cfg, steps=100, val_every=10**9, out_dir=str(out / f"{args.name}_cal"))
    t0 = time.time()
    schnet_train.train(cal)
    rate = times.seconds_per_step()
    cfg.steps = max(100, int((args.deadline - time.time() - args.eval_reserve) / rate * 0.92))
    cfg.out_dir = str(out / args.name)
    log.info("calibration %.1f s, %.4f s/step -> %d steps", time.time() - t0, rate, cfg.steps)
    t1 = time.time()
    record = schnet_train.train(cfg)
    result = heldout(Path(cfg.out_dir) / "best.pt", pack)
    result.update({"name": args.name, "steps": cfg.steps, "s_per_step": rate, "train_seconds": round(time.time() - t1, 1),
                   "train_split": cfg.data.train_split, "model": cfg.model.__dict__, "batch": cfg.batch_size,
                   "lr": cfg.lr, "train": record})  # fmt: skip
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    log.info("RESULT %s held-out %.4f %s", args.name, result["miou"], result["per_clip"])


if __name__ == "__main__":
    main()

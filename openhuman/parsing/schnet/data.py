"""Human-parsing datasets for SCHNet training: LIP, CIHP, PASCAL-Person-Part and synthetic captures.

Every reader yields `(rgb uint8 [H, W, 3], labels uint8 [H, W])` with labels in the dataset's own
class ids (0 = background, 255 = ignore), and names its classes in `classes` (without background)
so the training vocabulary can be checked against it. Standard folder layouts:

- LIP: `TrainVal_images/{split}_images/*.jpg`, `TrainVal_parsing_annotations/{split}_segmentations/*.png`,
  ids from `{split}_id.txt` (looked up in the root and in `TrainVal_images/`), else all images.
- CIHP: `[instance-level-human-parsing/]{Training,Validation}/Images/*.jpg` + `Category_ids/*.png`,
  ids from `{train,val}_id.txt` in that folder, else all images. Same 20 classes as LIP.
- PASCAL-Person-Part: `JPEGImages/*.jpg` + `SegmentationPart/*.png`, ids from `{split}_id.txt`,
  `{split}.txt` (root, `list/`, `pascal_person_part_trainval_list/`); 7 classes.
- synth: capture directories (`openhuman.capture`) with `gt/2d`; body14 classes.

`ParsingDataset` wraps a reader for torch with augmentation (random scale, crop/pad, horizontal flip
that swaps left/right classes, brightness/contrast jitter) and returns numpy arrays, which
torch's default collate turns into tensors (no torch import here).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from openhuman.arrays import mask_box
from openhuman.errors import InputError
from openhuman.io import read_png
from openhuman.metrics import IGNORE
from openhuman.ontology import BODY14, taxonomy
from openhuman.parsing.schnet.config import AugmentConfig

log = logging.getLogger(__name__)


@dataclass
class PairList:
    """Lazily read image/label pairs (files) or in-memory arrays (captures)."""

    classes: tuple[str, ...]
    """Class names without background (id i + 1 = classes[i])."""
    images: list[Path]
    labels: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rgb = cv2.imread(str(self.images[i]), cv2.IMREAD_COLOR)
        if rgb is None:
            raise InputError(f"cannot read image {self.images[i]}")
        label = read_png(self.labels[i])
        if label.ndim == 3:
            label = label[..., 0]
        return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), np.asarray(label, dtype=np.uint8)


@dataclass
class ArrayPairs:
    classes: tuple[str, ...]
    images: list[np.ndarray]
    labels: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[i], self.labels[i]


def _read_ids(candidates: list[Path]) -> list[str] | None:
    for path in candidates:
        if path.is_file():
            return [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]
    return None


def _pairs(img_dir: Path, lbl_dir: Path, ids: list[str] | None, classes: tuple[str, ...], what: str) -> PairList:
    if not img_dir.is_dir() or not lbl_dir.is_dir():
        raise InputError(f"{what}: expected folders {img_dir} and {lbl_dir}")
    if ids is None:
        ids = sorted(p.stem for p in img_dir.glob("*.jpg"))
    ids = [Path(i).stem for i in ids]
    images = [img_dir / f"{i}.jpg" for i in ids]
    labels = [lbl_dir / f"{i}.png" for i in ids]
    missing = [str(p) for p in images + labels if not p.is_file()]
    if missing:
        raise InputError(f"{what}: {len(missing)} listed files are missing, e.g. {missing[0]}")
    if not images:
        raise InputError(f"{what}: no images found in {img_dir}")
    return PairList(classes, images, labels)


def read_lip(root: str | Path, split: str = "train") -> PairList:
    """LIP (20 classes) in its standard TrainVal layout."""
    r = Path(root)
    classes = taxonomy("lip").classes[1:]
    ids = _read_ids([r / f"{split}_id.txt", r / "TrainVal_images" / f"{split}_id.txt"])
    img_dir = r / "TrainVal_images" / f"{split}_images"
    lbl_dir = r / "TrainVal_parsing_annotations" / f"{split}_segmentations"
    return _pairs(img_dir, lbl_dir, ids, classes, f"LIP {split} under {r}")


def read_cihp(root: str | Path, split: str = "train") -> PairList:
    """CIHP (same 20 classes as LIP) in its instance-level-human-parsing layout."""
    r = Path(root)
    if (r / "instance-level-human-parsing").is_dir():
        r = r / "instance-level-human-parsing"
    folder = r / {"train": "Training", "val": "Validation"}.get(split, split)
    ids = _read_ids([folder / f"{split}_id.txt", folder / f"{split.lower()}_id.txt"])
    classes = taxonomy("lip").classes[1:]
    return _pairs(folder / "Images", folder / "Category_ids", ids, classes, f"CIHP {split} under {r}")


def read_ppp(root: str | Path, split: str = "train") -> PairList:
    """PASCAL-Person-Part (7 classes): JPEGImages + SegmentationPart + list files."""
    r = Path(root)
    cands = [
        d / n
        for d in (r, r / "list", r / "pascal_person_part_trainval_list")
        for n in (f"{split}_id.txt", f"{split}.txt")
    ]
    ids = _read_ids(cands)
    classes = taxonomy("pascal_person_part").classes[1:]
    return _pairs(r / "JPEGImages", r / "SegmentationPart", ids, classes, f"PASCAL-Person-Part {split} under {r}")


def read_synth(root: str | Path, names: str = "", frame_stride: int = 1) -> ArrayPairs:
    """Frames + gt_2d of capture dirs: `root` itself, or the sub-folders named in `names` (comma list,
    "" = every capture under root). Loaded into memory (small synthetic sets)."""
    from openhuman.capture import Capture

    r = Path(root)
    if (r / "capture.json").is_file():
        dirs = [r]
    elif names.strip():
        dirs = [r / n.strip() for n in names.split(",") if n.strip()]
    else:
        dirs = sorted(p.parent for p in r.glob("*/capture.json"))
    if not dirs:
        raise InputError(f"no capture directories under {r}")
    missing = [d.name for d in dirs if not (d / "capture.json").is_file()]
    if missing:
        raise InputError(
            f"{r}: no capture folder {', '.join(map(repr, missing))} (data.root / data.train_split or val_split); "
            "make them with `openhuman synth` or tools/train_schnet_synth.py, or name folders that exist"
        )
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for d in dirs:
        cap = Capture.open(d)
        if not cap.has_gt_2d:
            raise InputError(f"capture {d} has no gt/2d labels; generate it with ground truth")
        for view in cap.view_ids:
            for frame in cap.frames(view, stride=frame_stride):
                images.append(frame.rgb)
                labels.append(np.asarray(cap.gt_2d(view, frame.index), dtype=np.uint8))
    log.info("synthetic data: %d frames from %s", len(images), ", ".join(d.name for d in dirs))
    return ArrayPairs(tuple(BODY14[1:]), images, labels)


_SIDE_WORD = re.compile(r"(?<![a-z])(left|right)(?![a-z])", re.IGNORECASE)


def side_of(name: str) -> tuple[int, str]:
    """The person's side a class name names, and the name without it: +1 left, -1 right, 0 neither.

    "left hand" -> (1, "hand"); "Right-arm" -> (-1, "arm"); "the person's left forearm" ->
    (1, "the person's forearm"); "torso" -> (0, "torso"). A name with both words, or one twice,
    is kept whole with side 0.
    """
    found = _SIDE_WORD.findall(name)
    if len(found) != 1:
        return 0, name
    rest = " ".join(_SIDE_WORD.sub(" ", name).split()).strip(" -_")
    return (1 if found[0].lower() == "left" else -1), rest or name


def lr_swap_table(classes: list[str] | tuple[str, ...]) -> np.ndarray:
    """uint8 [256] label map for a horizontal flip: ids of "left X" and "right X" swapped (0, 255 kept).

    Classes pair up when `side_of` gives them opposite sides and the same part name."""
    table = np.arange(256, dtype=np.uint8)
    sided = {}
    for i, name in enumerate(classes, start=1):
        side, part = side_of(name)
        if side:
            sided[side, part.lower()] = i
    for (side, part), i in sided.items():
        table[i] = sided.get((-side, part), i)
    return table


def hflip_pair(rgb: np.ndarray, labels: np.ndarray, swap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror image and labels; "left" parts become "right" parts (the person's own side flips)."""
    return np.ascontiguousarray(rgb[:, ::-1]), swap[np.ascontiguousarray(labels[:, ::-1])]


def rotate_pair(rgb: np.ndarray, labels: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Image and labels turned by `degrees` (counter-clockwise) about the centre; what comes in
    from outside is black and IGNORE."""
    h, w = labels.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    rgb = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    lab = cv2.warpAffine(labels, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=(IGNORE,))
    return rgb, lab


def letterbox(rgb: np.ndarray, labels: np.ndarray | None, size: int, scale: float = 1.0):  # type: ignore[no-untyped-def]
    """Resize so the long side is `size * scale`, then pad (image 0, labels IGNORE) to at least size.

    Returns (rgb [S', S'', 3], labels or None, (new_h, new_w)).
    """
    h, w = rgb.shape[:2]
    f = size * scale / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    ph, pw = max(size, nh), max(size, nw)
    out = np.zeros((ph, pw, 3), dtype=np.uint8)
    out[:nh, :nw] = rgb
    lab = None
    if labels is not None:
        lab = np.full((ph, pw), IGNORE, dtype=np.uint8)
        lab[:nh, :nw] = cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST)
    return out, lab, (nh, nw)


MIN_PERSON_PIXELS = 16


def person_box(mask: np.ndarray, margin: float | np.ndarray) -> tuple[int, int, int, int] | None:
    """Box (y0, y1, x0, x1) around the True pixels of `mask`, grown on each side by `margin` times
    the box's longer side, then its shorter side widened to a square (so the letterboxed crop
    fills the model's input with image, not padding), clipped to the image. `margin` is one
    number or four (top, bottom, left, right). None when fewer than MIN_PERSON_PIXELS are True."""
    box = mask_box(mask)
    if box is None or np.count_nonzero(mask) < MIN_PERSON_PIXELS:
        return None
    y0, y1, x0, x1 = (float(v) for v in box)
    top, bottom, left, right = np.broadcast_to(np.asarray(margin, dtype=np.float64), (4,)) * max(y1 - y0, x1 - x0)
    y0, y1, x0, x1 = y0 - top, y1 + bottom, x0 - left, x1 + right
    grow = (y1 - y0) - (x1 - x0)
    x0, x1 = (x0 - grow / 2, x1 + grow / 2) if grow > 0 else (x0, x1)
    y0, y1 = (y0 + grow / 2, y1 - grow / 2) if grow < 0 else (y0, y1)
    h, w = mask.shape
    return max(0, int(y0)), min(h, int(np.ceil(y1))), max(0, int(x0)), min(w, int(np.ceil(x1)))


def random_augment(
    rgb: np.ndarray,
    labels: np.ndarray,
    size: int,
    aug: AugmentConfig,
    swap: np.ndarray,
    rng: np.random.Generator,
    person_crop: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random person crop, scale, crop/pad to size x size, flip (left/right swapped), rotation
    and jitter.

    With `person_crop` (the model's inference margin) a share `aug.person_crop_prob` of the
    samples is first cut around the labelled person, each side's margin drawn from 0.5-1.5 times
    `person_crop`, as the second inference pass sees it; the rest stay whole images for the first pass.
    """
    if person_crop is not None and rng.random() < aug.person_crop_prob:
        box = person_box((labels > 0) & (labels != IGNORE), person_crop * rng.uniform(0.5, 1.5, 4))
        if box is not None:
            y0, y1, x0, x1 = box
            rgb, labels = rgb[y0:y1, x0:x1], labels[y0:y1, x0:x1]
    scale = float(rng.uniform(aug.scale_min, aug.scale_max))
    rgb, lab, _ = letterbox(rgb, labels, size, scale)
    assert lab is not None
    y0 = int(rng.integers(0, rgb.shape[0] - size + 1))
    x0 = int(rng.integers(0, rgb.shape[1] - size + 1))
    rgb, lab = rgb[y0 : y0 + size, x0 : x0 + size], lab[y0 : y0 + size, x0 : x0 + size]
    if aug.hflip and rng.random() < 0.5:
        rgb, lab = hflip_pair(rgb, lab, swap)
    if aug.rotate_max > 0:
        rgb, lab = rotate_pair(rgb, lab, float(rng.uniform(-aug.rotate_max, aug.rotate_max)))
    if aug.color_jitter > 0:
        a = 1.0 + rng.uniform(-aug.color_jitter, aug.color_jitter)
        b = 255.0 * rng.uniform(-aug.color_jitter, aug.color_jitter) / 2
        rgb = np.clip(rgb.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(lab)


class ParsingDataset:
    """Map-style dataset for torch's DataLoader: item -> (image float32 [3, S, S] in [0, 1], labels int64 [S, S]).

    `train=True` applies `random_augment`; otherwise the image is letterboxed to S (labels of the
    padding = IGNORE).
    """

    def __init__(
        self,
        pairs: PairList | ArrayPairs,
        size: int,
        aug: AugmentConfig,
        train: bool,
        seed: int = 0,
        person_crop: float | None = None,
    ) -> None:
        self.pairs = pairs
        self.person_crop = person_crop
        self.size = size
        self.aug = aug
        self.train = train
        self.seed = seed
        self.swap = lr_swap_table(pairs.classes)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, lab = self.pairs[i]
        if self.train:
            rng = np.random.default_rng([self.seed, i, int(np.random.randint(0, 2**31 - 1))])
            rgb, lab = random_augment(rgb, lab, self.size, self.aug, self.swap, rng, self.person_crop)
        else:
            rgb, lab2, _ = letterbox(rgb, lab, self.size)
            assert lab2 is not None
            rgb, lab = rgb[: self.size, : self.size], lab2[: self.size, : self.size]
        image = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0
        return image, lab.astype(np.int64)


def open_pairs(fmt: str, root: str, split: str, frame_stride: int = 1) -> PairList | ArrayPairs:
    """Reader for `fmt` ("synth", "lip", "cihp", "ppp") and `split`."""
    if fmt == "synth":
        return read_synth(root, split, frame_stride)
    readers = {"lip": read_lip, "cihp": read_cihp, "ppp": read_ppp}
    if fmt not in readers:
        raise InputError(f"unknown dataset format {fmt!r}; choose one of synth, {', '.join(readers)}")
    return readers[fmt](root, split)

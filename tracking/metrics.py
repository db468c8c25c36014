"""Sequence metrics for video part parsing: mIoU, temporal flip rate and per-part J&F (DAVIS).

- J: region similarity, IoU of a part's predicted and ground-truth masks in one frame.
- F: boundary F-measure, precision/recall of the predicted vs ground-truth mask boundaries
  matched within a small pixel tolerance.
- flip rate: share of pixels whose predicted label changes between consecutive frames where the
  ground truth does not (`openhuman.metrics.flip_rate`, summed over the sequence).
- still flip rate: the part of the flip rate at pixels farther than the boundary tolerance from
  any pixel whose ground truth changed in this frame step or the one before. That is flicker
  where nothing moves, which temporal smoothing can remove; the other flips lie along moving
  boundaries, where a boundary error that moves with the body flips pixels whatever the smoothing.
Streaming: `SequenceEvaluator.update(pred, gt)` per frame, `.result()` at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from openhuman.metrics import IGNORE, confusion_matrix, flip_rate, mean_iou
from openhuman.ontology import NUM_CLASSES


def _boundary(mask: np.ndarray) -> np.ndarray:
    """bool [H, W] pixels of `mask` with a 4-neighbour outside it (image border counts as outside)."""
    m = np.pad(mask, 1, constant_values=False)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    if radius <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two bool [H, W] masks (1.0 when both are empty)."""
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance_px: int = 2) -> float:
    """Boundary F-measure of two bool [H, W] masks with a `tolerance_px` matching radius
    (1.0 when both are empty, 0.0 when exactly one is)."""
    pb, gb = _boundary(pred), _boundary(gt)
    n_p, n_g = np.count_nonzero(pb), np.count_nonzero(gb)
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = np.count_nonzero(pb & _dilate(gb, tolerance_px)) / n_p
    recall = np.count_nonzero(gb & _dilate(pb, tolerance_px)) / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class SequenceScores:
    miou: float
    """Part mIoU (background excluded) over all frames' pixels."""
    flip_rate: float
    """Label flips / pixels with unchanged ground truth, over consecutive frame pairs."""
    still_flip_rate: float
    """The flips farther than `tolerance_px` from where the ground truth changed in this frame
    step or the previous one, over the same pixels as `flip_rate` (so it is a part of it)."""
    j: np.ndarray
    """float64 [C] mean region IoU per part over frames where the part is in gt or prediction (NaN if never)."""
    f: np.ndarray
    """float64 [C] mean boundary F per part, same frames as `j`."""
    frames: int

    @property
    def jf(self) -> float:
        """Mean of J and F over parts 1..C-1 that occurred."""
        vals = np.concatenate([self.j[1:], self.f[1:]])
        vals = vals[~np.isnan(vals)]
        return float(vals.mean()) if vals.size else float("nan")


class SequenceEvaluator:
    """Streaming accumulator of `SequenceScores` for one view's label sequence."""

    def __init__(self, num_classes: int = NUM_CLASSES, tolerance_px: int = 2):
        self.num_classes = num_classes
        self.tolerance_px = tolerance_px
        self._conf = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._flips = 0
        self._still_flips = 0
        self._stable = 0
        self._moved: np.ndarray | None = None
        """bool [H, W]: where the ground truth changed in the previous frame step."""
        self._j = np.zeros(num_classes)
        self._f = np.zeros(num_classes)
        self._n = np.zeros(num_classes, dtype=np.int64)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self.frames = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame: pred int [H, W] labels, gt int [H, W] labels (255 = ignore)."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        self._conf += confusion_matrix(pred, gt, self.num_classes)
        if self._prev is not None and self._prev[0].shape == pred.shape:
            flips, stable = flip_rate(self._prev[0], pred, self._prev[1], gt)
            self._flips += flips
            self._stable += stable
            moved = self._prev[1] != gt
            near = _dilate(moved | self._moved if self._moved is not None else moved, self.tolerance_px)
            self._still_flips += int(np.count_nonzero((self._prev[0] != pred) & ~near & (gt != IGNORE)))
            self._moved = moved
        else:
            self._moved = None
        self._prev = (pred.copy(), gt.copy())
        valid = gt != IGNORE
        present = np.union1d(np.unique(pred[valid]), np.unique(gt[valid]))
        for c in present[(present > 0) & (present < self.num_classes)]:
            pm, gm = (pred == c) & valid, gt == c
            self._j[c] += region_j(pm, gm)
            self._f[c] += boundary_f(pm, gm, self.tolerance_px)
            self._n[c] += 1
        self.frames += 1

    def result(self) -> SequenceScores:
        with np.errstate(invalid="ignore", divide="ignore"):
            j = np.where(self._n > 0, self._j / np.maximum(self._n, 1), np.nan)
            f = np.where(self._n > 0, self._f / np.maximum(self._n, 1), np.nan)
        rate = self._flips / self._stable if self._stable else float("nan")
        still = self._still_flips / self._stable if self._stable else float("nan")
        return SequenceScores(mean_iou(self._conf), rate, still, j, f, self.frames)


def evaluate_sequence(
    preds: Iterable[np.ndarray], gts: Iterable[np.ndarray], num_classes: int = NUM_CLASSES, tolerance_px: int = 2
) -> SequenceScores:
    """Scores of a whole label sequence (both iterables yield int [H, W] per frame, in order)."""
    ev = SequenceEvaluator(num_classes, tolerance_px)
    for pred, gt in zip(preds, gts, strict=True):
        ev.update(pred, gt)
    return ev.result()

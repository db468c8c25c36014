"""Segmentation metrics shared by 2D evaluation, tracking and 3D lifting."""

from __future__ import annotations

import numpy as np

IGNORE = 255


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """int64 [C, C] counts, rows = ground truth, columns = prediction. `gt == ignore` is skipped."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    gt = np.asarray(gt).ravel().astype(np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction and ground truth differ in size: {pred.shape} vs {gt.shape}")
    keep = gt != ignore
    pred, gt = pred[keep], gt[keep]
    if gt.size and (gt.min() < 0 or gt.max() >= num_classes):
        raise ValueError(f"ground-truth labels outside 0..{num_classes - 1}")
    pred = np.clip(pred, 0, num_classes - 1)
    return np.bincount(gt * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """float64 [C] IoU per class; NaN for classes absent from both prediction and ground truth."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(conf: np.ndarray, include_background: bool = False) -> float:
    """Mean of the per-class IoUs over classes present in prediction or ground truth.

    By default background (class 0) is excluded, as usual in human parsing benchmarks that
    report part mIoU; pass include_background=True for the all-class mean.
    """
    ious = iou_per_class(conf)
    if not include_background:
        ious = ious[1:]
    ious = ious[~np.isnan(ious)]
    return float(ious.mean()) if ious.size else float("nan")


def flip_rate(prev_pred: np.ndarray, pred: np.ndarray, prev_gt: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Temporal label flips between two consecutive frames (same pixels or same points).

    Counts elements whose ground truth did not change but whose prediction did. Returns
    (flips, stable) so callers can sum over a sequence: rate = sum(flips) / sum(stable).
    """
    stable = (np.asarray(prev_gt) == np.asarray(gt)) & (np.asarray(gt) != IGNORE)
    flips = stable & (np.asarray(prev_pred) != np.asarray(pred))
    return int(flips.sum()), int(stable.sum())

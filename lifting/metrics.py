"""3D metrics: point mIoU against ground-truth points, and 3D temporal flip rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from openhuman.metrics import confusion_matrix, flip_rate, iou_per_class, mean_iou
from openhuman.ontology import NUM_CLASSES


def point_confusion(
    pred_xyz: np.ndarray,
    pred_labels: np.ndarray,
    gt_xyz: np.ndarray,
    gt_labels: np.ndarray,
    max_dist: float = 0.03,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """int64 [C, C] confusion (rows GT, columns prediction) by nearest-neighbour matching.

    Each predicted point is matched to its nearest GT point; beyond `max_dist` metres it counts
    as predicted on background (a false positive). Each GT point with no predicted point within
    `max_dist` counts as missed (predicted background), so coverage matters too.
    pred_xyz float [N, 3], pred_labels int [N], gt_xyz float [M, 3], gt_labels int [M].
    """
    return match_confusion(match_frame(pred_xyz, pred_labels, gt_xyz, gt_labels, max_dist), num_classes)


def point_miou(
    pred_xyz: np.ndarray, pred_labels: np.ndarray, gt_xyz: np.ndarray, gt_labels: np.ndarray, max_dist: float = 0.03
) -> tuple[float, np.ndarray]:
    """(mean part IoU without background, per-class IoU float64 [C] with NaN for absent classes)."""
    conf = point_confusion(pred_xyz, pred_labels, gt_xyz, gt_labels, max_dist)
    return mean_iou(conf), iou_per_class(conf)


def flip_rate_3d(
    prev_xyz: np.ndarray,
    prev_labels: np.ndarray,
    xyz: np.ndarray,
    labels: np.ndarray,
    radius: float = 0.05,
    prev_gt: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    prev_tree: Any = None,
) -> tuple[int, int]:
    """3D label flips between consecutive frames: (flips, compared).

    Each point is matched to its nearest point of the previous frame within `radius` metres;
    a flip is a matched pair with different predicted labels. With per-point GT labels of both
    frames (prev_gt int [N0], gt int [N1]) only pairs whose GT did not change are compared.
    Sum over a sequence: rate = sum(flips) / sum(compared). prev_tree: a cKDTree of prev_xyz
    already built (`FrameMatch.tree`).
    """
    from scipy.spatial import cKDTree

    if len(prev_xyz) == 0 or len(xyz) == 0:
        return 0, 0
    d, nn = (prev_tree if prev_tree is not None else cKDTree(prev_xyz)).query(xyz, workers=1)
    m = d <= radius
    if prev_gt is None or gt is None:
        pair_prev_gt = np.zeros(int(m.sum()), np.int64)
        pair_gt = pair_prev_gt
    else:
        pair_prev_gt, pair_gt = np.asarray(prev_gt)[nn[m]], np.asarray(gt)[m]
    return flip_rate(np.asarray(prev_labels)[nn[m]], np.asarray(labels)[m], pair_prev_gt, pair_gt)


def body_flip_rate(
    prev_xyz: np.ndarray,
    prev_labels: np.ndarray,
    xyz: np.ndarray,
    labels: np.ndarray,
    prev_gt: tuple[np.ndarray, np.ndarray],
    gt: tuple[np.ndarray, np.ndarray],
    max_dist: float = 0.03,
) -> tuple[int, int]:
    """3D label flips on the body between consecutive frames: (flips, compared).

    Follows the ground truth's body points instead of places in space: each body point (GT id)
    present in both frames takes, in each frame, the label of the nearest predicted point within
    `max_dist` metres; a flip is a body point whose two labels differ (its true part never
    changes). Unlike `flip_rate_3d`, labels that move with a moving limb are not flips, and
    labels that stay behind it are. prev_gt / gt: (xyz float [M, 3], ids int [M]) of each frame.
    """
    a = labels_at_points(prev_xyz, prev_labels, prev_gt[0], max_dist)
    b = labels_at_points(xyz, labels, gt[0], max_dist)
    return body_flips(a, prev_gt[1], b, gt[1])


def body_flips(
    prev_label_at_gt: np.ndarray, prev_ids: np.ndarray, label_at_gt: np.ndarray, ids: np.ndarray
) -> tuple[int, int]:
    """`body_flip_rate` from each frame's predicted label at its GT points (-1 = none near) and
    the points' ids: (flips, compared) over the body points present in both frames."""
    _, i_prev, i_now = np.intersect1d(prev_ids, ids, assume_unique=True, return_indices=True)
    a, b = prev_label_at_gt[i_prev], label_at_gt[i_now]
    both = (a >= 0) & (b >= 0)
    return int(np.sum(a[both] != b[both])), int(both.sum())


def gt_labels_for(xyz: np.ndarray, gt_xyz: np.ndarray, gt_labels: np.ndarray, max_dist: float = 0.03) -> np.ndarray:
    """int64 [N] GT label of each point's nearest GT point (255 = ignore beyond max_dist)."""
    from scipy.spatial import cKDTree

    if len(gt_xyz) == 0 or len(xyz) == 0:
        return np.full(len(xyz), 255, np.int64)
    d, nn = cKDTree(gt_xyz).query(xyz, workers=1)
    return np.where(d <= max_dist, np.asarray(gt_labels, np.int64)[nn], 255)


@dataclass(frozen=True)
class FrameMatch:
    """A cloud and its frame's ground-truth points matched both ways: the nearest-neighbour
    searches that the 3D mIoU, the flip rates and the per-point GT labels share (the pipeline's
    evaluator makes them once a frame instead of once a metric)."""

    xyz: np.ndarray
    """float [N, 3] predicted points."""
    labels: np.ndarray
    """int64 [N] their labels."""
    tree: Any
    """cKDTree of `xyz` (None when there are no points)."""
    gt_of_point: np.ndarray
    """int64 [N] label of each point's nearest GT point within max_dist (255 beyond)."""
    gt_labels: np.ndarray
    """int64 [M] GT labels."""
    label_at_gt: np.ndarray
    """int64 [M] label of each GT point's nearest predicted point within max_dist (-1 beyond)."""


def match_frame(
    xyz: np.ndarray, labels: np.ndarray, gt_xyz: np.ndarray, gt_labels: np.ndarray, max_dist: float = 0.03
) -> FrameMatch:
    """Match a cloud (xyz float [N, 3], labels int [N]) with GT points (float [M, 3], int [M])."""
    from scipy.spatial import cKDTree

    labels, gt_labels = np.asarray(labels, np.int64), np.asarray(gt_labels, np.int64)
    tree = cKDTree(xyz) if len(xyz) else None
    label_at_gt = labels_at_points(xyz, labels, gt_xyz, max_dist, tree)
    return FrameMatch(xyz, labels, tree, gt_labels_for(xyz, gt_xyz, gt_labels, max_dist), gt_labels, label_at_gt)


def labels_at_points(
    xyz: np.ndarray, labels: np.ndarray, points: np.ndarray, max_dist: float, tree: Any = None
) -> np.ndarray:
    """int64 [M]: the label of the predicted point (xyz [N, 3], labels [N]) nearest each of
    `points` [M, 3] within `max_dist`, -1 beyond (tree: a cKDTree of xyz already built)."""
    from scipy.spatial import cKDTree

    if len(xyz) == 0 or len(points) == 0:
        return np.full(len(points), -1, np.int64)
    d, nn = (tree if tree is not None else cKDTree(xyz)).query(points, workers=1)
    return np.where(d <= max_dist, np.asarray(labels, np.int64)[nn], -1)


def match_confusion(m: FrameMatch, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """`point_confusion` of a matched frame."""
    conf = confusion_matrix(m.labels, np.where(m.gt_of_point == 255, 0, m.gt_of_point), num_classes)
    missed = m.label_at_gt < 0
    return conf + confusion_matrix(np.zeros(int(missed.sum()), np.int64), m.gt_labels[missed], num_classes)

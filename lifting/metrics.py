"""3D metrics: point mIoU against ground-truth points, and 3D temporal flip rate."""

from __future__ import annotations

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
    from scipy.spatial import cKDTree

    pred_labels = np.asarray(pred_labels, np.int64)
    gt_labels = np.asarray(gt_labels, np.int64)
    if len(gt_xyz) == 0:
        return confusion_matrix(pred_labels, np.zeros_like(pred_labels), num_classes)
    if len(pred_xyz) == 0:
        return confusion_matrix(np.zeros_like(gt_labels), gt_labels, num_classes)
    d, nn = cKDTree(gt_xyz).query(pred_xyz, workers=-1)
    gt_for_pred = np.where(d <= max_dist, gt_labels[nn], 0)
    conf = confusion_matrix(pred_labels, gt_for_pred, num_classes)
    d_gt, _ = cKDTree(pred_xyz).query(gt_xyz, workers=-1)
    missed = d_gt > max_dist
    return conf + confusion_matrix(np.zeros(int(missed.sum()), np.int64), gt_labels[missed], num_classes)


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
) -> tuple[int, int]:
    """3D label flips between consecutive frames: (flips, compared).

    Each point is matched to its nearest point of the previous frame within `radius` metres;
    a flip is a matched pair with different predicted labels. With per-point GT labels of both
    frames (prev_gt int [N0], gt int [N1]) only pairs whose GT did not change are compared.
    Sum over a sequence: rate = sum(flips) / sum(compared).
    """
    from scipy.spatial import cKDTree

    if len(prev_xyz) == 0 or len(xyz) == 0:
        return 0, 0
    d, nn = cKDTree(prev_xyz).query(xyz, workers=-1)
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
    from scipy.spatial import cKDTree

    if len(prev_xyz) == 0 or len(xyz) == 0:
        return 0, 0
    _, i_prev, i_now = np.intersect1d(prev_gt[1], gt[1], assume_unique=True, return_indices=True)

    def labels_at(pred_xyz: np.ndarray, pred_labels: np.ndarray, points: np.ndarray) -> np.ndarray:
        d, nn = cKDTree(pred_xyz).query(points, workers=-1)
        return np.where(d <= max_dist, np.asarray(pred_labels, np.int64)[nn], -1)

    a = labels_at(prev_xyz, prev_labels, np.asarray(prev_gt[0])[i_prev])
    b = labels_at(xyz, labels, np.asarray(gt[0])[i_now])
    both = (a >= 0) & (b >= 0)
    return int(np.sum(a[both] != b[both])), int(both.sum())


def gt_labels_for(xyz: np.ndarray, gt_xyz: np.ndarray, gt_labels: np.ndarray, max_dist: float = 0.03) -> np.ndarray:
    """int64 [N] GT label of each point's nearest GT point (255 = ignore beyond max_dist)."""
    from scipy.spatial import cKDTree

    if len(gt_xyz) == 0 or len(xyz) == 0:
        return np.full(len(xyz), 255, np.int64)
    d, nn = cKDTree(gt_xyz).query(xyz, workers=-1)
    return np.where(d <= max_dist, np.asarray(gt_labels, np.int64)[nn], 255)

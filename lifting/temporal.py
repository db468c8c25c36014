"""4D consistency: labels of consecutive clouds vote for each other through nearest neighbours."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from lifting.config import LiftingConfig
from openhuman.ontology import LEFT_IDS, LR_SWAP, NUM_CLASSES
from openhuman.types import LabeledPointCloud

log = logging.getLogger(__name__)

UNSEEN_VOTE = 0.05
"""Vote weight of a point whose fused confidence is 0 (seen by no view), so it still counts a little."""


MIN_PART_POINTS = 20
"""Points a part needs in both frames before `temporal_motion="parts"` moves it."""


@dataclass(frozen=True)
class _Past:
    xyz: np.ndarray
    labels: np.ndarray
    weight: np.ndarray
    centres: np.ndarray
    """float64 [C, 3] centroid of each part's points."""
    counts: np.ndarray
    """int64 [C] points of each part."""


def _centres(xyz: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 [C, 3] centroid of each label's points (0 where none), int64 [C] counts)."""
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    sums = np.stack([np.bincount(labels, xyz[:, j], NUM_CLASSES) for j in range(3)], axis=1)
    return sums / np.maximum(counts, 1)[:, None], counts


def _part_shifts(centres: np.ndarray, counts: np.ndarray, past: _Past) -> np.ndarray:
    """float64 [C, 3] how far each part's centroid moved since `past` (0 for parts too small in
    either frame, and for a left/right pair whose labels look swapped: each part's centroid lies
    nearer the other side's old one, so the history keeps its place and can outvote the swap)."""
    shift = centres - past.centres
    moved = (counts >= MIN_PART_POINTS) & (past.counts >= MIN_PART_POINTS)
    left = np.asarray(LEFT_IDS)
    right = LR_SWAP[left]
    dist = lambda a, b: np.linalg.norm(centres[a] - past.centres[b], axis=1)  # noqa: E731
    swapped = dist(left, right) + dist(right, left) < dist(left, left) + dist(right, right)
    moved[left[swapped]] = moved[right[swapped]] = False
    return np.where(moved[:, None], shift, 0.0)


class TemporalLabelSmoother:
    """Vote each point's label over the last `cfg.temporal_window` frames.

    For every point of the new cloud, the nearest point of each of the previous frames within
    `cfg.temporal_radius` metres adds a vote for its (already smoothed) label, weighted by its
    confidence and `cfg.temporal_decay ** age`; the point's own label votes with its confidence.
    A single-frame flip against a stable history loses; a lasting change wins after a frame or
    two. Points no view saw (confidence 0) keep confidence 0.

    With `cfg.temporal_motion="parts"` the previous frames' points first move with their part:
    each part (with `MIN_PART_POINTS` points in both frames) is shifted by the change of its
    centroid, so a fast limb meets its own past points instead of where it was, and the history
    does not lag behind the motion. A left/right pair whose labels look swapped is not moved.
    """

    def __init__(self, cfg: LiftingConfig | None = None):
        self.cfg = cfg or LiftingConfig()
        self.cfg.check()
        self._past: deque[_Past] = deque(maxlen=max(self.cfg.temporal_window - 1, 0))
        self.changed = 0
        """Labels changed by smoothing so far (all frames)."""

    def reset(self) -> None:
        """Forget the history (call between sequences)."""
        self._past.clear()

    def step(self, cloud: LabeledPointCloud) -> LabeledPointCloud:
        """The cloud with temporally voted labels (same points, order and length)."""
        if self.cfg.temporal_window <= 1 or len(cloud) == 0:
            return cloud
        from scipy.spatial import cKDTree

        xyz = np.asarray(cloud.xyz, np.float64)
        n = len(xyz)
        labels = np.clip(np.asarray(cloud.labels, np.int64), 0, NUM_CLASSES - 1)
        own = np.maximum(np.asarray(cloud.confidence, np.float64), UNSEEN_VOTE)
        votes = np.zeros((n, NUM_CLASSES))
        votes[np.arange(n), labels] = own
        centres, counts = _centres(xyz, labels)
        for age, past in enumerate(reversed(self._past), start=1):
            pts = past.xyz
            if self.cfg.temporal_motion == "parts":
                pts = pts + _part_shifts(centres, counts, past)[past.labels]
            # unbalanced, non-compact nodes: about half the build time, same neighbours; one
            # thread: the other cores are busy parsing
            tree = cKDTree(pts, balanced_tree=False, compact_nodes=False)
            d, nn = tree.query(xyz, distance_upper_bound=self.cfg.temporal_radius, workers=1)
            m = np.isfinite(d)
            votes[np.nonzero(m)[0], past.labels[nn[m]]] += self.cfg.temporal_decay**age * past.weight[nn[m]]
        new = np.argmax(votes, axis=1)
        share = votes[np.arange(n), new] / np.maximum(votes.sum(1), 1e-12)
        conf = np.where(np.asarray(cloud.confidence) > 0, share, 0.0).astype(np.float32)
        self.changed += int(np.sum(new != labels))
        if self._past.maxlen:
            self._past.append(_Past(xyz, new, own, *_centres(xyz, new)))
        return replace(cloud, labels=new.astype(np.int16), confidence=conf)

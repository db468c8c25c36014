"""4D consistency: labels of consecutive clouds vote for each other through nearest neighbours."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lifting.config import LiftingConfig
from openhuman.ontology import NUM_CLASSES
from openhuman.types import LabeledPointCloud

log = logging.getLogger(__name__)

UNSEEN_VOTE = 0.05
"""Vote weight of a point whose fused confidence is 0 (seen by no view), so it still counts a little."""


@dataclass(frozen=True)
class _Past:
    tree: Any
    labels: np.ndarray
    weight: np.ndarray


class TemporalLabelSmoother:
    """Vote each point's label over the last `cfg.temporal_window` frames.

    For every point of the new cloud, the nearest point of each of the previous frames within
    `cfg.temporal_radius` metres adds a vote for its (already smoothed) label, weighted by its
    confidence and `cfg.temporal_decay ** age`; the point's own label votes with its confidence.
    A single-frame flip against a stable history loses; a lasting change wins after a frame or
    two. Points no view saw (confidence 0) keep confidence 0.
    """

    def __init__(self, cfg: LiftingConfig | None = None):
        self.cfg = cfg or LiftingConfig()
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
        for age, past in enumerate(reversed(self._past), start=1):
            # one thread: the other cores are busy parsing
            d, nn = past.tree.query(xyz, distance_upper_bound=self.cfg.temporal_radius, workers=1)
            m = np.isfinite(d)
            votes[np.nonzero(m)[0], past.labels[nn[m]]] += self.cfg.temporal_decay**age * past.weight[nn[m]]
        new = np.argmax(votes, axis=1)
        share = votes[np.arange(n), new] / np.maximum(votes.sum(1), 1e-12)
        conf = np.where(np.asarray(cloud.confidence) > 0, share, 0.0).astype(np.float32)
        self.changed += int(np.sum(new != labels))
        if self._past.maxlen:
            # unbalanced, non-compact nodes: about half the build time, same neighbours
            self._past.append(_Past(cKDTree(xyz, balanced_tree=False, compact_nodes=False), new, own))
        return replace(cloud, labels=new.astype(np.int16), confidence=conf)

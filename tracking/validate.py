"""Validation of a propagated frame: should the parser run on it instead?

Triggers (checked on half-resolution images, cheap):
- "lost_target": a tracked person kept less than `lost_area_fraction` of its parsed area;
- "area_change": a person's propagated area drifted by more than `max_area_change`;
- "lost_target" also when most of a propagated person changed in a way the flow cannot explain;
- "drift": too many of the propagated person pixels are flow-inconsistent;
- "new_target": moving pixels (frame difference, flow-compensated near the people) outside the dilated person masks of this and
  the previous frame - something the last parse did not know about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracking.config import TrackingConfig
from tracking.propagate import resize_to


@dataclass
class KeyState:
    """The last parsed frame's output, from which propagated frames are warped."""

    labels: np.ndarray
    """int16 [H, W] body14 labels."""
    person_ids: np.ndarray
    """int16 [H, W] track ids, -1 = no person."""
    scores: np.ndarray
    """float32 [H, W]."""
    probs: np.ndarray | None
    """float32 [H, W, C] (only kept when propagated frames carry probabilities)."""
    check_scale: float
    """Resolution of the validation images relative to the frame."""
    areas: dict[int, int] = field(default_factory=dict)
    """Flow-resolution pixel count of each track at the parsed frame."""
    prev_person_small: np.ndarray | None = None
    """bool [h, w] person mask of the previous output frame at `check_scale`."""

    def __post_init__(self) -> None:
        self.areas = track_areas(self.small(self.person_ids))

    def small(self, image: np.ndarray) -> np.ndarray:
        """Resize a label/mask image [H, W] to `check_scale` (nearest)."""
        return resize_to(image, self.check_scale, nearest=True)

    def nbytes(self) -> int:
        arrays = [self.labels, self.person_ids, self.scores, self.probs, self.prev_person_small]
        return sum(a.nbytes for a in arrays if a is not None) + 16 * len(self.areas)


def track_areas(track_map: np.ndarray) -> dict[int, int]:
    """{track id: pixel count} of an int [h, w] track map (-1 ignored)."""
    ids = np.asarray(track_map).astype(np.int64).ravel()
    counts = np.bincount(ids[ids >= 0]) if (ids >= 0).any() else np.zeros(0, dtype=np.int64)
    return {int(i): int(c) for i, c in enumerate(counts) if c > 0}


def check_propagation(
    cfg: TrackingConfig,
    key: KeyState,
    person_ids: np.ndarray,
    reliable: np.ndarray | None,
    residual: np.ndarray | None,
) -> str | None:
    """Reason to re-parse this propagated frame, or None when propagation can be trusted.

    person_ids: int16 [H, W] propagated track map; reliable: bool [H, W] composed flow reliability;
    residual: uint8 [H, W] flow-compensated frame difference of this step (`Motion.residual`).
    """
    pid_small = key.small(person_ids)
    areas = track_areas(pid_small)
    for tid, a0 in key.areas.items():
        ratio = areas.get(tid, 0) / max(a0, 1)
        if ratio < cfg.lost_area_fraction:
            return "lost_target"
        if abs(ratio - 1.0) > cfg.max_area_change:
            return "area_change"
    person = pid_small >= 0
    moving = key.small(residual) > cfg.motion_threshold if residual is not None else None
    if moving is not None and person.any():
        unexplained = person & moving
        if unexplained.sum() > cfg.max_unexplained * person.sum():
            return "lost_target"
    if reliable is not None and person.any():
        bad = person & ~key.small(reliable)
        if bad.sum() > cfg.drift_max_inconsistent * person.sum():
            return "drift"
    if moving is not None and _moving_outside(cfg, key, person, moving):
        return "new_target"
    return None


def _moving_outside(cfg: TrackingConfig, key: KeyState, person: np.ndarray, moving: np.ndarray) -> bool:
    """True when motion (bool [h, w]) outside the dilated person masks exceeds the threshold."""
    import cv2

    known = person if key.prev_person_small is None else person | key.prev_person_small
    kernel = np.ones((7, 7), np.uint8)
    known = cv2.dilate(known.astype(np.uint8), kernel).astype(bool)
    return bool((moving & ~known).sum() > cfg.new_target_fraction * moving.size)

"""Person mask and 33 pose landmarks for the CLIP+SAM backend (mediapipe Pose, offline).

`PoseResult` is this backend's view of one person; `MediapipePose` produces it. Any callable
`rgb uint8 [H, W, 3] -> PoseResult | None` can stand in (tests pass hand-made poses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseResult:
    """One person's pose in image pixels."""

    landmarks: np.ndarray
    """float32 [33, 3]: x_px, y_px, visibility in [0, 1] (mediapipe Pose order; "left" = the
    person's own left)."""
    person_prob: np.ndarray
    """float32 [H, W] probability that a pixel belongs to the person."""


PoseFn = Callable[[np.ndarray], "PoseResult | None"]


class MediapipePose:
    """mediapipe Pose with segmentation (model_complexity 1, the bundled full model)."""

    def __init__(self, static_image_mode: bool = True, min_detection_confidence: float = 0.5) -> None:
        import mediapipe as mp

        self._pose: Any = mp.solutions.pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=1,
            enable_segmentation=True,
            min_detection_confidence=min_detection_confidence,
        )

    def __call__(self, rgb: np.ndarray) -> PoseResult | None:
        """Pose of the most prominent person in rgb uint8 [H, W, 3], or None when nobody is found."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
        res = self._pose.process(np.ascontiguousarray(rgb))
        if res.pose_landmarks is None:
            return None
        H, W = rgb.shape[:2]
        lms = np.array([[p.x * W, p.y * H, p.visibility] for p in res.pose_landmarks.landmark], dtype=np.float32)
        if res.segmentation_mask is not None:
            prob = np.asarray(res.segmentation_mask, dtype=np.float32)
        else:
            prob = np.zeros((H, W), dtype=np.float32)
        return PoseResult(landmarks=lms, person_prob=prob)

    def close(self) -> None:
        self._pose.close()

"""Thin wrappers around mediapipe's bundled solutions (pose, hands, face detection, face mesh).

mediapipe is imported here only, lazily, and its outputs are converted once into numpy arrays in
image pixels. Only bundled models are used: pose with model_complexity=1 (0 and 2 would try to
download), hands lite, short-range face detection, face mesh without iris refinement.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from openhuman.parsing._bodysplit import PoseLandmarks

log = logging.getLogger(__name__)


def _mp() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mediapipe as mp

    return mp


@dataclass(frozen=True)
class PoseResult:
    landmarks: PoseLandmarks
    person_prob: np.ndarray
    """float32 [H, W] person-segmentation probability in [0, 1]."""


class PoseRunner:
    """mediapipe Pose (one person) with segmentation."""

    def __init__(self, static: bool, min_detection: float, min_tracking: float) -> None:
        self._pose = _mp().solutions.pose.Pose(
            static_image_mode=static,
            model_complexity=1,
            smooth_landmarks=True,
            enable_segmentation=True,
            smooth_segmentation=not static,
            min_detection_confidence=min_detection,
            min_tracking_confidence=min_tracking,
        )

    def __call__(self, rgb: np.ndarray) -> PoseResult | None:
        """rgb: uint8 [H, W, 3] (C-contiguous). None when no person is found."""
        h, w = rgb.shape[:2]
        res = self._pose.process(rgb)
        if res.pose_landmarks is None:
            return None
        arr = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark], np.float32)
        xy = arr[:, :2] * np.array([w, h], np.float32)
        lm = PoseLandmarks(xy=xy, z=arr[:, 2] * w, vis=np.clip(arr[:, 3], 0.0, 1.0))
        seg = res.segmentation_mask
        if seg is None:
            seg = np.zeros((h, w), np.float32)
        return PoseResult(lm, np.clip(np.asarray(seg, np.float32), 0.0, 1.0))

    def close(self) -> None:
        self._pose.close()


class HandRunner:
    """mediapipe Hands (lite model): hand landmarks in pixels; handedness labels are ignored."""

    def __init__(self, static: bool, max_hands: int) -> None:
        self._hands = _mp().solutions.hands.Hands(
            static_image_mode=static, max_num_hands=max_hands, model_complexity=0, min_detection_confidence=0.5
        )

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        """List of float32 [21, 2] hand landmarks (pixels)."""
        h, w = rgb.shape[:2]
        res = self._hands.process(rgb)
        if not res.multi_hand_landmarks:
            return []
        scale = np.array([w, h], np.float32)
        return [np.array([(p.x, p.y) for p in hl.landmark], np.float32) * scale for hl in res.multi_hand_landmarks]

    def close(self) -> None:
        self._hands.close()


def crop_box(cx: float, cy: float, half: float, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Square crop (x0, y0, x1, y1) around a centre, clipped to the image."""
    h, w = hw
    x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
    x1, y1 = min(int(cx + half), w), min(int(cy + half), h)
    return x0, y0, x1, y1


class FaceRunner:
    """Short-range face detection and (optionally) face mesh, run on a crop around the head."""

    def __init__(self, with_mesh: bool) -> None:
        mp = _mp()
        self._det = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        self._mesh = (
            mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False)
            if with_mesh
            else None
        )

    def detect(self, rgb: np.ndarray, centre: np.ndarray, radius: float) -> tuple[float, float, float] | None:
        """Face box (centre x, centre y, half size) in pixels near `centre`, or None."""
        x0, y0, x1, y1 = crop_box(float(centre[0]), float(centre[1]), 2.2 * radius, (rgb.shape[0], rgb.shape[1]))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return None
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        res = self._det.process(crop)
        if not res.detections:
            return None
        best = None
        for det in res.detections:
            bb = det.location_data.relative_bounding_box
            cx = x0 + (bb.xmin + bb.width / 2) * (x1 - x0)
            cy = y0 + (bb.ymin + bb.height / 2) * (y1 - y0)
            half = max(bb.width * (x1 - x0), bb.height * (y1 - y0)) / 2
            dist = float(np.hypot(cx - centre[0], cy - centre[1]))
            if dist < 1.2 * radius and (best is None or dist < best[0]):
                best = (dist, (float(cx), float(cy), float(half)))
        return None if best is None else best[1]

    def mesh(self, rgb: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray | None:
        """float32 [468, 2] face-mesh landmarks in pixels, or None."""
        if self._mesh is None:
            return None
        x0, y0, x1, y1 = crop_box(float(centre[0]), float(centre[1]), 1.6 * radius, (rgb.shape[0], rgb.shape[1]))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return None
        res = self._mesh.process(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if not res.multi_face_landmarks:
            return None
        pts = np.array([(p.x, p.y) for p in res.multi_face_landmarks[0].landmark], np.float32)
        return pts * np.array([x1 - x0, y1 - y0], np.float32) + np.array([x0, y0], np.float32)

    def close(self) -> None:
        self._det.close()
        if self._mesh is not None:
            self._mesh.close()

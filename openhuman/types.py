"""Containers passed between stages (frozen dataclasses; shapes in the field docs).

Conventions used everywhere in the project:
- Images are RGB uint8 [H, W, 3]; pixel (u, v) = (column, row), pixel centres at integer coordinates.
- Cameras follow OpenCV: x right, y down, z forward. `world_from_cam` maps camera to world
  coordinates (p_world = R @ p_cam + t). The world frame is right-handed, Z up, metres.
- Part ids are body14 ids (see `openhuman.ontology`): 0 is background, "left" is the person's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    view_id: str
    """Camera/view name, e.g. "cam0"; "video" for a single plain video."""
    index: int
    """Frame index in the source clip (0-based, counts skipped frames too)."""
    timestamp_s: float
    """Presentation time in seconds."""
    rgb: np.ndarray
    """uint8 [H, W, 3]."""

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass(frozen=True)
class CameraView:
    view_id: str
    K: np.ndarray
    """float64 [3, 3] pinhole intrinsics."""
    world_from_cam: np.ndarray
    """float64 [4, 4] rigid transform, camera (OpenCV axes) to world."""
    width: int
    height: int
    dist: np.ndarray | None = None
    """Optional OpenCV distortion coefficients float64 [4|5|8] (k1, k2, p1, p2[, k3, ...])."""

    @property
    def cam_from_world(self) -> np.ndarray:
        """float64 [4, 4] inverse of `world_from_cam`."""
        R = self.world_from_cam[:3, :3]
        t = self.world_from_cam[:3, 3]
        out = np.eye(4)
        out[:3, :3] = R.T
        out[:3, 3] = -R.T @ t
        return out

    @property
    def center(self) -> np.ndarray:
        """float64 [3] camera centre in world coordinates."""
        return np.asarray(self.world_from_cam[:3, 3], dtype=np.float64)


@dataclass(frozen=True)
class PartParse:
    """One view's parse of one frame."""

    view_id: str
    frame_index: int
    labels: np.ndarray
    """int16 [H, W] body14 id per pixel (0 = background)."""
    scores: np.ndarray
    """float32 [H, W] confidence of `labels` in [0, 1] (0 where nothing was parsed)."""
    person_ids: np.ndarray
    """int16 [H, W] person instance per pixel, -1 = no person. Ids are local to this frame;
    `tracking` turns them into stable track ids."""
    probs: np.ndarray | None = None
    """float16 [C, H, W] per-pixel class probabilities (C = number of classes, channel = part id),
    summing to 1 over C; None for backends that only give hard labels."""
    keypoints: np.ndarray | None = None
    """float32 [P, 33, 3] per person (indexed like person_ids): x_px, y_px, visibility in [0, 1],
    in mediapipe's 33-landmark pose order (see `openhuman.ontology.POSE_LANDMARKS`)."""
    fine_labels: np.ndarray | None = None
    """int16 [H, W] optional finer parts (ids in `openhuman.ontology.FINE_PARTS`, 0 = none)."""

    @property
    def num_people(self) -> int:
        return int(self.person_ids.max()) + 1 if self.person_ids.size else 0


@dataclass(frozen=True)
class PartMasks:
    """Instance masks of the parts that answer a query in one view/frame."""

    view_id: str
    frame_index: int
    masks: np.ndarray
    """bool [N, H, W]."""
    labels: np.ndarray
    """int64 [N] body14 id of each mask."""
    scores: np.ndarray
    """float32 [N] mean confidence inside each mask."""
    track_ids: np.ndarray
    """int64 [N] stable person track id (-1 when untracked)."""


@dataclass(frozen=True)
class LabeledPointCloud:
    xyz: np.ndarray
    """float32 [M, 3] world coordinates in metres."""
    rgb: np.ndarray
    """uint8 [M, 3]."""
    labels: np.ndarray
    """int16 [M] body14 id per point."""
    confidence: np.ndarray
    """float32 [M] fused label confidence in [0, 1] (0 for points no view saw)."""
    track_ids: np.ndarray
    """int32 [M] person track id per point (-1 = unknown)."""
    frame_index: int
    timestamp_s: float

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def subset(self, keep: np.ndarray) -> LabeledPointCloud:
        """The points selected by a bool [M] or index array (same frame and time)."""
        return LabeledPointCloud(
            self.xyz[keep], self.rgb[keep], self.labels[keep], self.confidence[keep], self.track_ids[keep],
            self.frame_index, self.timestamp_s,
        )  # fmt: skip

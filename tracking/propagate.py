"""Dense optical flow on downscaled gray frames, forward-backward checks and backward warping.

All warps are *backward*: an output pixel x (current frame) reads the source image at
`map(x)`, where `map = grid + flow(current -> previous)`. Maps compose, so a keyframe's parse can
be pulled forward over several frames with one remap (no accumulated rounding of labels).
cv2 is imported lazily inside the functions that need it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Motion:
    """Motion between the previous and the current frame."""

    map_x: np.ndarray
    """float32 [H, W] column in the previous frame that each current pixel came from."""
    map_y: np.ndarray
    """float32 [H, W] row in the previous frame that each current pixel came from."""
    reliable: np.ndarray
    """bool [H, W] forward-backward consistent and inside the previous frame."""
    forward_small: np.ndarray
    """float32 [h, w, 2] flow previous -> current at flow resolution (for moving points)."""
    scale: float
    """Flow resolution / full resolution."""
    residual_small: np.ndarray
    """uint8 [h, w] |current gray - previous gray warped by the flow| at flow resolution: large
    where the flow does not explain the image change (occlusion, a vanished person)."""


def to_gray_small(rgb: np.ndarray, scale: float) -> np.ndarray:
    """uint8 [h, w] gray image resized by `scale` (area interpolation) from uint8 RGB [H, W, 3]."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if scale == 1.0:
        return gray
    h = max(8, round(rgb.shape[0] * scale))
    w = max(8, round(rgb.shape[1] * scale))
    return cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)


def identity_maps(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 [H, W] pixel-centre column and row grids."""
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    return np.broadcast_to(xs, (height, width)).copy(), np.broadcast_to(ys[:, None], (height, width)).copy()


class FlowEstimator:
    """Dense flow between consecutive downscaled gray frames (DIS or Farneback)."""

    def __init__(self, method: Literal["dis", "farneback"] = "dis", scale: float = 0.5, fb_threshold_px: float = 1.5):
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown flow method {method!r}; choose 'dis' or 'farneback'")
        if not 0.05 <= scale <= 1.0:
            raise ValueError(f"flow scale must be in [0.05, 1], got {scale}")
        self.method = method
        self.scale = float(scale)
        self.fb_threshold_px = float(fb_threshold_px)
        self._dis: Any = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float32 [h, w, 2] flow from gray `a` to gray `b` (a(x) ~ b(x + flow(x)))."""
        import cv2

        if self.method == "farneback":
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]
            return np.asarray(flow, dtype=np.float32)
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
        return self._dis.calc(a, b, None)

    def _full_grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        if self._grid is None or self._grid[0].shape != (height, width):
            self._grid = identity_maps(height, width)
        return self._grid

    def estimate(self, prev_small: np.ndarray, cur_small: np.ndarray, full_shape: tuple[int, int]) -> Motion:
        """Motion from `prev_small` to `cur_small` (uint8 [h, w]) at full resolution `full_shape` (H, W)."""
        import cv2

        fwd = self._flow(prev_small, cur_small)
        bwd = self._flow(cur_small, prev_small)
        h, w = cur_small.shape
        gx, gy = identity_maps(h, w)
        bx, by = gx + bwd[..., 0], gy + bwd[..., 1]
        fwd_at = cv2.remap(fwd, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = np.linalg.norm(bwd + fwd_at, axis=-1)
        tol = self.fb_threshold_px * self.scale + 0.05 * np.linalg.norm(bwd, axis=-1)
        inside = (bx >= -0.5) & (bx <= w - 0.5) & (by >= -0.5) & (by <= h - 0.5)
        ok_small = ((err <= tol) & inside).astype(np.uint8)
        residual = cv2.absdiff(
            cv2.remap(prev_small, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), cur_small
        )
        H, W = full_shape
        sx, sy = W / w, H / h
        flow_full = cv2.resize(bwd, (W, H), interpolation=cv2.INTER_LINEAR)
        fx, fy = self._full_grid(H, W)
        map_x = fx + flow_full[..., 0] * np.float32(sx)
        map_y = fy + flow_full[..., 1] * np.float32(sy)
        reliable = cv2.resize(ok_small, (W, H), interpolation=cv2.INTER_NEAREST).astype(bool)
        return Motion(map_x, map_y, reliable, fwd, w / W, residual)


def warp_linear(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear backward warp of float32 [H, W] or [H, W, C] (borders replicated)."""
    import cv2

    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_nearest(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, fill: float | tuple = 0) -> np.ndarray:
    """Nearest-neighbour backward warp (labels, ids, masks); pixels from outside get `fill`."""
    import cv2

    if image.dtype == bool:
        return warp_nearest(image.astype(np.uint8), map_x, map_y, int(bool(fill))).astype(bool)
    border = fill if isinstance(fill, tuple) else (fill,) * 4
    return cv2.remap(image, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def compose_maps(acc_x: np.ndarray, acc_y: np.ndarray, step: Motion) -> tuple[np.ndarray, np.ndarray]:
    """Maps current -> reference frame: the step map (current -> previous) followed by
    `acc` (previous -> reference). float32 [H, W] each."""
    import cv2

    both = np.dstack([acc_x, acc_y])
    out = cv2.remap(both, step.map_x, step.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out[..., 0]), np.ascontiguousarray(out[..., 1])


def move_points(points_xy: np.ndarray, motion: Motion) -> np.ndarray:
    """float32 [..., 2] full-resolution points moved by the forward flow (previous -> current)."""
    fwd = motion.forward_small
    h, w = fwd.shape[:2]
    s = motion.scale
    u = np.clip(np.rint(points_xy[..., 0] * s), 0, w - 1).astype(np.int64)
    v = np.clip(np.rint(points_xy[..., 1] * s), 0, h - 1).astype(np.int64)
    return (points_xy + fwd[v, u] / s).astype(np.float32)

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

from openhuman.arrays import guided_mask, mask_box, nearest_source

log = logging.getLogger(__name__)


Roi = tuple[int, int, int, int]
"""(y0, y1, x0, x1) pixel window, end exclusive."""


@dataclass(frozen=True)
class Motion:
    """Motion between the previous and the current frame inside a window (`roi`); the scene
    outside the window is taken as static."""

    roi: Roi
    """(y0, y1, x0, x1) window the flow was computed in (empty = static scene)."""
    map_xy: np.ndarray
    """float32 [h, w, 2] for each window pixel (x, y) in the previous frame it came from (frame
    pixel coordinates)."""
    reliable: np.ndarray
    """bool [h, w] inside the window and forward-backward consistent (or, for a
    `FlowEstimator` with `residual_threshold`, explaining the change: warped residual at most
    that)."""
    residual: np.ndarray
    """uint8 [H, W] |current gray - previous gray warped by the flow| over the whole frame (the
    plain frame difference outside the window): large where the flow does not explain the change
    (occlusion, a vanished person, something new)."""
    forward: np.ndarray
    """float32 [h', w', 2] flow previous -> current inside `roi` at `scale` (to move points and
    to pull a later parse back to the previous frame; empty when not asked for:
    `estimate(forward=False)` with `residual_threshold`)."""
    scale: float
    """Flow resolution / full resolution."""

    def forward_window(self) -> np.ndarray | None:
        """float32 [h, w, 2] over `roi`: for each pixel of the previous frame, (x, y) where it is in
        the current frame (frame pixels); None for a static scene (empty window)."""
        import cv2

        y0, y1, x0, x1 = self.roi
        h, w = self.forward.shape[:2]
        if y1 <= y0 or x1 <= x0 or not h or not w:
            return None
        size = (x1 - x0, y1 - y0)
        out = np.asarray(cv2.resize(self.forward, size, interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        out *= np.array([size[0] / w, size[1] / h], dtype=np.float32)
        gx, gy = identity_maps(y1 - y0, x1 - x0)
        out[..., 0] += gx + x0
        out[..., 1] += gy + y0
        return out

    def full_map(self) -> np.ndarray:
        """float32 [H, W, 2] map over the whole frame (identity outside the window)."""
        H, W = self.residual.shape
        gx, gy = identity_maps(H, W)
        out = np.dstack([gx, gy])
        y0, y1, x0, x1 = self.roi
        out[y0:y1, x0:x1] = self.map_xy
        return out


_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H, W] gray image of uint8 RGB [H, W, 3]."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def resize_to(image: np.ndarray, scale: float, nearest: bool = False) -> np.ndarray:
    """Image [H, W(, C)] resized by `scale` (at least 8 px a side); area or nearest interpolation."""
    import cv2

    if scale == 1.0:
        return np.ascontiguousarray(image)
    h = max(8, round(image.shape[0] * scale))
    w = max(8, round(image.shape[1] * scale))
    src = image.astype(np.uint8) if image.dtype == bool else image
    out = cv2.resize(src, (w, h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    return out.astype(bool) if image.dtype == bool else out


def identity_maps(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 [H, W] pixel-centre column and row grids."""
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    return np.broadcast_to(xs, (height, width)).copy(), np.broadcast_to(ys[:, None], (height, width)).copy()


def person_roi(person_ids: np.ndarray, margin: int) -> Roi | None:
    """Padded bounding window of all person pixels (int [H, W], -1 = none); None when empty."""
    return mask_box(np.asarray(person_ids) >= 0, margin)


class FlowEstimator:
    """Dense flow between consecutive gray frames (DIS or Farneback), optionally in a window only.

    By default it computes the flow both ways and marks the pixels whose round trip misses by
    more than `fb_threshold_px` unreliable. With `residual_threshold` it marks unreliable the
    pixels whose flow-warped gray differs from the current frame by more than that; then the
    backward flow (current -> previous: what smoothing and propagation pull along) is all it
    needs, and it computes the forward flow only when `estimate` is asked for it (propagated
    keypoints move along it, and bidirectional keyframes pull the next parse back along it).
    """

    def __init__(
        self,
        method: Literal["dis", "farneback"] = "dis",
        scale: float = 0.5,
        fb_threshold_px: float = 1.5,
        preset: Literal["ultrafast", "fast", "medium"] = "ultrafast",
        finest_scale: int | None = 1,
        residual_threshold: float | None = None,
    ):
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown flow method {method!r}; choose 'dis' or 'farneback'")
        if preset not in _PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {', '.join(_PRESETS)}")
        if not 0.05 <= scale <= 1.0:
            raise ValueError(f"flow scale must be in [0.05, 1], got {scale}")
        self.method = method
        self.scale = float(scale)
        self.fb_threshold_px = float(fb_threshold_px)
        self.preset = preset
        self.finest_scale = finest_scale
        self.residual_threshold = residual_threshold
        self._dis: Any = None
        self._grid_xy: tuple[np.ndarray, np.ndarray] = identity_maps(0, 0)

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float32 [h, w, 2] flow from gray `a` to gray `b` (a(x) ~ b(x + flow(x)))."""
        import cv2

        if self.method == "farneback":
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]
            return np.asarray(flow, dtype=np.float32)
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(_PRESETS[self.preset])  # type: ignore[attr-defined]
            if self.finest_scale is not None:
                self._dis.setFinestScale(int(self.finest_scale))
        return self._dis.calc(a, b, None)

    def grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Identity maps [h, w] (views of one cached grid, grown when a bigger one is asked for)."""
        gx, gy = self._grid_xy
        if gx.shape[0] < h or gx.shape[1] < w:
            self._grid_xy = gx, gy = identity_maps(max(h, gx.shape[0]), max(w, gx.shape[1]))
        return gx[:h, :w], gy[:h, :w]

    def _window_flow(
        self, prev: np.ndarray, cur: np.ndarray, forward: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(backward flow, forward flow (empty when not wanted with `residual_threshold`),
        reliable bool, residual uint8) at flow resolution."""
        import cv2

        bwd = self._flow(cur, prev)
        h, w = cur.shape
        gx, gy = self.grid(h, w)
        bx, by = gx + bwd[..., 0], gy + bwd[..., 1]
        inside = (bx >= -0.5) & (bx <= w - 0.5) & (by >= -0.5) & (by <= h - 0.5)
        warped = cv2.remap(prev, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        residual = cv2.absdiff(warped, cur)
        if self.residual_threshold is not None:
            fwd = self._flow(prev, cur) if forward else np.zeros((0, 0, 2), np.float32)
            return bwd, fwd, inside & (residual <= self.residual_threshold), residual
        fwd = self._flow(prev, cur)
        fwd_at = cv2.remap(fwd, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        d = bwd + fwd_at
        err2 = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]
        mag = np.sqrt(bwd[..., 0] * bwd[..., 0] + bwd[..., 1] * bwd[..., 1])
        tol = self.fb_threshold_px * self.scale + 0.05 * mag
        return bwd, fwd, (err2 <= tol * tol) & inside, residual

    def estimate(
        self, prev_gray: np.ndarray, cur_gray: np.ndarray, roi: Roi | None = None, forward: bool = True
    ) -> Motion:
        """Motion from `prev_gray` to `cur_gray` (uint8 [H, W], full resolution).

        roi: compute the flow only inside this window (the people), taking the rest as static
        (zero flow, residual = plain frame difference); None = the whole frame. forward: also
        compute the forward flow (`Motion.forward`; always with the forward-backward check).
        """
        import cv2

        H, W = cur_gray.shape
        y0, y1, x0, x1 = roi if roi is not None else (0, H, 0, W)
        prev_c = resize_to(prev_gray[y0:y1, x0:x1], self.scale)
        cur_c = resize_to(cur_gray[y0:y1, x0:x1], self.scale)
        bwd, fwd, ok, res = self._window_flow(prev_c, cur_c, forward)
        size = (x1 - x0, y1 - y0)
        flow = np.asarray(cv2.resize(bwd, size, interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        flow *= np.array([size[0] / cur_c.shape[1], size[1] / cur_c.shape[0]], dtype=np.float32)
        gx, gy = self.grid(y1, x1)
        flow[..., 0] += gx[y0:, x0:]
        flow[..., 1] += gy[y0:, x0:]
        reliable = cv2.resize(ok.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        residual = cv2.absdiff(prev_gray, cur_gray)
        residual[y0:y1, x0:x1] = cv2.resize(res, size, interpolation=cv2.INTER_NEAREST)
        return Motion((y0, y1, x0, x1), flow, reliable, residual, fwd, cur_c.shape[1] / size[0])


def static_motion(prev_gray: np.ndarray, cur_gray: np.ndarray) -> Motion:
    """Zero motion between two uint8 [H, W] gray frames (residual = plain frame difference)."""
    import cv2

    empty = np.zeros((0, 0, 2), np.float32)
    return Motion((0, 0, 0, 0), empty, np.zeros((0, 0), bool), cv2.absdiff(prev_gray, cur_gray), empty, 1.0)


def remap_xy(
    image: np.ndarray, map_xy: np.ndarray, nearest: bool = False, fill: float | tuple | None = None
) -> np.ndarray:
    """Backward warp of image [H, W(, C)] by a float32 map [h, w, 2] of (x, y) source positions.

    Bilinear or nearest; outside the image: replicate the border (fill None) or use `fill`.
    """
    import cv2

    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if fill is None:
        return cv2.remap(image, map_xy, None, interp, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]
    border = fill if isinstance(fill, tuple) else (fill,) * 4
    return cv2.remap(image, map_xy, None, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=border)  # type: ignore[call-overload]


def warp_linear(image: np.ndarray, map_xy: np.ndarray) -> np.ndarray:
    """Bilinear backward warp of float32 [H, W] or [H, W, C] by float32 map [h, w, 2] (borders replicated)."""
    return remap_xy(image, map_xy)


def warp_nearest(image: np.ndarray, map_xy: np.ndarray, fill: float | tuple = 0) -> np.ndarray:
    """Nearest-neighbour backward warp (labels, ids, masks) by float32 map [h, w, 2]; pixels from
    outside the image get `fill`."""
    if image.dtype == bool:
        return warp_nearest(image.view(np.uint8), map_xy, int(bool(fill))).astype(bool)
    return remap_xy(image, map_xy, nearest=True, fill=fill)


def move_points(points_xy: np.ndarray, motion: Motion) -> np.ndarray:
    """float32 [..., 2] full-resolution points moved by the forward flow (previous -> current);
    points outside the flow window stay where they are."""
    fwd = motion.forward
    h, w = fwd.shape[:2]
    if h == 0 or w == 0:
        return points_xy.astype(np.float32)
    y0, _, x0, _ = motion.roi
    s = motion.scale
    u = np.rint((points_xy[..., 0] - x0) * s).astype(np.int64)
    v = np.rint((points_xy[..., 1] - y0) * s).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    step = fwd[np.clip(v, 0, h - 1), np.clip(u, 0, w - 1)] / s
    return (points_xy + np.where(inside[..., None], step, 0.0)).astype(np.float32)


def snap_to_edges(
    labels: np.ndarray,
    ids: np.ndarray,
    scores: np.ndarray,
    probs: np.ndarray | None,
    rgb: np.ndarray,
    radius: int,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """A propagated frame's person mask aligned with its own image: (labels, ids, scores, probs).

    The person mask (part or person pixels) is fitted to this frame's colour edges
    (`openhuman.arrays.guided_mask`) and thresholded at 0.5, so a silhouette moved a pixel or two
    off by the flow snaps back to the colour edges nearby. Pixels that join the person copy the
    label, track id, score (and probabilities) of the nearest person pixel; pixels that leave
    become background (score 0.5, probabilities one-hot background). Inputs are not modified
    (unchanged outputs are the inputs themselves); only the box around the person is touched.
    labels int [H, W], ids int [H, W] (-1 = none), scores float [H, W], probs float [C, H, W] or
    None, rgb uint8 [H, W, 3].
    """
    person = (ids >= 0) | (labels > 0)
    fitted = guided_mask(person, rgb, radius, eps)
    if fitted is None:
        return labels, ids, scores, probs
    q, (y0, y1, x0, x1) = fitted
    old = person[y0:y1, x0:x1]
    gained, lost = (q > 0.5) & ~old, old & (q <= 0.5)
    if not gained.any() and not lost.any():
        return labels, ids, scores, probs
    labels, ids, scores = labels.copy(), ids.copy(), scores.copy()
    probs = None if probs is None else probs.copy()
    if gained.any():
        gy, gx = np.nonzero(gained)
        iy, ix = np.divmod(nearest_source(old)[1][gy, gx], old.shape[1])
        dst, src = (gy + y0, gx + x0), (iy + y0, ix + x0)
        labels[dst], ids[dst], scores[dst] = labels[src], ids[src], scores[src]
        if probs is not None:
            probs[(slice(None), *dst)] = probs[(slice(None), *src)]
    win = (slice(y0, y1), slice(x0, x1))
    labels[win][lost], ids[win][lost], scores[win][lost] = 0, -1, 0.5
    if probs is not None:
        sub = probs[:, y0:y1, x0:x1]
        sub[:, lost] = 0
        sub[0, lost] = 1
    return labels, ids, scores, probs

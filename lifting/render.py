"""Headless previews of labelled clouds: numpy z-buffer splatting, no GPU or window system.

`render_cloud` draws a cloud from a `CameraView` (palette colours by part, depth shading);
`turntable` puts several azimuths side by side; `frame_strip` several frames from one camera;
`render_preview` writes a PNG atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np

from lifting.geometry import orbit_camera, pixel_index, project_points, zbuffer
from openhuman.io import write_png_atomic
from openhuman.ontology import PALETTE
from openhuman.types import CameraView, LabeledPointCloud


def fit_camera(
    xyz: np.ndarray,
    azimuth_deg: float = 30.0,
    elevation_deg: float = 10.0,
    width: int = 240,
    height: int = 360,
    fov_deg: float = 40.0,
) -> CameraView:
    """An orbit camera (world Z up) that frames all points xyz float [N, 3]."""
    if len(xyz) == 0:
        return orbit_camera(np.zeros(3), 3.0, azimuth_deg, elevation_deg, width, height, fov_deg)
    lo, hi = np.min(xyz, 0).astype(np.float64), np.max(xyz, 0).astype(np.float64)
    center = (lo + hi) / 2
    half_z = max(float(hi[2] - lo[2]) / 2, 1e-3)
    half_xy = max(float(np.linalg.norm(hi[:2] - lo[:2])) / 2, 1e-3)
    tan_v = np.tan(np.deg2rad(fov_deg) / 2)
    tan_h = tan_v * width / height
    dist = 1.1 * max(half_z / tan_v, half_xy / tan_h) + half_xy
    return orbit_camera(center, dist, azimuth_deg, elevation_deg, width, height, fov_deg)


def _point_colors(cloud: LabeledPointCloud, color_by: Literal["label", "rgb"]) -> np.ndarray:
    if color_by == "rgb":
        return np.asarray(cloud.rgb, np.uint8)
    labels = np.asarray(cloud.labels, np.int64)
    out = np.full((len(labels), 3), 255, np.uint8)
    ok = (labels >= 0) & (labels < len(PALETTE))
    out[ok] = PALETTE[labels[ok]]
    return out


def render_cloud(
    cloud: LabeledPointCloud,
    camera: CameraView,
    point_px: int = 2,
    color_by: Literal["label", "rgb"] = "label",
    background: int = 255,
    shade: bool = True,
) -> np.ndarray:
    """uint8 [H, W, 3] image of the cloud seen from `camera`.

    Each point is a disc of radius `point_px` pixels; the nearest point wins each pixel
    (z-buffer). With `shade`, nearer points are drawn brighter so the shape reads in depth.
    """
    H, W = camera.height, camera.width
    img = np.full((H * W, 3), background, np.uint8)
    if len(cloud) == 0:
        return img.reshape(H, W, 3)
    uv, z = project_points(cloud.xyz, camera)
    colors = _point_colors(cloud, color_by).astype(np.float32)
    if shade:
        zin = z[z > 0]
        if zin.size:
            t = (z - zin.min()) / max(float(zin.max() - zin.min()), 1e-6)
            colors *= (1.0 - 0.45 * np.clip(t, 0, 1))[:, None]
    r = max(int(point_px), 0)
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    disc = ox**2 + oy**2 <= r * r + r
    offsets = np.stack([ox[disc], oy[disc]], 1)  # [k, 2]
    cand = (uv[:, None, :] + offsets[None]).reshape(-1, 2)
    zc = np.repeat(z, len(offsets))
    flat, inside = pixel_index(cand, zc, W, H)
    zc = zc.astype(np.float32)
    win = inside & (zc <= zbuffer(flat, zc, inside, W, H).ravel()[flat])
    src = np.nonzero(win)[0] // len(offsets)
    img[flat[win]] = np.clip(colors[src], 0, 255).astype(np.uint8)
    return img.reshape(H, W, 3)


def turntable(
    cloud: LabeledPointCloud,
    n_views: int = 6,
    width: int = 200,
    height: int = 320,
    elevation_deg: float = 10.0,
    point_px: int = 2,
) -> np.ndarray:
    """uint8 [height, n_views * width, 3]: the cloud from `n_views` azimuths side by side."""
    tiles = [
        render_cloud(cloud, fit_camera(cloud.xyz, 360.0 * i / n_views, elevation_deg, width, height), point_px)
        for i in range(n_views)
    ]
    return _join(tiles)


def frame_strip(
    clouds: Sequence[LabeledPointCloud],
    camera: CameraView | None = None,
    point_px: int = 2,
    width: int = 200,
    height: int = 320,
) -> np.ndarray:
    """uint8 [H, len(clouds) * W, 3]: several frames from one camera (fitted to all if None)."""
    if camera is None:
        allxyz = np.concatenate([c.xyz for c in clouds]) if clouds else np.zeros((0, 3))
        camera = fit_camera(allxyz, 30.0, 10.0, width, height)
    return _join([render_cloud(c, camera, point_px) for c in clouds])


def _join(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles side by side, separated by a 2-pixel grey line."""
    if not tiles:
        return np.full((1, 1, 3), 255, np.uint8)
    sep = np.full((tiles[0].shape[0], 2, 3), 180, np.uint8)
    parts: list[np.ndarray] = []
    for i, t in enumerate(tiles):
        if i:
            parts.append(sep)
        parts.append(t)
    return np.concatenate(parts, axis=1)


def render_preview(
    cloud: LabeledPointCloud,
    camera: CameraView | None,
    path: str | os.PathLike[str],
    point_px: int = 2,
) -> np.ndarray:
    """Render the cloud (from `camera`, or a fitted turntable of 4 views if None) to a PNG, atomically.

    Returns the uint8 [H, W, 3] image written.
    """
    img = turntable(cloud, 4, point_px=point_px) if camera is None else render_cloud(cloud, camera, point_px)
    write_png_atomic(path, img)
    return img

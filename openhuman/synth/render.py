"""Calibrated ring cameras and pybullet TinyRenderer rendering (RGB, metric depth, link ids).

Camera conventions: `CameraView` is OpenCV (x right, y down, z forward; pixel centres at integer
coordinates). pybullet wants OpenGL matrices (x right, y up, z backward), so both are built from the same K and pose:

- view = diag(1, -1, -1, 1) @ cam_from_world  (OpenCV camera -> OpenGL eye axes)
- projection from K. TinyRenderer shades pixel (column u, row v from the top) with the sample at
  x_ndc = 2 u / W - 1 and y_ndc = 1 - 2 (v + 1) / H (measured: the rendered disc of a sphere on the
  optical axis is centred on K's principal point only with this mapping; the textbook pixel-centre
  mapping u + 0.5 is off by half a pixel in both axes). With u = fx X/Z + cx, v = fy Y/Z + cy:
  P[0,0] = 2 fx / W, P[0,2] = 1 - 2 cx / W, P[1,1] = 2 fy / H, P[1,2] = 2 (cy + 1) / H - 1, and the
  usual depth rows for `near`/`far`. `tests/test_synth.py` checks this against rendered spheres.

The depth buffer d in [0, 1] is nonlinear; the distance along the optical axis is
z = far * near / (far - (far - near) * d), which is what unprojection with K needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openhuman.types import CameraView

GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """float64 [4, 4] world_from_cam (OpenCV axes) for a camera at `eye` looking at `target`."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("camera looks straight along the up vector; lower the elevation")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2], out[:3, 3] = x, y, z, eye
    return out


def intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """float64 [3, 3] K with vertical field of view `fov_deg`, square pixels, centred principal point."""
    f = 0.5 * height / np.tan(np.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def ring_cameras(
    n: int,
    width: int,
    height: int,
    radius: float,
    cam_height: float,
    target: np.ndarray,
    fov_deg: float,
    azimuth0_deg: float = 0.0,
) -> list[CameraView]:
    """`n` cameras evenly spaced on a horizontal circle of `radius` around `target` (x, y), at
    `cam_height` above the ground, all looking at `target` float[3]. Views are named cam0, cam1, ..."""
    target = np.asarray(target, dtype=np.float64)
    K = intrinsics(width, height, fov_deg)
    cams = []
    for i in range(n):
        a = np.radians(azimuth0_deg) + 2.0 * np.pi * i / n
        eye = np.array([target[0] + radius * np.cos(a), target[1] + radius * np.sin(a), cam_height])
        cams.append(CameraView(f"cam{i}", K.copy(), look_at(eye, target), width, height))
    return cams


def gl_view_matrix(cam: CameraView) -> list[float]:
    """pybullet view matrix (16 floats, column-major) of `cam`."""
    return list((GL_FROM_CV @ cam.cam_from_world).T.reshape(-1))


def gl_projection_matrix(cam: CameraView, near: float, far: float) -> list[float]:
    """pybullet projection matrix (16 floats, column-major) matching `cam.K` exactly (see module doc)."""
    K, W, H = cam.K, cam.width, cam.height
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * K[0, 0] / W
    P[0, 1] = -2.0 * K[0, 1] / W
    P[0, 2] = 1.0 - 2.0 * K[0, 2] / W
    P[1, 1] = 2.0 * K[1, 1] / H
    P[1, 2] = 2.0 * (K[1, 2] + 1.0) / H - 1.0
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = -1.0
    return list(P.T.reshape(-1))


def project(cam: CameraView, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates float64 [M, 2] (u, v) and camera depth z float64 [M] of world points [M, 3]."""
    M = cam.cam_from_world
    pc = np.asarray(xyz, dtype=np.float64) @ M[:3, :3].T + M[:3, 3]
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pc @ cam.K.T)[:, :2] / z[:, None]
    return uv, z


def unproject(cam: CameraView, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points float64 [M, 3] of the finite pixels of `depth` float[H, W] (optical-axis metres),
    and their pixel indices int64 [M, 2] (row, col)."""
    rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[rows, cols].astype(np.float64)
    Kinv = np.linalg.inv(cam.K)
    rays = np.stack([cols, rows, np.ones_like(cols)], axis=1).astype(np.float64) @ Kinv.T
    pc = rays * z[:, None]
    W = cam.world_from_cam
    return pc @ W[:3, :3].T + W[:3, 3], np.stack([rows, cols], axis=1)


@dataclass(frozen=True)
class Render:
    rgb: np.ndarray
    """uint8 [H, W, 3]."""
    depth_m: np.ndarray
    """float32 [H, W] depth along the optical axis in metres; NaN where nothing was hit."""
    seg: np.ndarray
    """int32 [H, W] pybullet object id + ((link index + 1) << 24); -1 where nothing was hit."""


def render_view(
    client: int,
    cam: CameraView,
    near: float = 0.05,
    far: float = 50.0,
    light_dir: tuple[float, float, float] = (0.4, -0.3, 1.0),
) -> Render:
    """Render `cam` in pybullet `client` with the headless TinyRenderer."""
    import pybullet as p

    _, _, rgba, dbuf, seg = p.getCameraImage(
        cam.width,
        cam.height,
        viewMatrix=gl_view_matrix(cam),
        projectionMatrix=gl_projection_matrix(cam, near, far),
        renderer=p.ER_TINY_RENDERER,
        flags=p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX,
        lightDirection=list(light_dir),
        physicsClientId=client,
    )
    H, W = cam.height, cam.width
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(H, W, 4)[..., :3].copy()
    d = np.asarray(dbuf, dtype=np.float64).reshape(H, W)
    seg_arr = np.asarray(seg, dtype=np.int64).reshape(H, W).astype(np.int32)
    z = far * near / (far - (far - near) * d)
    z[seg_arr < 0] = np.nan
    return Render(rgb=rgb, depth_m=z.astype(np.float32), seg=seg_arr)


GROUND_RGB = ((152, 148, 140), (140, 136, 129))
"""The two tones of the ground's 0.5 m checker tiles."""
SKY_RGB = (214, 219, 224)


@dataclass(frozen=True)
class GroundLayer:
    """What a static camera sees of the ground plane z = 0 and the sky (computed once per camera)."""

    rgb: np.ndarray
    """uint8 [H, W, 3] ground (checker tiles) or sky colour."""
    depth_m: np.ndarray
    """float32 [H, W] optical-axis depth of the ground; NaN for sky pixels (beyond `far` or above the horizon)."""


def ground_layer(cam: CameraView, far: float = 50.0, tile: float = 0.5) -> GroundLayer:
    """Ray-cast every pixel of `cam` against the ground plane z = 0 (the TinyRenderer is slow on a
    large plane: shading it costs ~4x the person, so the ground is composited analytically)."""
    H, W = cam.height, cam.width
    cols, rows = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    rays_cam = np.stack([cols, rows, np.ones_like(cols)], axis=-1) @ np.linalg.inv(cam.K).T
    R, c = cam.world_from_cam[:3, :3], cam.world_from_cam[:3, 3]
    rays = rays_cam @ R.T  # world direction per pixel, scaled so that its camera z is 1
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -c[2] / rays[..., 2]
    hit = (rays[..., 2] < 0) & (t > 0) & (t < far) if c[2] > 0 else np.zeros((H, W), dtype=bool)
    depth = np.where(hit, t, np.nan).astype(np.float32)
    xy = c[:2] + np.where(hit, t, 0.0)[..., None] * rays[..., :2]
    odd = (np.floor(xy[..., 0] / tile) + np.floor(xy[..., 1] / tile)) % 2 == 1
    rgb = np.where(odd[..., None], np.array(GROUND_RGB[1]), np.array(GROUND_RGB[0]))
    rgb = np.where(hit[..., None], rgb, np.array(SKY_RGB)).astype(np.uint8)
    return GroundLayer(rgb=rgb, depth_m=depth)


def composite(render: Render, ground: GroundLayer) -> Render:
    """Put the rendered objects in front of (or, where they dip below z = 0, behind) the ground.
    Ground and sky pixels get segmentation -1."""
    hit = render.seg >= 0
    with np.errstate(invalid="ignore"):
        front = hit & ~(ground.depth_m < render.depth_m)
    return Render(
        rgb=np.where(front[..., None], render.rgb, ground.rgb),
        depth_m=np.where(front, render.depth_m, ground.depth_m).astype(np.float32),
        seg=np.where(front, render.seg, -1).astype(np.int32),
    )

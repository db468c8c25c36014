"""Camera geometry, vectorised: unproject depth, project points, z-buffers and visibility.

OpenCV camera axes (x right, y down, z forward); depth is the distance along the optical axis in
metres with NaN = no reading; `CameraView.world_from_cam` maps camera to world coordinates.
Lens distortion (`CameraView.dist`) goes through cv2.projectPoints / cv2.undistortPoints.
"""

from __future__ import annotations

import numpy as np

from openhuman.errors import InputError
from openhuman.types import CameraView


def _has_dist(cam: CameraView) -> bool:
    return cam.dist is not None and bool(np.any(np.asarray(cam.dist) != 0))


def pixel_rays(cam: CameraView, uv: np.ndarray) -> np.ndarray:
    """Normalised camera coordinates (x/z, y/z) of pixels, undistorted when `cam.dist` is set.

    uv: float [N, 2] pixel (column, row). Returns float64 [N, 2].
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    if _has_dist(cam):
        import cv2

        out = cv2.undistortPoints(uv.reshape(-1, 1, 2), np.asarray(cam.K, np.float64), np.asarray(cam.dist, np.float64))
        return np.asarray(out, dtype=np.float64).reshape(-1, 2)
    K = np.asarray(cam.K, dtype=np.float64)
    x = (uv[:, 0] - K[0, 2] - K[0, 1] * (uv[:, 1] - K[1, 2]) / K[1, 1]) / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    return np.stack([x, y], axis=1)


def unproject_depth(
    depth: np.ndarray, cam: CameraView, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """World points of the valid depth pixels.

    depth: float [H, W] metres along the optical axis (NaN, inf or <= 0 = no reading).
    mask: optional bool [H, W] of pixels to keep.
    Returns (xyz float32 [N, 3] world, pix int64 [N, 2] (row, col) of each point).
    """
    depth = np.asarray(depth)
    if depth.shape != (cam.height, cam.width):
        raise InputError(
            f"depth of view {cam.view_id!r} is {depth.shape[::-1]} (w, h) but its camera is "
            f"{cam.width}x{cam.height}; give depth maps at the camera resolution"
        )
    if mask is None:
        rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0))
    else:
        rows, cols = np.nonzero(mask)
    z = depth[rows, cols]
    if mask is not None:  # the mask's pixels are usually few: check their depth only
        ok = np.isfinite(z) & (z > 0)
        rows, cols, z = rows[ok], cols[ok], z[ok]
    z = z.astype(np.float64)
    xy = pixel_rays(cam, np.stack([cols, rows], axis=1))
    T = np.asarray(cam.world_from_cam, dtype=np.float64)
    xyz = T[:3, :3] @ np.stack([xy[:, 0] * z, xy[:, 1] * z, z]) + T[:3, 3:4]  # [3, N]: faster than [N, 3] @ R.T
    return xyz.T.astype(np.float32), np.stack([rows, cols], axis=1).astype(np.int64)


def to_camera(xyz: np.ndarray, cam: CameraView) -> np.ndarray:
    """Camera coordinates [N, 3] of world points xyz [N, 3] (float32 in -> float32 out, else float64).

    Computed as R @ xyz.T on a contiguous [3, N] copy: numpy's [N, 3] @ [3, 3] is several
    times slower for large N.
    """
    xyz = np.asarray(xyz)
    dt = np.float32 if xyz.dtype == np.float32 else np.float64
    T: np.ndarray = np.asarray(cam.cam_from_world, dtype=dt)
    cols = np.ascontiguousarray(xyz.T, dtype=dt)
    return (T[:3, :3] @ cols + T[:3, 3:4]).T


def project_points(xyz: np.ndarray, cam: CameraView) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into a view.

    xyz: float [N, 3] world. Returns (uv [N, 2] pixel (column, row), z [N] depth along the
    optical axis; z <= 0 means behind the camera and uv is then meaningless). float32 points give
    float32 results (fast path), others float64.
    """
    pc = to_camera(xyz, cam)
    z = np.ascontiguousarray(pc[:, 2])
    if _has_dist(cam) and len(pc):
        import cv2

        uv, _ = cv2.projectPoints(
            np.ascontiguousarray(pc, np.float64).reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
            np.asarray(cam.K, np.float64), np.asarray(cam.dist, np.float64),
        )  # fmt: skip
        return uv.reshape(-1, 2).astype(np.float64), z
    K = np.asarray(cam.K, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_z = 1.0 / np.where(np.abs(z) > 1e-12, z, 1e-12)
        x, y = pc[:, 0] * inv_z, pc[:, 1] * inv_z
        uv = np.empty((len(z), 2), dtype=pc.dtype)
        uv[:, 0] = K[0, 0] * x + K[0, 1] * y + K[0, 2]
        uv[:, 1] = K[1, 1] * y + K[1, 2]
    return uv, z


def pixel_index(uv: np.ndarray, z: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Rounded pixel of each projected point and whether it lies in the image in front of the camera.

    Returns (flat index int64 [N] = row * width + col (0 where outside), inside bool [N]).
    """
    col = np.rint(uv[:, 0])
    row = np.rint(uv[:, 1])
    inside = (z > 1e-6) & (col >= 0) & (col < width) & (row >= 0) & (row < height) & np.isfinite(col) & np.isfinite(row)
    flat = np.where(inside, row * width + col, 0).astype(np.int64)
    return flat, inside


def zbuffer(
    flat: np.ndarray,
    z: np.ndarray,
    inside: np.ndarray,
    width: int,
    height: int,
    radius_px: int = 0,
    fill_gap: float = 0.05,
) -> np.ndarray:
    """Nearest depth per pixel of a set of projected points, with holes between points closed.

    flat/inside: from `pixel_index`; z float [N]. With `radius_px` > 0, a pixel whose depth is
    more than `fill_gap` metres behind the nearest depth within (2r+1)^2 pixels (a hole in a
    nearer surface through which a farther surface shows) takes that nearer depth. Slanted
    surfaces keep their own per-pixel depth, so they do not hide themselves.
    Returns float32 [H, W] (inf where empty).
    """
    buf = np.full(height * width, np.inf, dtype=np.float32)
    np.minimum.at(buf, flat[inside], z[inside].astype(np.float32))
    img = buf.reshape(height, width)
    if radius_px > 0:
        import cv2

        kernel = np.ones((2 * radius_px + 1, 2 * radius_px + 1), np.uint8)
        big = np.float32(3e38)
        near = cv2.erode(np.minimum(img, big), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=float(big))  # type: ignore[call-overload]
        near[near >= big] = np.inf
        img = np.where(img > near + fill_gap, near, img)
    return img


def visible_in_view(
    xyz: np.ndarray,
    cam: CameraView,
    tolerance: float,
    depth: np.ndarray | None = None,
    radius_px: int = 1,
    fill_gap: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Which points a view sees, by a z-buffer test with a tolerance.

    The reference depth per pixel is the view's depth map where it has a reading, else a
    z-buffer rendered from the points themselves (holes closed over (2r+1)^2 pixels, see `zbuffer`).
    xyz: float [N, 3] world; depth: optional float [H, W] metres (NaN = no reading).
    Returns (visible bool [N], flat pixel index int64 [N] = row * W + col).
    """
    uv, z = project_points(xyz, cam)
    flat, inside = pixel_index(uv, z, cam.width, cam.height)
    if not inside.any():
        return inside, flat
    # the z-buffer of the points' bounding box (grown by the splat radius) is the full frame's there
    row, col = np.divmod(flat, cam.width)
    r0, c0 = max(int(row[inside].min()) - radius_px, 0), max(int(col[inside].min()) - radius_px, 0)
    r1 = min(int(row[inside].max()) + radius_px + 1, cam.height)
    c1 = min(int(col[inside].max()) + radius_px + 1, cam.width)
    box = np.where(inside, (row - r0) * (c1 - c0) + col - c0, 0)
    ref = zbuffer(box, z, inside, c1 - c0, r1 - r0, radius_px, fill_gap).ravel()[box]
    if depth is not None:
        d = np.asarray(depth, dtype=np.float32).ravel()[flat]
        ref = np.where(np.isfinite(d) & (d > 0), d, ref)
    visible = inside & (z <= ref + tolerance)
    return visible, flat


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """float64 [4, 4] world_from_cam of a camera at `eye` looking at `target` (OpenCV axes, world Z up)."""
    eye = np.asarray(eye, np.float64)
    fwd = np.asarray(target, np.float64) - eye
    fwd /= np.linalg.norm(fwd)
    up_vec = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, np.float64)
    right = np.cross(fwd, up_vec)
    if np.linalg.norm(right) < 1e-9:
        right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, fwd, eye
    return T


def orbit_camera(
    center: np.ndarray,
    distance: float,
    azimuth_deg: float,
    elevation_deg: float = 10.0,
    width: int = 320,
    height: int = 480,
    fov_deg: float = 40.0,
    view_id: str = "orbit",
) -> CameraView:
    """A pinhole CameraView on a sphere around `center` (azimuth about world Z, degrees)."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    c = np.asarray(center, np.float64)
    eye = c + distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    f = 0.5 * height / np.tan(np.deg2rad(fov_deg) / 2)
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    return CameraView(view_id, K, look_at(eye, c), int(width), int(height))


def axes_meeting_point(cameras: list[CameraView]) -> np.ndarray:
    """float64 [3] least-squares point nearest to all cameras' optical axes."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras:
        d = cam.world_from_cam[:3, 2] / np.linalg.norm(cam.world_from_cam[:3, 2])
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ cam.center
    if np.linalg.matrix_rank(A) < 3:
        return np.mean([c.center + c.world_from_cam[:3, 2] for c in cameras], axis=0)
    return np.linalg.solve(A, b)

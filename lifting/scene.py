"""A tiny analytic multi-view test scene: a person made of labelled spheres, ray cast in numpy.

Used by the lifting tests and benchmark where a full synthetic capture (openhuman.synth) is not
needed: exact depth, exact 2D part labels, exact 3D ground truth and 2D landmarks.
The person stands at the origin facing +x, so the person's left is +y; world Z is up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lifting.geometry import look_at, pixel_rays, project_points
from openhuman.ontology import LANDMARK_ID, NUM_CLASSES, PALETTE
from openhuman.types import CameraView, Frame, PartParse

# (x, y, z, radius, body14 id)
SPHERES = np.array(
    [
        [0.0, 0.0, 1.62, 0.11, 1],
        [0.0, 0.0, 1.32, 0.17, 2], [0.0, 0.0, 1.08, 0.16, 2],
        [0.0, 0.26, 1.32, 0.07, 3], [0.0, -0.26, 1.32, 0.07, 4],
        [0.06, 0.30, 1.10, 0.06, 5], [0.06, -0.30, 1.10, 0.06, 6],
        [0.14, 0.32, 0.92, 0.055, 7], [0.14, -0.32, 0.92, 0.055, 8],
        [0.0, 0.10, 0.76, 0.09, 9], [0.0, -0.10, 0.76, 0.09, 10],
        [0.0, 0.11, 0.42, 0.07, 11], [0.0, -0.11, 0.42, 0.07, 12],
        [0.08, 0.12, 0.08, 0.065, 13], [0.08, -0.12, 0.08, 0.065, 14],
    ]
)  # fmt: skip

# landmark name -> sphere row whose centre it sits at (the nose: on the front of the head)
_LANDMARK_SPHERE = {
    "nose": 0, "left_shoulder": 3, "right_shoulder": 4, "left_elbow": 5, "right_elbow": 6,
    "left_wrist": 7, "right_wrist": 8, "left_hip": 9, "right_hip": 10, "left_knee": 11,
    "right_knee": 12, "left_ankle": 13, "right_ankle": 14,
}  # fmt: skip


@dataclass(frozen=True)
class SphereScene:
    cameras: dict[str, CameraView]
    frames: list[Frame]
    parses: list[PartParse]
    depths: dict[str, np.ndarray]
    """view id -> float32 [H, W] metres, NaN = no reading (background)."""
    gt_xyz: np.ndarray
    """float32 [M, 3] points on the outer surface of the spheres that some view sees."""
    gt_labels: np.ndarray
    """uint8 [M] body14 ids."""


def ring_cameras(
    n_views: int, width: int, height: int, radius: float = 3.0, height_m: float = 1.2, dist: np.ndarray | None = None
) -> dict[str, CameraView]:
    """`n_views` cameras evenly on a ring around the origin, looking at (0, 0, 0.9)."""
    f = 1.4 * height
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    cams = {}
    for i in range(n_views):
        a = 2 * np.pi * i / n_views + 0.3
        eye = np.array([radius * np.cos(a), radius * np.sin(a), height_m])
        cams[f"cam{i}"] = CameraView(f"cam{i}", K, look_at(eye, np.array([0, 0, 0.9])), width, height, dist)
    return cams


def _cast(cam: CameraView, spheres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray cast the spheres: (depth float32 [H, W] NaN = miss, sphere row int64 [H, W] -1 = miss)."""
    rows, cols = np.mgrid[0 : cam.height, 0 : cam.width]
    xy = pixel_rays(cam, np.stack([cols.ravel(), rows.ravel()], 1).astype(np.float64))
    d_cam = np.concatenate([xy, np.ones((len(xy), 1))], 1)
    R, o = cam.world_from_cam[:3, :3], cam.center
    d = d_cam @ R.T  # ray with unit z in camera: t is the depth directly
    oc = o[None, :] - spheres[None, :, :3]  # [1, S, 3]
    a = np.sum(d * d, 1)[:, None]
    b = np.einsum("nk,msk->ns", d, oc)
    c = np.sum(oc * oc, -1) - spheres[None, :, 3] ** 2
    disc = b * b - a * c
    t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
    t = np.where(t > 0, t, np.inf)
    idx = np.argmin(t, 1)
    depth = t[np.arange(len(t)), idx]
    hit = np.isfinite(depth)
    depth_img = np.where(hit, depth, np.nan).astype(np.float32).reshape(cam.height, cam.width)
    return depth_img, np.where(hit, idx, -1).reshape(cam.height, cam.width)


def _surface_points(spheres: np.ndarray, n_per_m2: float = 40000.0) -> tuple[np.ndarray, np.ndarray]:
    """Points on the union's outer surface (Fibonacci sampling, inner points removed)."""
    pts, labels = [], []
    for x, y, z, r, lab in spheres:
        n = max(50, int(4 * np.pi * r * r * n_per_m2))
        i = np.arange(n) + 0.5
        phi = np.arccos(1 - 2 * i / n)
        theta = np.pi * (1 + 5**0.5) * i
        p = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1) * r + [x, y, z]
        pts.append(p)
        labels.append(np.full(n, lab))
    xyz, lab_all = np.concatenate(pts), np.concatenate(labels)
    dist = np.linalg.norm(xyz[:, None, :] - spheres[None, :, :3], axis=-1) - spheres[None, :, 3]
    outer = np.all(dist > -1e-6, axis=1)
    return xyz[outer].astype(np.float32), lab_all[outer].astype(np.uint8)


def _keypoints(cam: CameraView, spheres: np.ndarray) -> np.ndarray:
    """float32 [P, 33, 3] landmarks of each person (15 sphere rows each) as seen by cam."""
    kp = np.zeros((len(spheres) // len(SPHERES), 33, 3), np.float32)
    names = list(_LANDMARK_SPHERE)
    for person, rows in enumerate(spheres.reshape(-1, len(SPHERES), spheres.shape[1])):
        at = rows[[_LANDMARK_SPHERE[n] for n in names], :3].copy()
        at[names.index("nose"), 0] += rows[0, 3]  # on the face, in front of the head's centre
        uv, _ = project_points(at, cam)
        for name, p in zip(names, uv, strict=True):
            kp[person, LANDMARK_ID[name]] = (p[0], p[1], 1.0)
    return kp


def sphere_scene(
    n_views: int = 4,
    width: int = 160,
    height: int = 120,
    frame_index: int = 0,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    dist: np.ndarray | None = None,
    people: tuple[tuple[float, float, float], ...] | None = None,
) -> SphereScene:
    """Render the sphere person (shifted by `offset`) into `n_views` ring cameras with exact GT.

    people: offsets of several sphere people instead (person ids 0, 1, ... in every view).
    """
    offsets = np.asarray(people if people is not None else (offset,), np.float64)
    spheres = np.concatenate([SPHERES + np.r_[o, 0.0, 0.0] for o in offsets])
    person_of_row = np.repeat(np.arange(len(offsets)), len(SPHERES))
    cams = ring_cameras(n_views, width, height, dist=dist)
    frames, parses, depths = [], [], {}
    for vid, cam in cams.items():
        depth, idx = _cast(cam, spheres)
        labels = np.where(idx >= 0, spheres[np.maximum(idx, 0), 4], 0).astype(np.int16)
        rgb = PALETTE[labels] // 2 + 60
        frames.append(Frame(vid, frame_index, frame_index / 30.0, rgb.astype(np.uint8)))
        parse = parse_from_labels(vid, frame_index, labels, True, _keypoints(cam, spheres))
        person = np.where(idx >= 0, person_of_row[np.maximum(idx, 0)], -1).astype(np.int16)
        parses.append(replace(parse, person_ids=person))
        depths[vid] = depth
    gt_xyz, gt_labels = _surface_points(spheres)
    seen = _seen_by_any(gt_xyz, cams, depths)
    return SphereScene(cams, frames, parses, depths, gt_xyz[seen], gt_labels[seen])


def _seen_by_any(xyz: np.ndarray, cams: dict[str, CameraView], depths: dict[str, np.ndarray]) -> np.ndarray:
    """bool [M]: points within 1 cm of some view's depth reading at their pixel."""
    seen = np.zeros(len(xyz), bool)
    for vid, cam in cams.items():
        uv, z = project_points(xyz, cam)
        col, row = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
        ok = (z > 0) & (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
        d = np.full(len(xyz), np.nan)
        d[ok] = depths[vid][row[ok], col[ok]]
        seen |= np.abs(d - z) < 0.01
    return seen


def parse_from_labels(
    view_id: str, frame_index: int, labels: np.ndarray, with_probs: bool = False, keypoints: np.ndarray | None = None
) -> PartParse:
    """A PartParse that reproduces given body14 labels uint8/int [H, W] exactly (score 1 on the
    person, one person with id 0); `with_probs` adds one-hot float16 probabilities [C, H, W]."""
    lab = np.asarray(labels).astype(np.int16)
    probs = None
    if with_probs:
        probs = np.zeros((NUM_CLASSES,) + lab.shape, np.float16)
        np.put_along_axis(probs, lab[None].astype(np.int64), 1.0, axis=0)
    person = (lab > 0).astype(np.int16) - 1
    return PartParse(view_id, frame_index, lab, (lab > 0).astype(np.float32), person, probs, keypoints)

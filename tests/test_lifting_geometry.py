"""Camera geometry, visibility and 3D keypoints of the lifting package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifting.geometry import look_at, orbit_camera, project_points, unproject_depth, visible_in_view
from lifting.keypoints import LIMB_LANDMARKS, LR_LANDMARK_SWAP, body_left, mirrored_views, triangulate_ransac
from lifting.scene import SPHERES, ring_cameras, sphere_scene
from openhuman.errors import InputError
from openhuman.ontology import LANDMARK_ID
from openhuman.types import CameraView


@pytest.mark.parametrize("dist", [None, np.array([-0.2, 0.05, 0.001, -0.002, 0.0])])
def test_unproject_then_project_returns_the_pixels(dist):
    cam = ring_cameras(1, 64, 48, dist=dist)["cam0"]
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 4.0, (48, 64)).astype(np.float32)
    depth[5, 7] = np.nan
    depth[6, 8] = 0.0
    xyz, pix = unproject_depth(depth, cam)
    assert len(xyz) == 48 * 64 - 2
    uv, z = project_points(xyz, cam)
    np.testing.assert_allclose(uv[:, ::-1], pix, atol=1e-2)
    np.testing.assert_allclose(z, depth[pix[:, 0], pix[:, 1]], rtol=1e-5)
    # the round trip alone holds for any lens model (ignoring `dist` both ways too): the projection
    # must follow OpenCV's Brown-Conrady model, written out here independently of cv2
    pc = (xyz - cam.center) @ np.asarray(cam.world_from_cam)[:3, :3]
    x, y = pc[:, 0] / pc[:, 2], pc[:, 1] / pc[:, 2]
    k1, k2, p1, p2, k3 = np.zeros(5) if dist is None else dist
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    K = np.asarray(cam.K)
    np.testing.assert_allclose(uv, np.stack([K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]], 1), atol=1e-3)
    if dist is not None:  # the lens moves the corners of this image by pixels, not rounding
        assert np.abs(np.stack([K[0, 0] * x + K[0, 2], K[1, 1] * y + K[1, 2]], 1) - uv).max() > 2.0


def test_unproject_rejects_depth_of_the_wrong_size():
    cam = ring_cameras(1, 64, 48)["cam0"]
    with pytest.raises(InputError, match="camera resolution"):
        unproject_depth(np.ones((48, 65), np.float32), cam)


def test_look_at_uses_opencv_axes():
    T = look_at(np.array([3.0, 0, 1]), np.array([0.0, 0, 1]))
    cam = CameraView("c", np.array([[100.0, 0, 50], [0, 100, 50], [0, 0, 1]]), T, 100, 100)
    uv, z = project_points(np.array([[0.0, 0, 1.5], [0.0, -0.5, 1.0]]), cam)
    assert z[0] == pytest.approx(3.0)
    assert uv[0, 1] < 50  # higher in the world = up in the image (smaller row)
    assert uv[1, 0] < 50  # looking along -x with Z up, world +y is image right, so -y is left


def test_zbuffer_visibility_hides_the_far_side_of_a_sphere():
    n = 4000
    i = np.arange(n) + 0.5
    phi, theta = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    normals = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)
    xyz = normals * 0.3 + [0, 0, 1.0]
    cam = orbit_camera(np.array([0, 0, 1.0]), 3.0, 0.0, 0.0, 160, 160)
    vis, _ = visible_in_view(xyz, cam, tolerance=0.02, radius_px=1)
    facing = normals @ (cam.center - [0, 0, 1.0]) / 3.0
    assert vis[facing > 0.3].mean() > 0.95
    assert vis[facing < -0.1].mean() < 0.02


def test_visibility_uses_the_views_depth_map_when_given():
    s = sphere_scene(n_views=1, width=160, height=120)
    cam = s.cameras["cam0"]
    behind = s.gt_xyz + 0.2 * (s.gt_xyz - cam.center) / np.linalg.norm(s.gt_xyz - cam.center, axis=1, keepdims=True)
    vis, _ = visible_in_view(behind, cam, 0.02, depth=s.depths["cam0"])
    assert vis.sum() < 0.02 * len(behind)


def _kps(n_views: int = 4):
    s = sphere_scene(n_views=n_views)
    return s, list(s.cameras.values()), np.stack([p.keypoints[0] for p in s.parses])


def test_triangulation_is_exact_and_ignores_an_outlier_view():
    s, cams, kps = _kps()
    kps[2, LANDMARK_ID["left_wrist"], :2] += 40.0  # one view's wrist badly off
    X, ok, inliers = triangulate_ransac(kps, cams)
    j = LANDMARK_ID["left_wrist"]
    assert ok[j] and not inliers[2, j]
    np.testing.assert_allclose(X[j], SPHERES[7, :3], atol=1e-6)
    assert not ok[LANDMARK_ID["left_eye"]]  # no view gives it


@pytest.mark.parametrize("n_views", [3, 4, 6])
def test_each_mirrored_view_is_found_and_no_other(n_views):
    _, cams, kps = _kps(n_views)
    rng = np.random.default_rng(n_views)
    noisy = kps.copy()
    noisy[:, :, :2] += rng.normal(0, 2.0, noisy[:, :, :2].shape)
    assert not mirrored_views(noisy, cams).any()
    for v in range(n_views):
        m = noisy.copy()
        m[v] = m[v][LR_LANDMARK_SWAP]
        assert mirrored_views(m, cams).tolist() == [i == v for i in range(n_views)]


def _skeleton_views(n_views: int, seed: int = 0) -> tuple[list[CameraView], np.ndarray]:
    """A standing person facing +x (own left +y, Z up) with all 33 landmarks, seen from a ring of
    cameras with 2 px noise: (cameras, kps [V, 33, 3])."""
    X = np.zeros((33, 3))
    for side, y in (("left", 1.0), ("right", -1.0)):
        for name, (x, w, z) in {
            "eye_inner": (0.09, 0.02, 1.66), "eye": (0.09, 0.035, 1.66), "eye_outer": (0.08, 0.05, 1.66),
            "ear": (0.0, 0.08, 1.63), "mouth": (0.09, 0.025, 1.56), "shoulder": (0.0, 0.2, 1.42),
            "elbow": (0.05, 0.25, 1.12), "wrist": (0.12, 0.27, 0.88), "pinky": (0.14, 0.29, 0.8),
            "index": (0.16, 0.27, 0.8), "thumb": (0.16, 0.24, 0.84), "hip": (0.0, 0.1, 0.92),
            "knee": (0.03, 0.11, 0.5), "ankle": (0.0, 0.11, 0.1), "heel": (-0.04, 0.11, 0.04),
            "foot_index": (0.14, 0.12, 0.02),
        }.items():  # fmt: skip
            X[LANDMARK_ID[f"mouth_{side}" if name == "mouth" else f"{side}_{name}"]] = (x, y * w, z)
    X[LANDMARK_ID["nose"]] = (0.11, 0.0, 1.62)
    rng = np.random.default_rng(seed)
    cams = [orbit_camera(np.array([0, 0, 0.9]), 3.0, 360 * i / n_views + 20, 10, 640, 480) for i in range(n_views)]
    kps = np.ones((n_views, 33, 3))
    for v, cam in enumerate(cams):
        kps[v, :, :2] = project_points(X, cam)[0] + rng.normal(0, 2.0, (33, 2))
    return cams, kps


def test_body_left_points_to_the_persons_own_left():
    cams, kps = _skeleton_views(4)
    left = body_left(kps, cams)
    assert left is not None and left @ [0, 1, 0] > 0.95
    mirrored = kps.copy()
    mirrored[[0, 2]] = mirrored[[0, 2]][:, LR_LANDMARK_SWAP]  # the cues do not depend on sides
    np.testing.assert_allclose(body_left(mirrored, cams), left, atol=1e-6)


def test_body_left_needs_up_and_a_forward_cue():
    cams, kps = _skeleton_views(4)
    no_forward = kps.copy()
    no_forward[:, [LANDMARK_ID[n] for n in ("nose", "left_heel", "right_heel")], 2] = 0.0  # not visible
    assert body_left(no_forward, cams) is None
    feet_only = kps.copy()
    feet_only[:, LANDMARK_ID["nose"], 2] = 0.0
    left = body_left(feet_only, cams)
    assert left is not None and left @ [0, 1, 0] > 0.9
    no_up = kps.copy()
    no_up[:, [LANDMARK_ID["left_hip"], LANDMARK_ID["right_hip"]], 2] = 0.0
    assert body_left(no_up, cams) is None


@pytest.mark.parametrize("views", [(0, 2), (1, 3), (0, 1), (2,)])
def test_legs_mirrored_in_half_of_the_views_are_told_apart_by_the_bodys_left(views):
    """A parser that swaps the legs alone in half of four views: the whole-view check (a minority of
    views, every limb) cannot see it; per limb group the legs of exactly those views are found,
    the tie settled by the body's own left, and the arms are left alone."""
    cams, kps = _skeleton_views(4)
    legs = LIMB_LANDMARKS["legs"]
    swapped = kps.copy()
    half = len(legs) // 2
    for v in views:
        swapped[v, legs] = kps[v, np.r_[legs[half:], legs[:half]]]
    left = body_left(swapped, cams)
    assert np.flatnonzero(mirrored_views(swapped, cams, joints=legs, left_dir=left)).tolist() == list(views)
    assert not mirrored_views(swapped, cams, joints=LIMB_LANDMARKS["arms"], left_dir=left).any()
    if len(views) == 2:
        assert not mirrored_views(swapped, cams).any()  # whole views, a minority only: the tie goes unseen


@pytest.mark.parametrize("n_views, mirrored", [(8, (1, 4, 6)), (12, (0, 5, 6, 11)), (16, (2, 3, 9, 10, 15))])
def test_several_mirrored_views_are_found(n_views, mirrored):
    """A random 33-landmark skeleton seen from a ring of cameras (2 px noise), some views mirrored.
    Up to 10 views every minority set is tried; with more the search starts from the views that
    disagree with a RANSAC skeleton (before, it tried one mirrored view at most)."""
    rng = np.random.default_rng(n_views)
    X = rng.normal(0, 0.35, (33, 3))
    cams = [orbit_camera(np.zeros(3), 3.0, 360 * i / n_views, 10, 640, 480) for i in range(n_views)]
    kps = np.ones((n_views, 33, 3))
    for v, cam in enumerate(cams):
        kps[v, :, :2] = project_points(X, cam)[0] + rng.normal(0, 2.0, (33, 2))
    assert not mirrored_views(kps, cams).any()
    kps[list(mirrored)] = kps[list(mirrored)][:, LR_LANDMARK_SWAP]
    assert np.flatnonzero(mirrored_views(kps, cams)).tolist() == list(mirrored)


def test_lifting_never_imports_tracking_or_the_pipeline():
    root = Path(__file__).resolve().parent.parent / "lifting"
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import tracking" not in text and "from tracking" not in text, path
        assert "openhuman.pipeline" not in text, path


def test_voxel_downsample_averages_and_outlier_removal_drops_strays():
    from lifting.sources import Points, remove_outliers, voxel_downsample

    xyz = np.array([[0.001, 0.001, 0.001], [0.003, 0.003, 0.003], [0.5, 0.5, 0.5]], np.float32)
    rgb = np.array([[0, 0, 0], [10, 20, 30], [5, 5, 5]], np.uint8)
    down = voxel_downsample(Points(xyz, None, rgb), 0.01)
    np.testing.assert_allclose(down.xyz, [[0.002, 0.002, 0.002], [0.5, 0.5, 0.5]], atol=1e-6)
    assert down.rgb.tolist() == [[5, 10, 15], [5, 5, 5]]
    grid = np.stack(np.meshgrid(*[np.arange(10) * 0.01] * 3, indexing="ij"), -1).reshape(-1, 3)
    cloud = Points(np.vstack([grid, [[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]]).astype(np.float32))
    kept = remove_outliers(cloud, neighbors=8, std_ratio=2.0)
    assert len(kept) == 1000 and kept.xyz.max() < 0.1
    # it keeps the neighbours it found (for the label vote): indices into the kept points,
    # nearest first, the point itself at distance 0, the dropped strays never among them
    nb = kept.neighbors
    assert nb.shape == (1000, 9) and nb.min() >= 0
    d = np.linalg.norm(kept.xyz[nb] - kept.xyz[:, None], axis=2)
    assert np.all(d[:, 0] == 0) and np.all(np.diff(d, axis=1) >= -1e-7)
    brute = np.sort(np.linalg.norm(kept.xyz[:, None] - kept.xyz[None], axis=2), axis=1)[:, :9]
    np.testing.assert_allclose(d, brute, atol=1e-6)


def test_points_subset_follows_the_neighbour_indices():
    from lifting.sources import Points

    xyz = np.arange(15, dtype=np.float32).reshape(5, 3)
    nb = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, -1]], np.int32)
    sub = Points(xyz, neighbors=nb).subset(np.array([True, False, True, True, False]))
    assert sub.neighbors.tolist() == [[0, -1], [1, 2], [2, -1]]  # dropped points become -1
    by_index = Points(xyz, neighbors=nb).subset(np.array([3, 2]))
    assert by_index.neighbors.tolist() == [[0, -1], [1, 0]]
    assert Points(xyz).subset(np.array([0])).neighbors is None

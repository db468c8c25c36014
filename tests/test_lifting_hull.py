"""The visual hull cut to capsules around the triangulated skeleton (`keypoints.skeleton_capsules`)."""

from __future__ import annotations

import numpy as np
import pytest

from lifting import Lifter, LiftingConfig
from lifting.geometry import pixel_rays, project_points
from lifting.keypoints import (
    _CAPSULE_BONES,
    _CAPSULE_PARTS,
    capsule_parts,
    in_capsules,
    nearest_bone_parts,
    skeleton_capsules,
)
from lifting.scene import ring_cameras
from openhuman.ontology import LANDMARK_ID, LR_SWAP, PART_ID
from openhuman.types import PartParse

# a standing stick figure (metres, Z up, facing +x, its left is +y): landmark -> position
_JOINTS = {
    "nose": (0.09, 0.0, 1.62), "left_ear": (0.0, 0.07, 1.63), "right_ear": (0.0, -0.07, 1.63),
    "left_shoulder": (0.0, 0.19, 1.40), "right_shoulder": (0.0, -0.19, 1.40),
    "left_elbow": (0.02, 0.30, 1.14), "right_elbow": (0.02, -0.30, 1.14),
    "left_wrist": (0.10, 0.36, 0.92), "right_wrist": (0.10, -0.36, 0.92),
    "left_index": (0.14, 0.38, 0.84), "right_index": (0.14, -0.38, 0.84),
    "left_hip": (0.0, 0.10, 0.92), "right_hip": (0.0, -0.10, 0.92),
    "left_knee": (0.03, 0.11, 0.50), "right_knee": (0.03, -0.11, 0.50),
    "left_ankle": (0.0, 0.12, 0.09), "right_ankle": (0.0, -0.12, 0.09),
    "left_heel": (-0.05, 0.12, 0.04), "right_heel": (-0.05, -0.12, 0.04),
    "left_foot_index": (0.15, 0.13, 0.03), "right_foot_index": (0.15, -0.13, 0.03),
}  # fmt: skip
_LIMB_RADIUS = 0.045
_TRUNK_RADIUS = 0.09  # the torso's outline and diagonals, and the head


def _figure() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(landmarks float [33, 3] (NaN where unused), bone starts [B, 3], bone ends [B, 3], radii [B])."""
    X = np.full((33, 3), np.nan)
    for name, p in _JOINTS.items():
        X[LANDMARK_ID[name]] = p
    A, B = X[_CAPSULE_BONES[:, 0]], X[_CAPSULE_BONES[:, 1]]
    R = np.full(len(A), _LIMB_RADIUS)
    R[14:] = _TRUNK_RADIUS  # the bones after the limbs, hands and feet: torso and head
    return X, A, B, R


def _ray_segment_distance(o: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float [N]: distance between rays o + s d (s >= 0; o [3], d [N, 3] unit) and segment a-b."""
    ts = np.linspace(0.0, 1.0, 24)
    pts = a + ts[:, None] * (b - a)  # the segment sampled (1/24 of a bone at most between samples)
    rel = pts - o  # [T, 3]
    s = np.clip(d @ rel.T, 0.0, None)  # [N, T]
    closest = s[..., None] * d[:, None, :]
    return np.sqrt(((closest - rel[None]) ** 2).sum(-1)).min(1)


@pytest.fixture(scope="module")
def figure():
    X, A, B, R = _figure()
    cams = ring_cameras(4, 160, 240, radius=3.0)
    masks, kps = [], []
    for cam in cams.values():
        rows, cols = np.mgrid[0 : cam.height, 0 : cam.width]
        rays = pixel_rays(cam, np.stack([cols.ravel(), rows.ravel()], 1).astype(np.float64))
        d = np.concatenate([rays, np.ones((len(rays), 1))], 1) @ cam.world_from_cam[:3, :3].T
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        inside = np.zeros(len(d), bool)
        for a, b, r in zip(A, B, R, strict=True):
            inside |= _ray_segment_distance(cam.center, d, a, b) <= r
        masks.append(inside.reshape(cam.height, cam.width))
        uv, _ = project_points(np.nan_to_num(X), cam)
        kps.append(np.concatenate([uv, np.where(np.isnan(X[:, :1]), 0.0, 1.0)], 1))
    return cams, masks, np.stack(kps), (A, B, R)


def test_capsule_radii_are_measured_from_the_silhouettes(figure):
    cams, masks, kps, (A, B, R) = figure
    caps = skeleton_capsules(kps, list(cams.values()), masks)
    assert caps is not None
    start, end, radius = caps
    np.testing.assert_allclose(start, A, atol=0.01)  # triangulated
    np.testing.assert_allclose(end, B, atol=0.01)
    limbs = slice(0, 14)
    # a limb's half-width in the views, within about a pixel (~1 cm at 3 m here) of the truth; a
    # view where the limb crosses the body measures more, so some limbs come out wider
    assert abs(np.median(radius[limbs]) - _LIMB_RADIUS) < 0.006
    assert np.all(radius[limbs] >= _LIMB_RADIUS - 0.012) and np.all(radius[limbs] <= 1.5 * _LIMB_RADIUS + 0.01)
    assert np.all(radius >= 0.6 * R)  # torso and head: at least most of it
    # a view whose mask misses a limb measures nothing there; the other views still decide
    holed = [m.copy() for m in masks]
    holed[0][:] = False
    caps = skeleton_capsules(kps, list(cams.values()), holed)
    assert caps is not None
    assert abs(np.median(caps[2][limbs]) - _LIMB_RADIUS) < 0.008


def test_no_capsules_without_a_complete_skeleton(figure):
    cams, masks, kps, _ = figure
    missing = kps.copy()
    missing[:, LANDMARK_ID["left_knee"], 2] = 0.0  # never visible: cannot be triangulated
    assert skeleton_capsules(missing, list(cams.values()), masks) is None
    empty = [np.zeros_like(m) for m in masks]  # no silhouette measures any bone
    assert skeleton_capsules(kps, list(cams.values()), empty) is None


def test_in_capsules():
    caps = [(np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([0.1]))]
    pts = np.array([[0.5, 0.09, 0], [0.5, 0.11, 0], [-0.09, 0, 0], [-0.11, 0, 0], [1.05, 0.05, 0.05]])
    assert in_capsules(pts, caps).tolist() == [True, False, True, False, True]
    assert not in_capsules(pts, []).any()


def _parses(cams, masks, kps, with_keypoints=True):
    out = []
    for i, (vid, mask) in enumerate(zip(cams, masks, strict=True)):
        labels = mask.astype(np.int16) * 2  # all torso: the labels do not matter here
        person = np.where(mask, 0, -1).astype(np.int16)
        kp = kps[i][None].astype(np.float32) if with_keypoints else None
        out.append(PartParse(vid, 0, labels, mask.astype(np.float32), person, None, kp))
    return out


def test_the_hull_is_cut_to_the_skeleton(figure):
    cams, masks, kps, (A, B, R) = figure

    def surface_error(cloud) -> np.ndarray:  # each point's distance to the figure's surface
        xyz = np.asarray(cloud.xyz, np.float64)
        d = np.full(len(xyz), np.inf)
        for a, b, r in zip(A, B, R, strict=True):
            ab = b - a
            t = np.clip((xyz - a) @ ab / (ab @ ab), 0, 1)
            d = np.minimum(d, np.linalg.norm(xyz - a - t[:, None] * ab, axis=1) - r)
        return np.abs(d)

    frames = []
    cfg = LiftingConfig(source="hull", hull_samples=20000, drop_background=False, vote_rounds=0)
    loose = Lifter(cams, LiftingConfig(**{**cfg.__dict__, "hull_skeleton_margin": 0.0}))
    cut = Lifter(cams, cfg)
    before = loose.lift(0, 0.0, frames, _parses(cams, masks, kps))
    after = cut.lift(0, 0.0, frames, _parses(cams, masks, kps))
    assert loose.last_source == cut.last_source == "hull"
    e0, e1 = surface_error(before), surface_error(after)
    # measured: within 3 cm of the surface 0.60 -> 0.77 of the points, 90th percentile 9.6 -> 4.9 cm
    assert np.mean(e1 <= 0.03) > np.mean(e0 <= 0.03) + 0.1
    assert np.percentile(e1, 90) < 0.6 * np.percentile(e0, 90)
    # no part of the figure was cut away: beside every bone's middle the cut hull keeps points as
    # near as the loose one has them
    for a, b in zip(A, B, strict=True):
        near = [np.min(np.linalg.norm(np.asarray(c.xyz) - (a + b) / 2, axis=1)) for c in (before, after)]
        assert near[1] < near[0] + 0.02
    # without landmarks the hull is left as it was
    plain = Lifter(cams, cfg).lift(0, 0.0, frames, _parses(cams, masks, kps, with_keypoints=False))
    np.testing.assert_array_equal(plain.xyz, before.xyz)


def test_points_take_the_part_of_their_nearest_bone(figure):
    cams, masks, kps, (A, B, R) = figure
    parts = capsule_parts(A, kps, list(cams.values()))
    np.testing.assert_array_equal(parts, _CAPSULE_PARTS)  # the landmarks' sides are right here
    limb = np.arange(14)
    mid = (A[limb] + B[limb]) / 2
    sideways = np.cross(B[limb] - A[limb], [1.0, 0.0, 0.0])
    sideways /= np.linalg.norm(sideways, axis=1, keepdims=True)
    pts = np.concatenate([mid + 0.03 * sideways, [[3.0, 3.0, 3.0]]])  # 3 cm off each limb's middle, and far off
    got = nearest_bone_parts(pts, [(A, B, parts)])
    np.testing.assert_array_equal(got, np.r_[_CAPSULE_PARTS[limb], 0])
    assert nearest_bone_parts(pts, []).tolist() == [0] * len(pts)
    # a second skeleton far away changes nothing here, and labels the points next to it
    shifted = (A + [0.0, 2.0, 0.0], B + [0.0, 2.0, 0.0], parts)
    np.testing.assert_array_equal(nearest_bone_parts(pts, [(A, B, parts), shifted]), got)
    assert nearest_bone_parts(mid[:1] + [0.0, 2.0, 0.0], [(A, B, parts), shifted])[0] == _CAPSULE_PARTS[0]


def test_bone_parts_follow_the_body_when_the_landmarks_sides_are_mirrored(figure):
    """mediapipe can name the left limbs right in most views: the bones then triangulate with
    swapped names, and their parts must be swapped back, so that the physical left arm is
    still the left arm."""
    cams, masks, kps, _ = figure
    names = [n for n in LANDMARK_ID if n.startswith("left_")]
    swapped = kps.copy()
    for n in names:
        a, b = LANDMARK_ID[n], LANDMARK_ID["right_" + n[5:]]
        swapped[:, [a, b]] = kps[:, [b, a]]
    caps = skeleton_capsules(swapped, list(cams.values()), masks)
    assert caps is not None
    start, end, _ = caps
    parts = capsule_parts(start, swapped, list(cams.values()))
    np.testing.assert_array_equal(parts, LR_SWAP[_CAPSULE_PARTS])
    left_elbow = np.array([_JOINTS["left_elbow"]]) + [0.0, 0.03, 0.0]
    assert nearest_bone_parts(left_elbow, [(start, end, parts)])[0] in (
        PART_ID["left upper arm"],
        PART_ID["left forearm"],
    )


def test_hull_points_take_the_skeletons_vote_among_the_parts(figure):
    """Views that call the whole figure torso. A vote weighted above the views' own (1.5) gives
    the hull's limb points their limbs; the default (0.75) leaves a part that every view agrees
    on alone. Either way no point the views see turns background or leaves it (a point no view
    sees takes its neighbours' majority label, which can tip either way)."""
    cams, masks, kps, (A, B, R) = figure
    cfg = LiftingConfig(source="hull", hull_samples=20000, drop_background=False, vote_rounds=0, temporal_window=1)
    assert cfg.hull_skeleton_vote < 1.0

    def lift(vote: float):
        return Lifter(cams, LiftingConfig(**{**cfg.__dict__, "hull_skeleton_vote": vote})).lift(
            0, 0.0, [], _parses(cams, masks, kps)
        )

    off, default, strong = lift(0.0), lift(cfg.hull_skeleton_vote), lift(1.5)
    np.testing.assert_array_equal(strong.xyz, off.xyz)  # the vote changes labels only
    assert set(np.unique(off.labels).tolist()) <= {0, PART_ID["torso"]}
    truth = nearest_bone_parts(off.xyz, [(A, B, _CAPSULE_PARTS)])
    person = off.labels > 0
    assert np.mean(strong.labels[person] == truth[person]) > 0.9
    assert np.mean(off.labels[person] == truth[person]) < 0.6
    np.testing.assert_array_equal(default.labels, off.labels)  # unanimous views outweigh 0.75
    assert np.mean((strong.labels == 0) == (off.labels == 0)) > 0.99


def test_a_view_that_shows_nobody_is_left_out_of_the_hull(figure, caplog):
    """One view whose parser missed the person must not carve the whole hull away: the other
    three carve it. With one view left showing the person there is no hull, and a warning says so."""
    cams, masks, kps, (A, B, R) = figure
    cfg = LiftingConfig(source="hull", hull_samples=5000, drop_background=False, vote_rounds=0, temporal_window=1)
    cfg.hull_skeleton_margin = cfg.hull_skeleton_vote = cfg.hull_rim_distance = 0.0  # the hull itself
    full = Lifter(cams, cfg).lift(0, 0.0, [], _parses(cams, masks, kps))
    missed = [m.copy() for m in masks]
    missed[0][:] = False
    three = Lifter(cams, cfg).lift(0, 0.0, [], _parses(cams, missed, kps))
    assert len(three) > 0.9 * len(full)
    for a, b in zip(A, B, strict=True):  # every bone still has hull points beside it
        assert np.min(np.linalg.norm(np.asarray(three.xyz) - (a + b) / 2, axis=1)) < 0.15
    lone = [m if i == 0 else np.zeros_like(m) for i, m in enumerate(masks)]
    with caplog.at_level("WARNING"):
        assert len(Lifter(cams, cfg).lift(0, 0.0, [], _parses(cams, lone, kps))) == 0
    assert "needs a person in at least 2 views; 1 of 4 views show one" in caplog.text

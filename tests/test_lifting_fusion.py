"""Point sources, label fusion, left/right correction and bad input of `lifting.Lifter`."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from lifting import Lifter, LiftingConfig
from lifting.fusion import fuse_labels
from lifting.keypoints import LIMB_LANDMARKS, LIMB_SWAP, LR_LANDMARK_SWAP
from lifting.metrics import point_confusion, point_miou
from lifting.scene import SPHERES, sphere_scene
from lifting.sources import Points
from openhuman.errors import InputError
from openhuman.ontology import LEFT_IDS, LR_SWAP, PART_ID, RIGHT_IDS


@pytest.fixture(scope="module")
def scene():
    return sphere_scene(width=320, height=240)


def _lift(scene, parses=None, depths="scene", **cfg):
    depths = scene.depths if depths == "scene" else depths
    lifter = Lifter(scene.cameras, LiftingConfig(**cfg))
    return lifter.lift(0, 0.0, scene.frames, parses or scene.parses, depths), lifter


def test_depth_source_with_exact_labels_gives_near_perfect_3d_miou(scene):
    cloud, lifter = _lift(scene, source="auto")
    assert lifter.last_source == "depth"
    miou, per_class = point_miou(cloud.xyz, cloud.labels, scene.gt_xyz, scene.gt_labels)
    assert miou > 0.9
    assert np.nanmin(per_class[1:]) > 0.75
    assert cloud.labels.dtype == np.int16 and cloud.track_ids.dtype == np.int32
    assert np.all(cloud.track_ids == 0)
    assert np.median(cloud.confidence) > 0.99 and cloud.confidence.min() > 0.4


def test_hard_labels_without_probs_fuse_like_probs(scene):
    parses = [dataclasses.replace(p, probs=None) for p in scene.parses]
    a, _ = _lift(scene, source="depth")
    b, _ = _lift(scene, parses, source="depth")
    assert np.mean(a.labels == b.labels) > 0.99


def test_lens_distortion_is_honoured():
    s = sphere_scene(width=320, height=240, dist=np.array([-0.25, 0.06, 0.0, 0.0, 0.0]))
    cloud, _ = _lift(s, source="depth")
    assert point_miou(cloud.xyz, cloud.labels, s.gt_xyz, s.gt_labels)[0] > 0.9


def test_visual_hull_from_masks_alone(scene):
    cloud, lifter = _lift(scene, depths=None, source="auto", hull_samples=20000)
    assert lifter.last_source == "hull"
    conf = point_confusion(cloud.xyz, cloud.labels, scene.gt_xyz, scene.gt_labels, max_dist=0.06)
    matched = conf[1:, 1:]
    assert np.trace(matched) / matched.sum() > 0.85  # labels right where the hull meets the body
    assert conf[1:, 0].sum() / conf[1:].sum() < 0.1  # the hull covers the body


def test_hull_rim_filter_drops_the_hull_away_from_the_body(scene):
    """A hull from 4 views fills the gaps between the spheres and the corners around them; the
    points kept near the mask edges of two views lie on the spheres far more often, and the
    spheres stay covered."""
    from scipy.spatial import cKDTree

    tree = cKDTree(scene.gt_xyz)
    off, covered = {}, {}
    for rim in (0.0, 0.01):
        cloud, lifter = _lift(scene, depths=None, source="hull", hull_rim_distance=rim, hull_samples=40000)
        assert lifter.last_source == "hull"
        d, _ = tree.query(cloud.xyz)
        off[rim] = float(np.mean(d > 0.03))
        covered[rim] = float(np.mean(cKDTree(cloud.xyz).query(scene.gt_xyz)[0] < 0.03))
    # measured: 0.239 -> 0.122 of the points over 3 cm off the spheres; sphere points with a
    # cloud point within 3 cm 0.951 -> 0.912
    assert off[0.01] < 0.6 * off[0.0]
    assert covered[0.01] > 0.88
    # a view that shows two people: no filter (their joint mask hides each one's rims)
    two = [dataclasses.replace(p, person_ids=np.where(p.person_ids >= 0, np.indices(p.person_ids.shape)[1] % 2, -1))
           for p in scene.parses]  # fmt: skip
    kept, _ = _lift(scene, two, depths=None, source="hull", hull_rim_distance=0.01, hull_samples=40000)
    plain, _ = _lift(scene, two, depths=None, source="hull", hull_rim_distance=0.0, hull_samples=40000)
    assert len(kept) == len(plain)


@pytest.mark.parametrize("fmt", ["obj", "ply"])
def test_user_mesh_or_point_cloud_per_frame(scene, tmp_path, fmt):
    import trimesh

    spheres = [trimesh.creation.icosphere(3, r).apply_translation((x, y, z)) for x, y, z, r, _ in SPHERES]
    mesh = trimesh.util.concatenate(spheres)
    if fmt == "obj":
        mesh.export(tmp_path / "000000.obj")
    else:
        trimesh.PointCloud(scene.gt_xyz).export(tmp_path / "0.ply")
    cloud, lifter = _lift(scene, depths=None, source="mesh", geometry_dir=str(tmp_path), mesh_samples=30000)
    assert lifter.last_source == "mesh"
    assert point_miou(cloud.xyz, cloud.labels, scene.gt_xyz, scene.gt_labels)[0] > 0.85
    with pytest.raises(InputError, match="geometry_dir"):
        Lifter(scene.cameras, LiftingConfig(source="mesh"))


def _mirror(parse):
    return dataclasses.replace(
        parse,
        labels=LR_SWAP[parse.labels],
        probs=parse.probs[LR_SWAP],
        keypoints=parse.keypoints[:, LR_LANDMARK_SWAP],
    )


def _lr_confusions(cloud, scene):
    conf = point_confusion(cloud.xyz, cloud.labels, scene.gt_xyz, scene.gt_labels)
    return int(conf[np.ix_(LEFT_IDS, RIGHT_IDS)].sum() + conf[np.ix_(RIGHT_IDS, LEFT_IDS)].sum())


@pytest.mark.parametrize("check", ["keypoints", "limbs"])
def test_a_view_with_mirrored_left_right_is_corrected_not_averaged(scene, caplog, check):
    parses = [_mirror(scene.parses[0])] + list(scene.parses[1:])
    off, _ = _lift(scene, parses, source="depth", lr_correction="off", side_radius=0)
    with caplog.at_level(logging.DEBUG, logger="lifting.keypoints"):
        on, _ = _lift(scene, parses, source="depth", lr_correction=check, side_radius=0)
    assert "mirrored in views [0]" in caplog.text
    clean, _ = _lift(scene, source="depth", side_radius=0)
    assert _lr_confusions(off, scene) > 100
    assert _lr_confusions(on, scene) == _lr_confusions(clean, scene)
    assert point_miou(on.xyz, on.labels, scene.gt_xyz, scene.gt_labels)[0] > 0.9
    # without the landmark check, one side per limb alone removes most of the mirrored view's votes
    sides, _ = _lift(scene, parses, source="depth", lr_correction="off")
    assert _lr_confusions(sides, scene) < _lr_confusions(off, scene) / 2


def _mirror_legs(parse):
    legs = LIMB_LANDMARKS["legs"]
    half = len(legs) // 2
    kps = parse.keypoints.copy()
    kps[:, legs] = parse.keypoints[:, np.r_[legs[half:], legs[:half]]]
    perm = LIMB_SWAP["legs"]
    return dataclasses.replace(parse, labels=perm[parse.labels], probs=parse.probs[perm], keypoints=kps)


def test_legs_mirrored_in_half_of_the_views_are_corrected_per_limb(scene):
    """Legs swapped in two of four views (as a parser does where the legs cross in a side view):
    checking whole views cannot tell which half is wrong; per limb group, with the tie settled by
    the body's own left, the cloud is as clean as without the swap."""
    parses = [_mirror_legs(p) if i in (0, 2) else p for i, p in enumerate(scene.parses)]
    views, _ = _lift(scene, parses, source="depth", lr_correction="keypoints", side_radius=0)
    limbs, _ = _lift(scene, parses, source="depth", lr_correction="limbs", side_radius=0)
    clean, _ = _lift(scene, source="depth", side_radius=0)
    assert _lr_confusions(views, scene) > 100
    assert _lr_confusions(limbs, scene) == _lr_confusions(clean, scene)


@pytest.mark.parametrize(
    "bad, key", [({"voxel_size": -1.0}, "voxel_size"), ({"temporal_decay": 0.0}, "temporal_decay"),
                 ({"depth_min": 5.0, "depth_max": 1.0}, "depth_min"), ({"hull_bounds": [0, 0, 0, 1, 1]}, "hull_bounds")],
)  # fmt: skip
def test_settings_out_of_range_are_refused_in_one_line(scene, bad, key):
    LiftingConfig().check()
    with pytest.raises(InputError, match=rf"^lifting\.{key} is .*; it must be "):
        Lifter(scene.cameras, LiftingConfig(**bad))


def test_unseen_points_take_neighbour_labels_with_zero_confidence(scene):
    inner = SPHERES[[7, 8], :3] + [[0.0, 0.0, 0.01], [0.0, 0.0, -0.01]]  # inside the hands
    xyz = np.concatenate([scene.gt_xyz, inner]).astype(np.float32)
    parses = {p.view_id: p for p in scene.parses}
    fused = fuse_labels(Points(xyz), scene.cameras, parses, None, scene.depths, LiftingConfig())
    assert not fused.seen[-2:].any() and fused.seen[:-2].mean() > 0.98
    assert fused.labels[-2:].tolist() == [7, 8]
    assert np.all(fused.confidence[-2:] == 0)
    assert fused.visibility_tests == len(xyz) * 4


def test_track_ids_are_the_majority_over_views(scene):
    ids = [5, 5, 5, 9]
    parses = [
        dataclasses.replace(p, person_ids=np.where(p.person_ids >= 0, i, -1).astype(np.int16))
        for p, i in zip(scene.parses, ids, strict=True)
    ]
    cloud, _ = _lift(scene, parses, source="depth", person_match_px=0)  # the views' own ids
    # points seen by view 3 alone keep its id; everywhere else the three other views win
    assert np.mean(cloud.track_ids == 5) > 0.75 and np.mean(cloud.track_ids == 9) < 0.2
    assert set(np.unique(cloud.track_ids)) <= {5, 9}


def test_mismatched_cameras_and_unknown_views_are_input_errors(scene):
    lifter = Lifter(scene.cameras)
    small = dataclasses.replace(scene.frames[0], rgb=scene.frames[0].rgb[:100])
    with pytest.raises(InputError, match="fix cameras.json"):
        lifter.lift(0, 0.0, [small] + scene.frames[1:], scene.parses, scene.depths)
    alien = dataclasses.replace(scene.frames[0], view_id="nope")
    with pytest.raises(InputError, match="has no camera"):
        lifter.lift(0, 0.0, [alien], scene.parses[:1])
    with pytest.raises(InputError, match="camera resolution"):
        lifter.lift(0, 0.0, scene.frames, scene.parses, {"cam0": np.ones((10, 10), np.float32)})
    with pytest.raises(InputError, match="calibrated cameras"):
        Lifter(None)
    bad_probs = dataclasses.replace(scene.parses[0], probs=scene.parses[0].probs[:, :100])
    with pytest.raises(InputError, match="parse probs"):
        lifter.lift(0, 0.0, scene.frames, [bad_probs] + scene.parses[1:], scene.depths)
    bad_scores = dataclasses.replace(scene.parses[0], scores=np.ones((3, 3), np.float32))
    with pytest.raises(InputError, match="parse scores"):
        lifter.lift(0, 0.0, scene.frames, [bad_scores] + scene.parses[1:], scene.depths)
    odd_kps = [dataclasses.replace(p, keypoints=np.zeros((1, 17, 3), np.float32)) for p in scene.parses]
    assert len(lifter.lift(0, 0.0, scene.frames, odd_kps, scene.depths)) > 1000


def test_bad_depth_and_empty_views_give_flagged_empty_clouds(scene, caplog):
    nan_depth = {v: np.full_like(d, np.nan) for v, d in scene.depths.items()}
    zero_depth = {v: np.zeros_like(d) for v, d in scene.depths.items()}
    inf_depth = {v: np.full_like(d, np.inf) for v, d in scene.depths.items()}
    lifter = Lifter(scene.cameras, LiftingConfig(source="depth"))
    with caplog.at_level(logging.WARNING):
        for bad in (nan_depth, zero_depth, inf_depth):
            cloud = lifter.lift(3, 0.1, scene.frames, scene.parses, bad)
            assert len(cloud) == 0 and cloud.frame_index == 3 and cloud.xyz.shape == (0, 3)
    assert "no view has a usable depth map" in caplog.text
    # each view's unusable depth is reported once, not at every frame
    assert sum("all zero/NaN/inf" in r.getMessage() for r in caplog.records) == len(scene.depths)
    # auto falls back to the visual hull when depth is unusable
    auto = Lifter(scene.cameras, LiftingConfig(source="auto", hull_samples=5000))
    assert len(auto.lift(0, 0.0, scene.frames, scene.parses, zero_depth)) > 1000 and auto.last_source == "hull"
    nobody = [
        dataclasses.replace(p, labels=np.zeros_like(p.labels), person_ids=np.full_like(p.person_ids, -1))
        for p in scene.parses
    ]
    for source in ("depth", "hull"):
        cloud = Lifter(scene.cameras, LiftingConfig(source=source)).lift(1, 0.0, scene.frames, nobody, scene.depths)
        assert len(cloud) == 0
    # NaN holes and inf readings in otherwise good depth are skipped, not propagated
    holes = {v: np.where(np.random.default_rng(0).random(d.shape) < 0.2, np.inf, d) for v, d in scene.depths.items()}
    cloud = lifter.lift(0, 0.0, scene.frames, scene.parses, holes)
    assert np.isfinite(cloud.xyz).all()
    assert point_miou(cloud.xyz, cloud.labels, scene.gt_xyz, scene.gt_labels)[0] > 0.85


def test_silhouette_distance_drops_flying_pixels_from_a_too_large_mask(scene):
    """One view's person mask spills 6 px past the body onto a far background: those pixels
    unproject metres behind the person. The distance to the other views' silhouettes drops them."""
    import cv2

    from lifting.scene import parse_from_labels

    depths = {v: d.copy() for v, d in scene.depths.items()}
    p0 = scene.parses[0]
    grown = cv2.dilate(p0.labels.astype(np.uint8), np.ones((13, 13), np.uint8))
    depths[p0.view_id] = np.where(np.isfinite(depths[p0.view_id]), depths[p0.view_id], 8.0).astype(np.float32)
    parses = [parse_from_labels(p0.view_id, 0, grown)] + list(scene.parses[1:])
    centre = scene.gt_xyz.mean(0)

    def far_points(cloud):
        return int((np.linalg.norm(cloud.xyz - centre, axis=1) > 1.5).sum())

    leaky, _ = _lift(scene, parses, depths, source="depth", silhouette_max_px=0.0, outlier_neighbors=0)
    assert far_points(leaky) > 50, "the test setup did not produce flying pixels"
    clean, _ = _lift(scene, parses, depths, source="depth")
    assert far_points(clean) == 0
    assert point_miou(clean.xyz, clean.labels, scene.gt_xyz, scene.gt_labels)[0] > 0.85


def test_silhouette_distances_in_a_window_match_the_whole_frame(scene):
    """With `max_px` only the window around each mask is searched: the distances up to `max_px`
    are those of the whole frame (to float rounding: the transform adds in another order), the
    farther ones inf."""
    from lifting.sources import silhouette_distances

    rng = np.random.default_rng(3)
    centre = scene.gt_xyz.mean(0)
    xyz = (centre + rng.normal(0, 0.6, (4000, 3))).astype(np.float32)
    parses = {p.view_id: p for p in scene.parses}
    full = silhouette_distances(xyz, scene.cameras, parses)
    near = silhouette_distances(xyz, scene.cameras, parses, max_px=12.0)
    close = full <= 12.0
    assert 0.1 < close.mean() < 0.9 and np.isfinite(full[~close]).any()
    np.testing.assert_allclose(near[close], full[close], rtol=1e-6)
    assert np.isinf(near[~close]).all()


def test_depth_normals_match_the_sphere_surface(scene):
    """Normals from a depth map's neighbouring pixels point out of the spheres and face the camera."""
    from lifting.geometry import unproject_depth
    from lifting.sources import depth_normals

    cam = scene.cameras[scene.frames[0].view_id]
    depth = scene.depths[cam.view_id]
    xyz, pix = unproject_depth(depth, cam)
    normals = depth_normals(depth, cam, pix)
    centres, radii = SPHERES[:, :3], SPHERES[:, 3]
    nearest = np.argmin(np.abs(np.linalg.norm(xyz[:, None] - centres[None], axis=2) - radii[None]), axis=1)
    radial = xyz - centres[nearest]
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    cos = np.einsum("ij,ij->i", normals, radial)
    assert np.median(cos) > 0.95 and np.mean(cos > 0.7) > 0.8
    facing = np.einsum("ij,ij->i", normals, cam.center[None] - xyz)
    assert np.all(facing >= 0)


def test_depth_normals_of_a_wall_and_at_the_image_border(scene):
    """A wall facing the camera: every pixel with all four neighbours gets the wall's normal
    (towards the camera); pixels on the image border, whose neighbour is missing, fall back to
    the direction back to the camera."""
    from lifting.geometry import unproject_depth
    from lifting.sources import depth_normals

    cam = scene.cameras[scene.frames[0].view_id]
    depth = np.full((cam.height, cam.width), 2.0, np.float32)
    depth[40:60, 100:130] = np.nan  # a hole: its rim has missing neighbours too
    xyz, pix = unproject_depth(depth, cam)
    normals = depth_normals(depth, cam, pix)
    R = np.asarray(cam.world_from_cam)[:3, :3]
    towards = (cam.center[None] - xyz) / np.linalg.norm(cam.center[None] - xyz, axis=1, keepdims=True)
    padded = np.pad(np.isfinite(depth), 1)  # False outside the image
    r, c = pix[:, 0] + 1, pix[:, 1] + 1
    inner = padded[r - 1, c] & padded[r + 1, c] & padded[r, c - 1] & padded[r, c + 1]
    np.testing.assert_allclose(normals[inner], np.broadcast_to(-R[:, 2], normals[inner].shape), atol=1e-5)
    np.testing.assert_allclose(normals[~inner], towards[~inner], atol=1e-5)
    assert (~inner).sum() > 2 * (cam.width + cam.height)


@pytest.mark.parametrize("n_ids", [1, 3, 20])
def test_majority_ids_all_paths_agree_with_a_plain_count(n_ids):
    """One id, a few and many ids take different code paths; each must give every voted point the
    id with the largest summed weight (ties and zero weights to the smallest id), -1 otherwise."""
    from lifting.fusion import _majority_ids

    rng = np.random.default_rng(n_ids)
    n = 50
    point_idx = rng.integers(0, n - 5, 400)  # the last 5 points get no vote
    ids = rng.choice(np.arange(3, 3 + 2 * n_ids, 2), 400)
    weights = rng.choice([0.0, 0.5, 1.0], 400)
    weights[point_idx < 5] = 0.0  # points whose votes all weigh nothing still get an id
    got = _majority_ids(point_idx, ids, weights, n)
    for p in range(n):
        sums: dict[int, float] = {}
        for i in np.nonzero(point_idx == p)[0]:
            sums[int(ids[i])] = sums.get(int(ids[i]), 0.0) + float(weights[i])
        want = min(sums, key=lambda k: (-sums[k], k)) if sums else -1
        assert got[p] == want, (p, sums)


def test_one_side_per_limb_fixes_speckle_and_leaves_touching_limbs_alone():
    from lifting.fusion import one_side_per_limb
    from openhuman.ontology import PART_ID

    rng = np.random.default_rng(0)
    left, right = PART_ID["left thigh"], PART_ID["right thigh"]

    def limb(x0):  # a 40 cm rod of points 1 cm apart (in z) with 9 points around each
        z = np.repeat(np.arange(40) * 0.01, 9)
        return np.stack([x0 + rng.uniform(-0.02, 0.02, len(z)), rng.uniform(-0.02, 0.02, len(z)), z], 1)

    a, b, head = limb(0.0), limb(0.3), limb(1.0)  # two separate thighs; a head far away
    xyz = np.concatenate([a, b, head]).astype(np.float32)
    na = len(a)
    labels = np.r_[np.where(rng.random(na) < 0.8, left, right), np.where(rng.random(na) < 0.75, right, left),
                   np.full(na, PART_ID["head"])].astype(np.int16)  # fmt: skip
    out = one_side_per_limb(xyz, labels, np.ones(len(xyz)), radius=0.025, min_share=0.6)
    assert np.all(out[:na] == left) and np.all(out[na : 2 * na] == right)
    assert np.array_equal(out[2 * na :], labels[2 * na :])  # unsided parts are not touched

    touching = np.concatenate([a, a + [0.03, 0, 0]]).astype(np.float32)  # two limbs side by side, joined
    even = np.r_[np.full(na, left), np.full(na, right)].astype(np.int16)
    assert np.array_equal(one_side_per_limb(touching, even, np.ones(2 * na), 0.025, 0.6), even)
    few = labels[:20]  # fewer points than a piece needs
    assert np.array_equal(one_side_per_limb(xyz[:20], few, np.ones(20), 0.025, 0.6), few)


def test_neighbour_vote_removes_isolated_points_and_keeps_boundaries():
    from scipy.spatial import cKDTree

    from lifting.fusion import neighbour_vote

    left, right = PART_ID["left thigh"], PART_ID["right thigh"]
    grid = np.stack(np.meshgrid(*[np.arange(12) * 0.01] * 3, indexing="ij"), -1).reshape(-1, 3)
    labels = np.where(grid[:, 0] < 0.055, left, right).astype(np.int16)  # two halves, x < / >= 6 cm
    rng = np.random.default_rng(0)
    speckle = rng.choice(np.nonzero(np.abs(grid[:, 0] - 0.055) > 0.02)[0], 40, replace=False)
    noisy = labels.copy()
    noisy[speckle] = np.where(labels[speckle] == left, right, left)  # isolated points of the other side
    nb = cKDTree(grid).query(grid, k=9)[1]
    once = neighbour_vote(noisy, np.ones(len(grid)), nb)
    assert np.array_equal(
        neighbour_vote(once, np.ones(len(grid)), nb), neighbour_vote(noisy, np.ones(len(grid)), nb, 2)
    )
    out = neighbour_vote(noisy, np.ones(len(grid)), nb, rounds=4)
    assert np.array_equal(out, labels)  # every stray fixed, the flat boundary unmoved
    # a point's vote is weighted: two confident neighbours outvote three unsure ones
    nb5 = np.array([[0, 1, 2, 3, 4]] * 5, np.int32)
    lab5 = np.array([left, left, right, right, right], np.int16)
    w5 = np.array([0.9, 0.9, 0.1, 0.1, 0.1])
    assert neighbour_vote(lab5, w5, nb5).tolist() == [left] * 5
    # no neighbour at all (-1 everywhere): the label stays
    assert neighbour_vote(lab5, w5, np.full((5, 3), -1, np.int32)).tolist() == lab5.tolist()


def test_lifted_labels_are_voted_over_neighbours(scene):
    """Speckled fused labels (one view mislabels many of its pixels) come out cleaner with the vote."""
    rng = np.random.default_rng(1)
    p0 = scene.parses[0]
    body = p0.labels > 0
    flip = body & (rng.random(body.shape) < 0.3)
    noisy = np.where(flip, rng.integers(1, 15, body.shape), p0.labels).astype(p0.labels.dtype)
    parses = [dataclasses.replace(p0, labels=noisy, probs=None)] + [
        dataclasses.replace(p, probs=None) for p in scene.parses[1:]
    ]
    scores = {}
    for rounds in (0, 4):
        cloud, _ = _lift(scene, parses, vote_rounds=rounds, side_radius=0)
        scores[rounds] = point_miou(cloud.xyz, cloud.labels, scene.gt_xyz, scene.gt_labels)[0]
    assert scores[4] > scores[0] + 0.1  # measured: 0.81 -> 0.99


def test_views_take_their_labels_back_from_the_fused_cloud(scene):
    mirrored = _mirror(scene.parses[0])
    parses = [mirrored] + list(scene.parses[1:])
    cloud, lifter = _lift(scene, parses, source="depth")
    out = lifter.relabel(parses, cloud, scene.depths)
    truth, fixed = scene.parses[0].labels, out[0].labels
    part = truth > 0
    assert np.array_equal(fixed > 0, mirrored.labels > 0)  # the view keeps its own silhouette
    assert np.mean(mirrored.labels[part] == truth[part]) < 0.7  # left and right swapped in this view
    assert np.mean(fixed[part] == truth[part]) > 0.95  # the other views overrule it through 3D
    assert out[0].probs is None and out[1].probs is None  # probabilities would contradict the labels
    for before, after in zip(scene.parses[1:], out[1:], strict=True):  # agreeing views barely change
        m = before.labels > 0
        assert np.mean(before.labels[m] != after.labels[m]) < 0.05
    off = Lifter(scene.cameras, LiftingConfig(source="depth", relabel_views=False))
    assert off.relabel(parses, cloud, scene.depths) == parses
    hull_cloud, hull = _lift(scene, parses, source="hull")  # a visual hull is too loose to relabel from
    assert hull.last_source == "hull" and len(hull_cloud) and hull.relabel(parses, hull_cloud) == parses


def test_views_regain_part_pixels_their_silhouette_missed(scene):
    """A view whose parse misses a limb that the other views see takes it back from the cloud
    (`relabel_fill`): those pixels' depth lies on the surface of the points they see. Pixels whose
    reading lies far behind the points (a wall) stay background."""
    truth = scene.parses[0]
    shin = truth.labels == PART_ID["left shin"]
    assert shin.sum() > 50
    missed = dataclasses.replace(truth, labels=np.where(shin, 0, truth.labels).astype(np.int16),
                                 person_ids=np.where(shin, -1, truth.person_ids).astype(truth.person_ids.dtype))  # fmt: skip
    parses = [missed] + list(scene.parses[1:])
    depth = scene.depths["cam0"].copy()
    wall = np.isnan(depth)
    depth[wall] = 6.0  # a wall behind the person
    depths = {**scene.depths, "cam0": depth}
    cloud, lifter = _lift(scene, parses, depths, source="depth")
    out = lifter.relabel(parses, cloud, depths)[0]
    back = shin & (out.labels > 0)
    assert back.mean() > 0.7 * shin.mean()  # measured 0.79; the rest lies farther from a seen point
    assert np.all(out.labels[back] == PART_ID["left shin"]) and np.all(out.person_ids[back] == 0)
    assert not (out.labels[wall] > 0).any()
    off = Lifter(scene.cameras, LiftingConfig(source="depth", relabel_fill=0.0))
    off.lift(0, 0.0, scene.frames, parses, depths)
    assert not (off.relabel(parses, cloud, depths)[0].labels[shin] > 0).any()


def test_views_drop_part_pixels_that_show_the_scene_behind_the_person(scene):
    from scipy.ndimage import binary_dilation

    cloud, lifter = _lift(scene, source="depth")
    truth = scene.parses[0]
    body = truth.labels > 0
    halo = binary_dilation(body, iterations=4) & ~body  # a person mask spilled 4 px around the body
    labels = truth.labels.copy()
    labels[halo] = PART_ID["torso"]
    spilled = dataclasses.replace(truth, labels=labels, person_ids=np.where(halo, 0, truth.person_ids))
    depth = scene.depths["cam0"].copy()
    cols = np.arange(depth.shape[1])[None]
    far = halo & (cols < depth.shape[1] // 2)
    depth[far] = 6.0  # a wall behind the person on the left of the image; no reading on the right
    depths = {**scene.depths, "cam0": depth}
    out = lifter.relabel([spilled] + list(scene.parses[1:]), cloud, depths)[0]
    assert np.all(out.labels[far] == 0) and np.all(out.person_ids[far] == -1)  # the wall shows: background
    assert np.all(out.labels[halo & ~far] > 0)  # no reading there: the view's mask stands
    assert np.mean(out.labels[body] > 0) > 0.99  # the body itself stays
    keep = Lifter(scene.cameras, LiftingConfig(source="depth", relabel_behind=0.0))
    keep.lift(0, 0.0, scene.frames, scene.parses, scene.depths)
    assert np.array_equal(keep.relabel([spilled], cloud, depths)[0].labels > 0, labels > 0)

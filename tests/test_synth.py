"""Tests of the synthetic multi-view capture generator (openhuman.synth)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openhuman.errors import InputError
from openhuman.ontology import LEFT_IDS, LR_SWAP, PART_ID, RIGHT_IDS


@pytest.fixture(scope="module")
def scene_frames():
    """A small SynthScene (walk, 4 views, 256x192) and its first two rendered frames."""
    from openhuman.synth import SynthConfig, SynthScene

    cfg = SynthConfig(clips=("walk",), views=4, frames=12, width=256, height=192, seed=3)
    with SynthScene(cfg) as synth:
        yield synth, [synth.render_frame(0), synth.render_frame(9)]


def test_all_clips_load_and_pose_without_nans():
    from openhuman.synth import list_clips
    from openhuman.synth.humanoid import HumanoidScene
    from openhuman.synth.motion import load_clip, sample_pose
    from openhuman.synth.surface import SurfaceSampler

    clips = list_clips()
    assert len(clips) == 15 and {"walk", "run", "jump", "dance_a", "kick", "cartwheel"} <= set(clips)
    with HumanoidScene() as scene:
        sampler = SurfaceSampler.build(scene.primitives(), 500)
        for name in clips:
            clip = load_clip(name)
            for t in (0.0, 0.37 * clip.duration, clip.duration, 1.6 * clip.duration):
                pose = sample_pose(clip, t)
                assert np.allclose(np.linalg.norm(pose.spherical, axis=1), 1.0)
                scene.set_pose(pose)
                frames = scene.link_frames()
                pos = np.array([p for p, _ in frames.values()])
                assert np.isfinite(pos).all(), name
                xyz, labels, _ = sampler.points(frames)
                assert np.isfinite(xyz).all() and len(xyz) > 300, name
                assert np.linalg.norm(pos - pos.mean(0), axis=1).max() < 1.5, name  # limbs stay attached


def test_interpolation_hits_keyframes_and_loops_with_root_drift():
    from openhuman.synth.motion import load_clip, sample_pose

    clip = load_clip("walk")
    k = 5
    key = sample_pose(clip, float(clip.times[k]))
    assert np.allclose(key.root_pos, clip.root_pos[k]) and np.allclose(key.spherical, clip.spherical[k])
    mid = sample_pose(clip, float(clip.times[k] + clip.times[k + 1]) / 2)
    lo, hi = np.minimum(clip.revolute[k], clip.revolute[k + 1]), np.maximum(clip.revolute[k], clip.revolute[k + 1])
    assert np.all((mid.revolute >= lo - 1e-12) & (mid.revolute <= hi + 1e-12))
    later = sample_pose(clip, clip.duration + float(clip.times[k]))
    assert np.allclose(later.root_pos, clip.root_pos[k] + clip.cycle_offset)
    assert np.linalg.norm(clip.cycle_offset) > 0.5  # a walk cycle travels


def test_clips_play_one_after_another():
    from openhuman.synth.motion import load_clip, sample_clips

    poses = sample_clips(["walk", "kick"], frames=None, fps=30.0)
    n_walk = int(np.floor(load_clip("walk").duration * 30.0)) + 1
    n_kick = int(np.floor(load_clip("kick").duration * 30.0)) + 1
    assert len(poses) == n_walk + n_kick
    end, start = poses[n_walk - 1].root_pos, poses[n_walk].root_pos
    assert np.allclose(end[[0, 2]], start[[0, 2]])  # the second clip starts where the first ended
    held = sample_clips(["kick"], frames=n_kick + 10, fps=30.0)
    assert np.allclose(held[-1].root_pos, held[-5].root_pos)  # non-looping clips hold their last pose


def test_projection_matches_rendered_sphere():
    """K/pose -> pybullet matrices: a rendered sphere's disc is centred where K projects its centre,
    and the depth of a face turned to the camera is its distance along the optical axis."""
    import pybullet as p

    from openhuman.synth.render import intrinsics, look_at, project, render_view
    from openhuman.types import CameraView

    client = p.connect(p.DIRECT)
    try:
        for W, H, centre in ((64, 48, (0.0, 0.0, 1.0)), (81, 61, (0.3, 0.2, 1.2))):
            p.resetSimulation(physicsClientId=client)
            shape = p.createVisualShape(p.GEOM_SPHERE, radius=0.4, physicsClientId=client)
            body = p.createMultiBody(0, -1, shape, basePosition=centre, baseOrientation=[0, 0.7071068, 0, 0.7071068], physicsClientId=client)  # fmt: skip
            cam = CameraView("c", intrinsics(W, H, 40.0), look_at(np.array([4.0, 0, 1]), np.array([0.0, 0, 1])), W, H)
            r = render_view(client, cam)
            rows, cols = np.nonzero(r.seg == body)
            uv, z = project(cam, np.array([centre]))
            assert abs(cols.mean() - uv[0, 0]) < 0.1 and abs(rows.mean() - uv[0, 1]) < 0.1
            assert np.isnan(r.depth_m[0, 0])
            # depth: a box face turned to the camera is flat (spheres are tessellated meshes)
            p.resetSimulation(physicsClientId=client)
            shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.3, 0.3, 0.3], physicsClientId=client)
            body = p.createMultiBody(0, -1, shape, basePosition=centre, physicsClientId=client)
            r = render_view(client, cam)
            face = r.seg == body
            rows, cols = np.nonzero(face)
            uv, z = project(cam, np.array([centre]) + [0.3, 0.0, 0.0])
            assert np.nanmax(np.abs(r.depth_m[face] - z[0])) < 1e-3
    finally:
        p.disconnect(physicsClientId=client)


def test_depth_of_one_view_lands_on_same_part_in_another(scene_frames):
    from openhuman.synth.render import project, unproject

    synth, frames = scene_frames
    cams = synth.cameras
    for fr in frames:
        for a in range(len(cams)):
            b = (a + 1) % len(cams)
            va, vb = fr.views[a], fr.views[b]
            depth = np.where(va.gt_2d > 0, va.depth_m, np.nan)
            xyz, pix = unproject(cams[a], depth)
            uv, z = project(cams[b], xyz)
            col, row = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
            inside = (col >= 0) & (col < cams[b].width) & (row >= 0) & (row < cams[b].height)
            col, row, z, src = col[inside], row[inside], z[inside], pix[inside]
            visible = np.abs(vb.depth_m[row, col] - z) < 0.02
            assert visible.sum() > 200
            same = va.gt_2d[src[visible, 0], src[visible, 1]] == vb.gt_2d[row[visible], col[visible]]
            assert same.mean() >= 0.95, (fr.index, a, b, same.mean())


def _camera_facing(synth, fr) -> int:
    from openhuman.synth.humanoid import facing_direction, root_in_world

    root, _ = root_in_world(fr.pose)
    facing = facing_direction(fr.pose)
    to_cams = np.array([c.center - root for c in synth.cameras])[:, :2]
    to_cams /= np.linalg.norm(to_cams, axis=1, keepdims=True)
    return int(np.argmax(to_cams @ facing[:2]))


def test_persons_left_is_on_image_right_when_facing_the_camera(scene_frames):
    synth, frames = scene_frames
    for fr in frames:
        front = _camera_facing(synth, fr)
        back = (front + len(synth.cameras) // 2) % len(synth.cameras)
        for view, sign in ((front, 1.0), (back, -1.0)):
            gt = fr.views[view].gt_2d
            left_u = np.nonzero(np.isin(gt, LEFT_IDS))[1].mean()
            right_u = np.nonzero(np.isin(gt, RIGHT_IDS))[1].mean()
            assert sign * (left_u - right_u) > 5, (fr.index, view)


def test_left_hand_pixels_are_where_the_left_wrist_projects(scene_frames):
    from openhuman.synth.humanoid import LINK_BODY14
    from openhuman.synth.render import project

    synth, frames = scene_frames
    checked = 0
    for fr in frames:
        for link in ("left_wrist", "right_wrist"):
            centre = fr.link_frames[link][0]
            for cam, view in zip(synth.cameras, fr.views, strict=True):
                uv, z = project(cam, centre[None])
                u, v = np.rint(uv[0]).astype(int)
                if not (0 <= u < cam.width and 0 <= v < cam.height) or view.depth_m[v, u] < z[0] - 0.05:
                    continue  # outside the image or hidden behind another part
                assert view.gt_2d[v, u] == LINK_BODY14[link], (fr.index, cam.view_id, link)
                checked += 1
    assert checked >= 6
    assert LINK_BODY14["left_wrist"] == PART_ID["left hand"]


def test_gt_3d_points_lie_on_the_rendered_surface(scene_frames):
    from openhuman.synth.render import project

    synth, frames = scene_frames
    for fr in frames:
        assert fr.xyz is not None and fr.labels is not None
        assert set(np.unique(fr.labels)) == set(range(1, 15))
        for cam, view in zip(synth.cameras, fr.views, strict=True):
            uv, z = project(cam, fr.xyz.astype(np.float64))
            col, row = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
            ok = (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
            d = view.depth_m[row[ok], col[ok]]
            visible = np.abs(d - z[ok]) < 0.01
            assert visible.sum() > 0.2 * ok.sum()
            agree = view.gt_2d[row[ok][visible], col[ok][visible]] == fr.labels[ok][visible]
            assert agree.mean() >= 0.95, (fr.index, cam.view_id, agree.mean())


def test_gt_3d_points_correspond_across_frames(scene_frames):
    """The same sample id is the same body point in every frame: labels match, and the head (one
    rigid link) keeps all its pairwise distances while it moves."""
    _, (a, b) = scene_frames
    assert a.point_ids is not None and b.point_ids is not None
    assert len(np.unique(a.point_ids)) == len(a.point_ids)
    common, ia, ib = np.intersect1d(a.point_ids, b.point_ids, return_indices=True)
    assert len(common) > 0.9 * min(len(a.point_ids), len(b.point_ids))
    assert np.array_equal(a.labels[ia], b.labels[ib])
    head = a.labels[ia] == PART_ID["head"]
    pa, pb = a.xyz[ia][head].astype(np.float64), b.xyz[ib][head].astype(np.float64)
    assert np.linalg.norm(pa.mean(0) - pb.mean(0)) > 0.05  # it moved
    da = np.linalg.norm(pa[:, None] - pa[None], axis=-1)
    db = np.linalg.norm(pb[:, None] - pb[None], axis=-1)
    assert np.abs(da - db).max() < 1e-5


def test_gt_3d_is_each_frames_outer_surface():
    """A sample is left out only in the frames where another body part buries it: the chest under
    an arm held against it in one pose is surface again once the arm moves away."""
    from openhuman.synth import SynthConfig, SynthScene
    from openhuman.synth.surface import signed_distance

    with SynthScene(SynthConfig(clips=("dance_a",), views=1, frames=40, width=64, height=48)) as synth:
        per_frame = [synth.render_frame(i, render=False) for i in range(0, 40, 3)]
        seen = [set(fr.point_ids.tolist()) for fr in per_frame]  # type: ignore[union-attr]
        assert len(set.union(*seen)) > len(set.intersection(*seen))  # the surface changes with the pose
        fr = per_frame[0]
        synth.scene.set_pose(fr.pose)
        poses = synth.sampler._poses(synth.scene.link_frames())
        owner = np.concatenate([np.full(len(p), i) for i, p in enumerate(synth.sampler.local)])[fr.point_ids]
        for i, (prim, (R, t)) in enumerate(zip(synth.sampler.prims, poses, strict=True)):
            other = owner != i
            assert np.all(signed_distance(prim, (fr.xyz[other].astype(np.float64) - t) @ R) >= -2e-3)


def test_capture_round_trip_is_exact(synth_capture_factory):
    from openhuman.capture import Capture
    from openhuman.synth import SynthConfig, SynthScene

    args = dict(clips=("jump",), views=2, frames=3, width=96, height=64, seed=1)
    cap = Capture.open(synth_capture_factory(**args))
    assert cap.frame_count == 3 and cap.fps == 30.0 and cap.view_ids == ("cam0", "cam1")
    meta = cap.meta.extra["synth"]
    assert meta["config"]["clips"] == ["jump"] and meta["config"]["seed"] == 1 and meta["clip_start_frames"] == [0]
    with SynthScene(SynthConfig(**args)) as synth:  # type: ignore[arg-type]
        assert cap.cameras is not None
        for cam in synth.cameras:
            got = cap.cameras[cam.view_id]
            assert np.array_equal(got.K, cam.K) and np.array_equal(got.world_from_cam, cam.world_from_cam)
            assert (got.width, got.height) == (cam.width, cam.height)
        for fr, synced in zip(synth.frames(), cap.synced(), strict=True):
            for view, frame in zip(fr.views, synced, strict=True):
                assert frame.view_id == view.view_id and frame.index == fr.index
                assert np.array_equal(frame.rgb, view.rgb)  # lossless videos
                assert np.array_equal(cap.gt_2d(view.view_id, fr.index), view.gt_2d)
                depth = cap.depth(view.view_id, fr.index)
                assert np.array_equal(np.isnan(depth), np.isnan(view.depth_m))
                assert np.nanmax(np.abs(depth - view.depth_m)) <= 0.0005 + 1e-6  # uint16 millimetres
            xyz, labels = cap.gt_3d(fr.index)
            assert np.array_equal(xyz, fr.xyz) and np.array_equal(labels, fr.labels)
            assert np.array_equal(cap.gt_3d_with_ids(fr.index)[2], fr.point_ids)
        # lossy videos (yuv420p, crf 18) read back within a few grey levels on average
        lossy = Capture.open(synth_capture_factory(**args, lossless=False))
        first = next(lossy.synced())
        rgb0 = synth.render_frame(0).views
        for view, frame in zip(rgb0, first, strict=True):
            err = np.abs(frame.rgb.astype(np.int16) - view.rgb.astype(np.int16))
            assert err.mean() < 3.0 and err.max() > 0


def test_root_motion_modes():
    from openhuman.synth import SynthConfig
    from openhuman.synth.generate import plan_poses

    keep = plan_poses(SynthConfig(clips=("walk",), frames=20, root_motion="keep"))
    centred = plan_poses(SynthConfig(clips=("walk",), frames=20))
    in_place = plan_poses(SynthConfig(clips=("walk",), frames=20, root_motion="in_place"))
    path = np.array([p.root_pos for p in keep])
    assert np.ptp(path[:, 0]) > 0.5
    assert np.allclose(np.array([p.root_pos for p in centred])[:, [0, 2]].mean(0), 0.0)
    assert np.allclose(np.array([p.root_pos for p in in_place])[:, [0, 2]], 0.0)
    assert np.allclose(np.array([p.root_pos for p in in_place])[:, 1], path[:, 1])


def test_limb_mix_plays_limbs_from_donor_clips():
    from openhuman.synth import SynthConfig
    from openhuman.synth.generate import plan_poses
    from openhuman.synth.motion import LIMB_GROUPS, load_clip

    base = SynthConfig(clips=("walk",), frames=24, fps=20.0, root_motion="in_place", seed=4)
    plain = plan_poses(base)
    assert all(np.array_equal(a.spherical, b.spherical) for a, b in zip(plain, plan_poses(base), strict=True))
    mixed = plan_poses(SynthConfig(**{**base.__dict__, "limb_mix": 1.0, "limb_mix_clips": ("cartwheel",)}))
    again = plan_poses(SynthConfig(**{**base.__dict__, "limb_mix": 1.0, "limb_mix_clips": ("cartwheel",)}))
    assert all(np.array_equal(a.spherical, b.spherical) for a, b in zip(mixed, again, strict=True))  # seeded
    for a, b in zip(plain, mixed, strict=True):  # the root stays; every limb group changes
        assert np.array_equal(a.root_pos, b.root_pos) and np.array_equal(a.root_quat, b.root_quat)
        for sph, _ in LIMB_GROUPS.values():
            assert not np.allclose(a.spherical[list(sph)], b.spherical[list(sph)])
    # each joint's rotation is one the donor clip takes (between two of its key frames)
    donor = load_clip("cartwheel")
    left_hip = 5
    for p in mixed[::5]:
        q = p.spherical[left_hip]
        nearest = np.abs(donor.spherical[:, left_hip] @ q).max()
        assert nearest > 0.999  # walk's own left hip: 0.979 to 0.994
    # stretches: the donor holds for limb_mix_frames, so consecutive poses within one stay close
    steps = [np.abs(mixed[i + 1].spherical @ mixed[i].spherical.T).diagonal().min() for i in range(11)]
    assert min(steps) > 0.9
    with pytest.raises(InputError, match="limb_mix"):
        SynthConfig(limb_mix=1.5).validate()
    with pytest.raises(InputError, match="available clips"):
        SynthConfig(limb_mix=0.5, limb_mix_clips=("moonwalk",)).validate()


def test_walk_goes_where_the_person_faces():
    from openhuman.synth import SynthConfig
    from openhuman.synth.generate import plan_poses
    from openhuman.synth.humanoid import facing_direction, root_in_world

    poses = plan_poses(SynthConfig(clips=("walk",), frames=40, root_motion="keep"))
    start, end = root_in_world(poses[0])[0], root_in_world(poses[-1])[0]
    travel = (end - start)[:2] / np.linalg.norm((end - start)[:2])
    assert travel @ facing_direction(poses[0])[:2] > 0.9
    assert abs(end[2] - start[2]) < 0.1 and 0.7 < start[2] < 1.0  # pelvis height, Z up


def test_synth_capture_fixture_reads_back(synth_capture):
    from openhuman.capture import Capture

    cap = Capture.open(synth_capture)
    assert cap.view_ids == ("cam0", "cam1", "cam2", "cam3")
    assert cap.frame_count == 8
    assert cap.has_depth and cap.has_gt_2d and cap.has_gt_3d
    assert cap.gt_2d("cam0", 0).shape == (240, 320)
    seen = set().union(*(np.unique(cap.gt_2d(v, 0)).tolist() for v in cap.view_ids))
    assert seen == set(range(15))
    person = cap.gt_2d("cam1", 0) > 0
    rows = np.nonzero(person.any(axis=1))[0]
    assert rows.max() - rows.min() > 0.6 * 240  # the person is big in the frame


def test_two_people_render_apart_with_their_own_gt():
    from openhuman.synth import SynthConfig, SynthScene
    from openhuman.synth.render import project

    cfg = SynthConfig(clips=("walk",), views=2, frames=20, width=160, height=120, people=2, gt_points=1000)
    with SynthScene(cfg) as synth:
        fr = synth.render_frame(0)
        centres = []  # each person's mean image column in each view
        for cam, view in zip(synth.cameras, fr.views, strict=True):
            assert (view.gt_2d > 0).sum() > 0.02 * view.gt_2d.size
            uv, _ = project(cam, fr.xyz.astype(np.float64))
            first = fr.point_ids < cfg.gt_points
            centres.append((uv[first, 0].mean(), uv[~first, 0].mean()))
        second = synth.scene.link_frames(1)  # posed by render_frame(0)
        assert set(np.unique(fr.labels[fr.point_ids >= cfg.gt_points])) == set(range(1, 15))
    assert fr.point_ids.max() < 2 * cfg.gt_points and len(np.unique(fr.point_ids)) == len(fr.point_ids)
    # person 1 stands 1.2 m to the side (world -y) and is 17 frames further into the walk
    root0, root1 = fr.link_frames["root"][0], second["root"][0]
    assert abs(root0[1] - root1[1] - 1.2) < 0.02
    assert np.allclose(synth.people[0][17].spherical, synth.people[1][0].spherical)
    assert len(synth.people[1]) == len(synth.poses) == 20
    # person 1 plays on past frame 19 of person 0 (the walk itself goes on) instead of jumping
    # back to frame 0 mid-capture: its largest change between neighbouring frames is person 0's size
    steps = [max(np.abs(np.diff([p.revolute for p in poses], axis=0)).max(1)) for poses in synth.people]
    assert steps[1] < 1.5 * steps[0]
    assert all(abs(a - b) > 10 for a, b in centres)  # apart in the image too
    with pytest.raises(InputError, match="people"):
        SynthConfig(people=5).validate()


def test_bad_input_raises_input_error(tmp_path):
    from openhuman.synth import SynthConfig, generate_capture
    from openhuman.synth.generate import parse_size

    with pytest.raises(InputError, match="available clips: .*walk"):
        generate_capture(tmp_path / "c", SynthConfig(clips=("moonwalk",)))
    for bad in ("640by480", "640x", "8x8", "99999x480"):
        with pytest.raises(InputError, match="size"):
            parse_size(bad)
    assert parse_size("320x240") == (320, 240)
    for cfg in (SynthConfig(width=8), SynthConfig(height=0), SynthConfig(views=0), SynthConfig(frames=0)):
        with pytest.raises(InputError):
            cfg.validate()
    with pytest.raises(InputError, match="above the ground"):
        generate_capture(tmp_path / "e", SynthConfig(frames=2, width=32, height=32, elevation_deg=-40))
    with pytest.raises(InputError, match="radius"):
        generate_capture(tmp_path / "d", SynthConfig(clips=("run",), frames=60, radius=0.9, width=32, height=32))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_cli_synth(tmp_path):
    from typer.testing import CliRunner

    from openhuman.capture import Capture
    from openhuman.cli import app

    runner = CliRunner()
    out = tmp_path / "cap"
    res = runner.invoke(
        app, ["synth", str(out), "--clip", "walk,kick", "--views", "2", "--frames", "2", "--size", "48x32"]
    )
    assert res.exit_code == 0, res.output
    assert Capture.open(out).frame_count == 4
    res = runner.invoke(app, ["synth", str(tmp_path / "x"), "--clip", "moonwalk"])
    assert res.exit_code == 2 and "available clips" in res.output
    res = runner.invoke(app, ["synth", str(tmp_path / "y"), "--size", "big"])
    assert res.exit_code == 2
    mixed = tmp_path / "mixed"
    args = ["synth", str(mixed), "--frames", "2", "--size", "48x32", "--views", "1", "--no-depth"]
    res = runner.invoke(app, [*args, "--limb-mix", "1", "--limb-mix-clip", "cartwheel,roll"])
    assert res.exit_code == 0, res.output
    saved = json.loads((mixed / "capture.json").read_text())["extra"]["synth"]["config"]
    assert saved["limb_mix"] == 1.0 and saved["limb_mix_clips"] == ["cartwheel", "roll"]
    res = runner.invoke(app, [*args[:1], str(tmp_path / "z"), *args[2:], "--limb-mix", "2"])
    assert res.exit_code == 2 and "limb_mix" in res.output
    two = tmp_path / "two"
    res = runner.invoke(app, [*args[:1], str(two), *args[2:], "--people", "2"])
    assert res.exit_code == 0, res.output
    assert json.loads((two / "capture.json").read_text())["extra"]["synth"]["config"]["people"] == 2
    res = runner.invoke(app, [*args[:1], str(tmp_path / "w"), *args[2:], "--people", "9"])
    assert res.exit_code == 2 and "people" in res.output


def test_mediapipe_pose_detects_the_fixture_person(synth_capture):
    """The fixture is meant for parsing tests: mediapipe pose must find the person in every view,
    and its (confident) left shoulders/wrists must mostly lie on the GT left parts, not the right."""
    import mediapipe as mp

    from openhuman.capture import Capture

    cap = Capture.open(synth_capture)
    pairs = ((11, PART_ID["left upper arm"]), (12, PART_ID["right upper arm"]), (15, PART_ID["left hand"]), (16, PART_ID["right hand"]))  # fmt: skip
    votes = []
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for index in (0, cap.frame_count - 1):
            for frame in next(cap.synced(start=index, max_frames=1)):
                res = pose.process(frame.rgb)
                assert res.pose_landmarks is not None, (frame.view_id, index)
                gt = cap.gt_2d(frame.view_id, index)
                for landmark, part in pairs:
                    lm = res.pose_landmarks.landmark[landmark]
                    mirror = int(LR_SWAP[part])
                    if lm.visibility < 0.5 or not (gt == part).any() or not (gt == mirror).any():
                        continue
                    xy = np.array([lm.x * frame.width, lm.y * frame.height])
                    d_same, d_mirror = (np.hypot(*(np.argwhere(gt == p)[:, ::-1].mean(0) - xy)) for p in (part, mirror))
                    votes.append(d_same < d_mirror)
    assert len(votes) >= 16 and np.mean(votes) >= 0.7, votes

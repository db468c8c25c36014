"""Synthetic multi-view 4D captures of the DeepMimic humanoid with exact ground truth.

`generate_capture(out_dir, SynthConfig(...))` poses the humanoid clip by clip, renders every
camera of a ring around it and streams RGB, metric depth, per-pixel body14 ids and labelled 3D
surface points into a capture directory (`openhuman.capture.CaptureWriter`). `SynthScene` gives
the same data as arrays without writing anything.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from openhuman.errors import InputError
from openhuman.synth.motion import Pose, list_clips
from openhuman.types import CameraView

if TYPE_CHECKING:
    from openhuman.synth.humanoid import HumanoidScene
    from openhuman.synth.surface import SurfaceSampler

log = logging.getLogger(__name__)

MAX_SIZE = 4096
NEAR, FAR = 0.05, 60.0
FILL = 0.9
"""With an automatic field of view, the motion's bounding box fills this fraction of the image."""
BODY_MARGIN = 0.15
"""Metres added around the link origins' bounding box to cover the body's thickness."""


SYNTH_FORMAT = 2
"""What a generated capture holds, recorded in capture.json (`extra.synth.format`): 2 = gt/3d is
each frame's outer surface with sample ids; 1 (no record) = the samples on the surface in every
frame, the same list each frame."""


@dataclass
class SynthConfig:
    clips: tuple[str, ...] = ("walk",)
    """DeepMimic clip names (see `list_clips()`), played one after another in one capture."""
    views: int = 4
    """Number of cameras, evenly spaced on a ring around the person."""
    frames: int | None = 60
    """Frames per clip (a clip loops, or holds its last pose, when shorter); None = each clip's own length."""
    fps: float = 30.0
    """Capture frame rate; the clips are resampled (slerp) to it."""
    width: int = 640
    """Image width in pixels."""
    height: int = 480
    """Image height in pixels."""
    radius: float = 3.0
    """Ring radius in metres (horizontal distance from the look-at point)."""
    camera_height: float | None = None
    """Camera height above the ground in metres; None = set by `elevation_deg`."""
    elevation_deg: float = 10.0
    """Angle of the cameras above the look-at point (used when `camera_height` is None)."""
    fov_deg: float | None = None
    """Vertical field of view in degrees; None = the narrowest that keeps the whole motion in every view."""
    root_motion: Literal["centre", "keep", "in_place"] = "centre"
    """centre: shift the path so its mean lies at the world origin; keep: the clip's own positions;
    in_place: remove horizontal root travel (walking on the spot)."""
    seed: int = 0
    """Seeds the ring's starting azimuth and the 3D ground-truth surface samples."""
    depth: bool = True
    """Write depth/ (uint16 mm; person and ground; 0 where nothing was hit)."""
    gt: bool = True
    """Write gt/2d (body14 ids per pixel) and gt/3d (labelled surface points)."""
    gt_points: int = 4000
    """Surface samples drawn per capture (spread by area); each frame's gt/3d holds those not
    buried inside another body part in that frame, with their sample ids (correspondences)."""
    lossless: bool = True
    """Store RGB videos losslessly (libx264rgb crf 0); False = yuv420p crf 18, smaller files."""
    light_dir: tuple[float, float, float] = field(default=(0.4, -0.3, 1.0))
    """Direction towards the light, world frame."""
    limb_mix: float = 0.0
    """Training data: probability that a limb group (trunk, each arm, each leg) of a `limb_mix_frames`
    stretch is played from another clip of `limb_mix_clips` (`openhuman.synth.motion.mix_limbs`);
    0 = the clips as recorded."""
    limb_mix_clips: tuple[str, ...] = ()
    """Clips the mixed limbs come from (empty = `clips`)."""
    limb_mix_frames: int = 12
    """Frames a mixed limb keeps its donor clip."""
    people: int = 1
    """People in the scene. Person k plays the same clips `people_delay` x k frames ahead (the last
    clip played on past its end, looping or holding its last pose as a clip does) beside the
    first, `people_spacing` x k metres to the side (world -y); gt/3d sample ids of person k start
    at k x `gt_points`."""
    people_spacing: float = 1.2
    """Metres between neighbouring people."""
    people_delay: int = 17
    """Frames by which each next person lags the one before."""

    def validate(self) -> None:
        """Raise InputError with a one-line fix for any unusable value."""
        known = list_clips()
        if not self.clips:
            raise InputError(f"give at least one clip; available clips: {', '.join(known)}")
        for name in self.clips:
            if name not in known:
                raise InputError(f"unknown clip {name!r}; available clips: {', '.join(known)}")
        _check(self.views >= 1, f"views must be >= 1, got {self.views}")
        _check(self.frames is None or self.frames >= 1, f"frames must be >= 1, got {self.frames}")
        _check(math.isfinite(self.fps) and self.fps > 0, f"fps must be > 0, got {self.fps}")
        for name, v in (("width", self.width), ("height", self.height)):
            _check(16 <= v <= MAX_SIZE, f"{name} must be between 16 and {MAX_SIZE} pixels, got {v}")
        _check(math.isfinite(self.radius) and self.radius > 0.5, f"radius must be > 0.5 m, got {self.radius}")
        _check(-80 < self.elevation_deg < 80, f"elevation must be between -80 and 80 degrees, got {self.elevation_deg}")
        if self.camera_height is not None:
            _check(math.isfinite(self.camera_height), f"camera height must be a number, got {self.camera_height}")
        if self.fov_deg is not None:
            _check(5 <= self.fov_deg <= 150, f"fov must be between 5 and 150 degrees, got {self.fov_deg}")
        _check(
            self.root_motion in ("centre", "keep", "in_place"),
            f"root_motion must be centre, keep or in_place, got {self.root_motion!r}",
        )
        _check(self.gt_points >= 1, f"gt_points must be >= 1, got {self.gt_points}")
        _check(1 <= self.people <= 4, f"people must be between 1 and 4, got {self.people}")
        _check(math.isfinite(self.people_spacing) and self.people_spacing > 0,
               f"people spacing must be > 0 m, got {self.people_spacing}")  # fmt: skip
        _check(0.0 <= self.limb_mix <= 1.0, f"limb_mix must be between 0 and 1, got {self.limb_mix}")
        _check(self.limb_mix_frames >= 1, f"limb_mix_frames must be >= 1, got {self.limb_mix_frames}")
        for name in self.limb_mix_clips:
            if name not in known:
                raise InputError(f"unknown limb_mix clip {name!r}; available clips: {', '.join(known)}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480); InputError for anything else."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(f"size must look like 640x480 (WIDTHxHEIGHT), got {text!r}")
    w, h = int(parts[0]), int(parts[1])
    if not (16 <= w <= MAX_SIZE and 16 <= h <= MAX_SIZE):
        raise InputError(f"size must be between 16x16 and {MAX_SIZE}x{MAX_SIZE}, got {text!r}")
    return w, h


@dataclass(frozen=True)
class ViewRender:
    view_id: str
    rgb: np.ndarray
    """uint8 [H, W, 3]."""
    depth_m: np.ndarray
    """float32 [H, W] depth along the optical axis (metres); NaN where nothing was hit."""
    gt_2d: np.ndarray
    """uint8 [H, W] body14 id per pixel; 0 for the ground and the background."""


@dataclass(frozen=True)
class SynthFrame:
    index: int
    timestamp_s: float
    pose: Pose
    """The (first) person's clip pose (Y-up clip frame, after the root-motion adjustment)."""
    views: list[ViewRender]
    """One render per camera, in camera order (empty when rendering was skipped)."""
    xyz: np.ndarray | None
    """float32 [M, 3] surface points, world metres (None without GT)."""
    labels: np.ndarray | None
    """uint8 [M] body14 ids of `xyz`."""
    point_ids: np.ndarray | None
    """int32 [M] sample ids of `xyz`: the same id is the same body point in every frame."""
    link_frames: dict[str, tuple[np.ndarray, np.ndarray]]
    """Link name -> (world position float64[3], quaternion (x, y, z, w) float64[4])."""


def plan_poses(cfg: SynthConfig, extra: int = 0) -> list[Pose]:
    """All poses of the capture (clip Y-up frame) with `cfg.root_motion` applied, and `extra`
    poses more at the end (the last clip played on) for the people ahead of the first."""
    from openhuman.synth.motion import mix_limbs, sample_clips

    poses = sample_clips(list(cfg.clips), cfg.frames, cfg.fps, extra)
    if cfg.limb_mix > 0:
        donors = list(cfg.limb_mix_clips or cfg.clips)
        poses = mix_limbs(poses, donors, cfg.fps, cfg.limb_mix, cfg.limb_mix_frames, cfg.seed)
    if cfg.root_motion == "keep":
        return poses
    horizontal = np.array([[p.root_pos[0], 0.0, p.root_pos[2]] for p in poses])
    shift = horizontal if cfg.root_motion == "in_place" else np.broadcast_to(horizontal.mean(axis=0), horizontal.shape)
    return [Pose(p.root_pos - s, p.root_quat, p.spherical, p.revolute) for p, s in zip(poses, shift, strict=True)]


def people_poses(cfg: SynthConfig, poses: list[Pose], frames: int) -> list[list[Pose]]:
    """Each person's `frames` poses (`SynthConfig.people`): person k plays `poses` from frame
    k x `people_delay` on, moved aside. `poses` holds the (people - 1) x `people_delay` frames
    more that this needs (`plan_poses(cfg, extra)`), so nobody's motion jumps back to the start
    mid-capture."""
    out = []
    for k in range(cfg.people):
        shift = np.array([0.0, 0.0, k * cfg.people_spacing])  # clip +z = world -y
        ahead = poses[k * cfg.people_delay : k * cfg.people_delay + frames]
        out.append([Pose(p.root_pos + shift, p.root_quat, p.spherical, p.revolute) for p in ahead])
    return out


def _motion_box(scene: HumanoidScene, people: list[list[Pose]], max_samples: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """World bounding box (lo float64[3], hi float64[3]) of the link origins over the motion, plus margin."""
    pts: list[np.ndarray] = []
    n = len(people[0])
    for k in np.unique(np.linspace(0, n - 1, min(max_samples, n)).round().astype(int)):
        for person, poses in enumerate(people):
            scene.set_pose(poses[int(k)], person)
            pts.extend(pos for pos, _ in scene.link_frames(person).values())
    arr = np.asarray(pts)
    return arr.min(axis=0) - BODY_MARGIN, arr.max(axis=0) + BODY_MARGIN


def frame_cameras(cfg: SynthConfig, lo: np.ndarray, hi: np.ndarray) -> list[CameraView]:
    """The camera ring around the motion box [lo, hi]: look-at its centre, automatic fov if unset."""
    from openhuman.synth.render import intrinsics, ring_cameras

    target = (lo + hi) / 2.0
    cam_z = cfg.camera_height
    if cam_z is None:
        cam_z = float(target[2] + cfg.radius * np.tan(np.radians(cfg.elevation_deg)))
    if cam_z < 0.05:
        raise InputError(f"cameras would sit {cam_z:.2f} m above the ground; raise --height or --elevation")
    azimuth0 = float(np.random.default_rng(cfg.seed).uniform(0.0, 360.0))
    cams = ring_cameras(cfg.views, cfg.width, cfg.height, cfg.radius, cam_z, target, cfg.fov_deg or 60.0, azimuth0)
    if cfg.fov_deg is not None:
        return cams
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    f = np.inf
    for cam in cams:
        M = cam.cam_from_world
        pc = corners @ M[:3, :3].T + M[:3, 3]
        if pc[:, 2].min() < 0.2:
            raise InputError(
                f"radius {cfg.radius} m puts cameras inside the motion; use a radius above {np.ptp(corners[:, :2], 0).max():.1f} m"
            )
        tx, ty = np.abs(pc[:, 0] / pc[:, 2]).max(), np.abs(pc[:, 1] / pc[:, 2]).max()
        f = min(f, FILL * cfg.width / 2.0 / tx, FILL * cfg.height / 2.0 / ty)
    fov = float(np.degrees(2.0 * np.arctan(cfg.height / 2.0 / f)))
    K = intrinsics(cfg.width, cfg.height, fov)
    return [CameraView(c.view_id, K.copy(), c.world_from_cam, c.width, c.height) for c in cams]


class SynthScene:
    """The posed humanoid, its cameras and its GT sampler for one `SynthConfig`.

    `frames(render=True)` yields one `SynthFrame` at a time (renders of every camera, GT points).
    Use as a context manager, or call `close()`.
    """

    def __init__(self, cfg: SynthConfig) -> None:
        from openhuman.synth.humanoid import HumanoidScene
        from openhuman.synth.render import ground_layer
        from openhuman.synth.surface import SurfaceSampler

        cfg.validate()
        self.cfg = cfg
        extra = (cfg.people - 1) * cfg.people_delay
        planned = plan_poses(cfg, extra)
        self.poses = planned[: len(planned) - extra]
        self.people = people_poses(cfg, planned, len(self.poses))
        self.scene = HumanoidScene(people=cfg.people)
        lo, hi = _motion_box(self.scene, self.people)
        self.cameras = frame_cameras(cfg, lo, hi)
        self.sampler: SurfaceSampler = SurfaceSampler.build(self.scene.primitives(), cfg.gt_points, cfg.seed)
        self.grounds = [ground_layer(cam, FAR) for cam in self.cameras]

    def __len__(self) -> int:
        return len(self.poses)

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description stored in capture.json's `extra.synth`: the config, the first frame
        of each clip, the vertical field of view actually used and `SYNTH_FORMAT`."""
        from openhuman.synth.motion import clip_frame_counts

        counts = clip_frame_counts(list(self.cfg.clips), self.cfg.frames, self.cfg.fps)
        cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.cfg).items()}
        fov = float(np.degrees(2.0 * np.arctan(self.cfg.height / 2.0 / self.cameras[0].K[1, 1])))
        starts = [int(x) for x in np.cumsum([0, *counts[:-1]])]
        return {"config": cfg, "clip_start_frames": starts, "fov_deg": fov, "format": SYNTH_FORMAT}

    def render_frame(self, index: int, render: bool = True) -> SynthFrame:
        """Pose frame `index` and render every camera (skipped when `render` is False)."""
        from openhuman.synth.render import composite, render_view

        pose = self.poses[index]
        for person, poses in enumerate(self.people):
            self.scene.set_pose(poses[index], person)
        views = []
        if render:
            for cam, ground in zip(self.cameras, self.grounds, strict=True):
                r = composite(render_view(self.scene.client, cam, NEAR, FAR, self.cfg.light_dir), ground)
                views.append(ViewRender(cam.view_id, r.rgb, r.depth_m, self.scene.labels_from_seg(r.seg)))
        frames = [self.scene.link_frames(k) for k in range(self.cfg.people)]
        xyz = labels = ids = None
        if self.cfg.gt:  # each person's samples in turn, person k's sample ids from k * gt_points
            gt = [self.sampler.points(f) for f in frames]
            xyz, labels = np.concatenate([g[0] for g in gt]), np.concatenate([g[1] for g in gt])
            ids = np.concatenate([g[2] + k * self.cfg.gt_points for k, g in enumerate(gt)])
        return SynthFrame(index, index / self.cfg.fps, pose, views, xyz, labels, ids, frames[0])

    def frames(self, render: bool = True) -> Iterator[SynthFrame]:
        for i in range(len(self.poses)):
            yield self.render_frame(i, render)

    def close(self) -> None:
        self.scene.close()

    def __enter__(self) -> SynthScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def generate_capture(out_dir: str | Path, cfg: SynthConfig | None = None, overwrite: bool = False) -> Path:
    """Render `cfg` into a capture directory at `out_dir` (atomic: nothing appears on failure).

    Writes videos/<view>.mp4, cameras.json, capture.json and, with `cfg.depth` / `cfg.gt`,
    depth/<view>/<frame>.png (uint16 mm), gt/2d/<view>/<frame>.png and gt/3d/<frame>.npz.
    Returns the capture path. An existing `out_dir` is an InputError unless `overwrite`.
    """
    from openhuman.capture import CaptureWriter

    cfg = cfg or SynthConfig()
    out = Path(out_dir)
    with SynthScene(cfg) as synth:
        log.info(
            "synth: %s, %d frames x %d views at %dx%d -> %s",
            "+".join(cfg.clips),
            len(synth),
            cfg.views,
            cfg.width,
            cfg.height,
            out,
        )
        extra = {"synth": synth.metadata()}
        with CaptureWriter(
            out, cfg.fps, synth.cameras, overwrite=overwrite, lossless=cfg.lossless, extra=extra
        ) as writer:
            t0 = time.perf_counter()
            for fr in synth.frames():
                if fr.index and fr.index % 50 == 0:
                    log.info("synth: frame %d/%d (%.1f s)", fr.index, len(synth), time.perf_counter() - t0)
                for v in fr.views:
                    writer.write_frame(
                        v.view_id,
                        fr.index,
                        v.rgb,
                        depth_m=v.depth_m if cfg.depth else None,
                        gt_2d=v.gt_2d if cfg.gt else None,
                    )
                if fr.xyz is not None and fr.labels is not None:
                    writer.write_gt_3d(fr.index, fr.xyz, fr.labels, fr.point_ids)
    return out

"""DeepMimic motion clips shipped with pybullet: loading and time interpolation.

A clip file (``pybullet_data/data/motions/humanoid3d_<name>.txt``) is JSON with ``"Loop"``
("wrap" or "none") and ``"Frames"``: 44 numbers a frame, in the humanoid.urdf joint order:

==========  ======  ===========================================================
index       count   meaning
==========  ======  ===========================================================
0           1       duration of this frame (s)
1:4         3       root position (m), Y up
4:8         4       root orientation quaternion (w, x, y, z)
8:12        4       chest (w, x, y, z)
12:16       4       neck
16:20       4       right hip
20          1       right knee angle (rad, revolute about the link's z)
21:25       4       right ankle
25:29       4       right shoulder
29          1       right elbow angle
30:34       4       left hip
34          1       left knee angle
35:39       4       left ankle
39:43       4       left shoulder
43          1       left elbow angle
==========  ======  ===========================================================

Quaternions are returned in pybullet's (x, y, z, w) order. Positions stay in the clip's Y-up frame
here; `openhuman.synth.humanoid` converts to the project's Z-up world.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from openhuman.errors import InputError

PREFIX = "humanoid3d_"
SPHERICAL_JOINTS = (
    "chest", "neck", "right_hip", "right_ankle", "right_shoulder", "left_hip", "left_ankle", "left_shoulder",
)  # fmt: skip
REVOLUTE_JOINTS = ("right_knee", "right_elbow", "left_knee", "left_elbow")
# Column of each joint's first value in a 44-value frame.
_SPH_COLS = (8, 12, 16, 21, 25, 30, 35, 39)
_REV_COLS = (20, 29, 34, 43)
FRAME_VALUES = 44


def motions_dir() -> Path:
    """Folder of pybullet_data's DeepMimic clips."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def list_clips() -> list[str]:
    """Names of the humanoid clips (file stems without ``humanoid3d_``), sorted."""
    return sorted(p.stem[len(PREFIX) :] for p in motions_dir().glob(f"{PREFIX}*.txt"))


@dataclass(frozen=True)
class Pose:
    """One humanoid pose. Root in the clip's Y-up frame; joint rotations are local."""

    root_pos: np.ndarray
    """float64 [3] root (pelvis) position, metres, Y up."""
    root_quat: np.ndarray
    """float64 [4] root orientation (x, y, z, w)."""
    spherical: np.ndarray
    """float64 [8, 4] local rotations (x, y, z, w) of `SPHERICAL_JOINTS`."""
    revolute: np.ndarray
    """float64 [4] angles (rad) of `REVOLUTE_JOINTS`."""


@dataclass(frozen=True)
class Clip:
    name: str
    loop: bool
    """True when the clip cycles ("wrap"); otherwise it holds its last pose after the end."""
    times: np.ndarray
    """float64 [F] start time (s) of each key frame; times[0] = 0, times[-1] = duration."""
    root_pos: np.ndarray
    """float64 [F, 3] Y-up metres."""
    root_quat: np.ndarray
    """float64 [F, 4] (x, y, z, w)."""
    spherical: np.ndarray
    """float64 [F, 8, 4] (x, y, z, w)."""
    revolute: np.ndarray
    """float64 [F, 4] radians."""

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    @property
    def cycle_offset(self) -> np.ndarray:
        """float64 [3] horizontal root displacement of one loop (y component zeroed)."""
        d = self.root_pos[-1] - self.root_pos[0]
        return np.array([d[0], 0.0, d[2]])


def _wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    q = q[..., [1, 2, 3, 0]]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


@lru_cache(maxsize=32)
def load_clip(name: str) -> Clip:
    """Load clip `name` ("walk", "run", ...). Unknown names raise InputError listing the known ones."""
    path = motions_dir() / f"{PREFIX}{name}.txt"
    if not path.is_file():
        raise InputError(f"unknown clip {name!r}; available clips: {', '.join(list_clips())}")
    data = json.loads(path.read_text(encoding="utf-8"))
    frames = np.asarray(data["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != FRAME_VALUES or len(frames) < 2:
        raise InputError(f"clip file {path} is not a humanoid clip ({FRAME_VALUES} values a frame)")
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    sph = np.stack([frames[:, c : c + 4] for c in _SPH_COLS], axis=1)
    return Clip(
        name=name,
        loop=data.get("Loop", "wrap") == "wrap",
        times=times,
        root_pos=frames[:, 1:4].copy(),
        root_quat=_wxyz_to_xyzw(frames[:, 4:8]),
        spherical=_wxyz_to_xyzw(sph),
        revolute=frames[:, list(_REV_COLS)].copy(),
    )


def slerp(q0: np.ndarray, q1: np.ndarray, w: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions [..., 4] with weight w in [0, 1] (shortest arc)."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    safe = np.where(small, 1.0, sin_t)
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / safe)
    b = np.where(small, w, np.sin(w * theta) / safe)
    out = a * q0 + b * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def sample_pose(clip: Clip, t: float) -> Pose:
    """The clip's pose at time `t` (s): linear/slerp between key frames; loops add the root drift."""
    offset = np.zeros(3)
    if clip.loop and clip.duration > 0:
        cycles = np.floor(t / clip.duration)
        t = t - cycles * clip.duration
        offset = cycles * clip.cycle_offset
    t = float(np.clip(t, 0.0, clip.duration))
    i = int(np.clip(np.searchsorted(clip.times, t, side="right") - 1, 0, len(clip.times) - 2))
    span = clip.times[i + 1] - clip.times[i]
    w = float(np.clip((t - clip.times[i]) / span, 0.0, 1.0)) if span > 0 else 0.0
    return Pose(
        root_pos=(1 - w) * clip.root_pos[i] + w * clip.root_pos[i + 1] + offset,
        root_quat=slerp(clip.root_quat[i], clip.root_quat[i + 1], w),
        spherical=slerp(clip.spherical[i], clip.spherical[i + 1], w),
        revolute=(1 - w) * clip.revolute[i] + w * clip.revolute[i + 1],
    )


def clip_frame_counts(names: list[str], frames: int | None, fps: float) -> list[int]:
    """Frames each clip contributes: `frames`, or the clip's own duration at `fps` when None."""
    if frames is not None:
        return [frames] * len(names)
    return [int(np.floor(load_clip(name).duration * fps)) + 1 for name in names]


def sample_clips(names: list[str], frames: int | None, fps: float, extra: int = 0) -> list[Pose]:
    """Poses at `fps` for clips played one after another.

    Each clip contributes `frames` poses (looping or holding its last pose if shorter), or its own
    duration when `frames` is None; the last clip `extra` poses more. A clip starts where the
    previous one ended horizontally (its own heading is kept; the body pose cuts from one clip to
    the next).
    """
    poses: list[Pose] = []
    counts = clip_frame_counts(names, frames, fps)
    counts[-1] += extra
    for name, n in zip(names, counts, strict=True):
        clip = load_clip(name)
        shift = np.zeros(3)
        if poses:
            start = sample_pose(clip, 0.0).root_pos
            shift = poses[-1].root_pos - start
            shift[1] = 0.0
        for k in range(n):
            p = sample_pose(clip, k / fps)
            poses.append(Pose(p.root_pos + shift, p.root_quat, p.spherical, p.revolute))
    return poses


# Limb groups for `mix_limbs`: (indices into SPHERICAL_JOINTS, indices into REVOLUTE_JOINTS).
LIMB_GROUPS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "trunk": ((0, 1), ()),
    "right_leg": ((2, 3), (0,)),
    "right_arm": ((4,), (1,)),
    "left_leg": ((5, 6), (2,)),
    "left_arm": ((7,), (3,)),
}


def mix_limbs(poses: list[Pose], donors: list[str], fps: float, prob: float, segment: int, seed: int) -> list[Pose]:
    """New poses for training data: each limb group (`LIMB_GROUPS`) of each `segment`-frame stretch
    of `poses` is, with probability `prob`, played from another clip of `donors` (a random clip and
    start time, moving on at `fps`), so arms, legs and trunk meet in combinations no clip has. The
    root (position, orientation) stays, and a limb keeps its donor for the whole stretch, so the
    motion stays smooth within a stretch and cuts between stretches."""
    rng = np.random.default_rng(seed)
    clips = [load_clip(name) for name in donors]
    out: list[Pose] = []
    for start in range(0, len(poses), segment):
        chunk = poses[start : start + segment]
        sph = np.stack([p.spherical for p in chunk])
        rev = np.stack([p.revolute for p in chunk])
        for sph_idx, rev_idx in LIMB_GROUPS.values():
            if rng.random() >= prob:
                continue
            clip = clips[rng.integers(len(clips))]
            t0 = rng.uniform(0.0, clip.duration)
            donor = [sample_pose(clip, t0 + k / fps) for k in range(len(chunk))]
            sph[:, list(sph_idx)] = np.stack([d.spherical[list(sph_idx)] for d in donor])
            rev[:, list(rev_idx)] = np.stack([d.revolute[list(rev_idx)] for d in donor])
        out += [Pose(p.root_pos, p.root_quat, s, r) for p, s, r in zip(chunk, sph, rev, strict=True)]
    return out

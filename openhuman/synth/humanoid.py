"""The DeepMimic humanoid in a headless pybullet scene: posing, colours, link -> body14 ids.

pybullet is imported lazily. The scene lives in the project's world frame (Z up, metres); clip
poses (Y up) are rotated on the way in. No physics is stepped: poses are set directly.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from openhuman.ontology import PART_ID
from openhuman.synth.motion import REVOLUTE_JOINTS, SPHERICAL_JOINTS, Pose

log = logging.getLogger(__name__)

SCALE = 0.25
"""globalScaling that turns humanoid.urdf into a ~1.6 m person (as DeepMimic loads it)."""

# Y-up (clip) -> Z-up (world): a +90 degree rotation about x, as a matrix and an (x, y, z, w) quaternion.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_Q_Y_UP_TO_Z_UP = np.array([np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)])

LINK_BODY14: dict[str, int] = {
    "root": PART_ID["torso"],
    "chest": PART_ID["torso"],
    "neck": PART_ID["head"],
    "left_shoulder": PART_ID["left upper arm"],
    "right_shoulder": PART_ID["right upper arm"],
    "left_elbow": PART_ID["left forearm"],
    "right_elbow": PART_ID["right forearm"],
    "left_wrist": PART_ID["left hand"],
    "right_wrist": PART_ID["right hand"],
    "left_hip": PART_ID["left thigh"],
    "right_hip": PART_ID["right thigh"],
    "left_knee": PART_ID["left shin"],
    "right_knee": PART_ID["right shin"],
    "left_ankle": PART_ID["left foot"],
    "right_ankle": PART_ID["right foot"],
}
"""Humanoid link (named like the joint that moves it) -> body14 id."""

SKIN = (0.87, 0.68, 0.56, 1.0)
HAIR = (0.23, 0.15, 0.09, 1.0)
SHIRT = (0.20, 0.36, 0.66, 1.0)
TROUSERS = (0.22, 0.22, 0.27, 1.0)
SHOES = (0.10, 0.09, 0.09, 1.0)
LINK_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "root": TROUSERS, "chest": SHIRT, "neck": SKIN,
    "left_shoulder": SHIRT, "right_shoulder": SHIRT, "left_elbow": SKIN, "right_elbow": SKIN,
    "left_wrist": SKIN, "right_wrist": SKIN, "left_hip": TROUSERS, "right_hip": TROUSERS,
    "left_knee": TROUSERS, "right_knee": TROUSERS, "left_ankle": SHOES, "right_ankle": SHOES,
}  # fmt: skip

EYES = (0.08, 0.06, 0.05, 1.0)
LIPS = (0.62, 0.33, 0.30, 1.0)

HEAD_RADIUS = 0.41 * SCALE
HEAD_CENTRE = (0.0, 0.70 * SCALE, 0.0)
"""Head sphere centre in the neck link frame. Link frames: +x forward, +y up the limb, +z to the right."""
_ALONG_Y = (-np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5))
"""(x, y, z, w) rotation that turns a capsule's z axis into the link's y axis."""


@dataclass(frozen=True)
class Primitive:
    """A sphere, capsule or box rigidly attached to a humanoid link."""

    link: str
    kind: Literal["sphere", "capsule", "box"]
    size: tuple[float, ...]
    """sphere (radius,); capsule (radius, length of the cylinder part along its z); box (half extents x, y, z)."""
    pos: tuple[float, float, float]
    """Centre in the link frame (metres)."""
    quat: tuple[float, float, float, float]
    """Orientation in the link frame (x, y, z, w)."""
    part: int
    """body14 id of its surface."""
    rgba: tuple[float, float, float, float] = SKIN


def _head(dx: float, dy: float, dz: float) -> tuple[float, float, float]:
    return (HEAD_CENTRE[0] + dx, HEAD_CENTRE[1] + dy, HEAD_CENTRE[2] + dz)


_I = (0.0, 0.0, 0.0, 1.0)
_HEAD, _TORSO = PART_ID["head"], PART_ID["torso"]
ATTACHMENTS: tuple[Primitive, ...] = (
    Primitive("neck", "sphere", (HEAD_RADIUS * 1.04,), _head(-0.014, 0.022, 0.0), _I, _HEAD, HAIR),
    Primitive("neck", "sphere", (0.012,), _head(0.093, 0.012, -0.032), _I, _HEAD, EYES),
    Primitive("neck", "sphere", (0.012,), _head(0.093, 0.012, 0.032), _I, _HEAD, EYES),
    Primitive("neck", "sphere", (0.017,), _head(0.098, -0.018, 0.0), _I, _HEAD, SKIN),
    Primitive("neck", "box", (0.008, 0.006, 0.022), _head(0.094, -0.050, 0.0), _I, _HEAD, LIPS),
    Primitive("neck", "capsule", (0.048, 0.05), (0.0, 0.035, 0.0), _ALONG_Y, _HEAD, SKIN),
    Primitive("chest", "capsule", (0.095, 0.12), (0.0, -0.03, 0.0), _ALONG_Y, _TORSO, SHIRT),
    Primitive("chest", "capsule", (0.055, 0.25), (-0.024, 0.215, 0.0), _I, _TORSO, SHIRT),
)
"""Extra shapes that make the DeepMimic mannequin read as a person: hair cap, eyes, nose, mouth,
neck, abdomen and a shoulder bar. Rendered as separate bodies that follow their link."""


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (x, y, z, w) quaternions [..., 4]."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of (x, y, z, w) quaternions [..., 4]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def root_in_world(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """The pose's root position float64[3] and (x, y, z, w) orientation float64[4] in the Z-up world."""
    return Y_UP_TO_Z_UP @ pose.root_pos, quat_mul(_Q_Y_UP_TO_Z_UP, pose.root_quat)


def facing_direction(pose: Pose) -> np.ndarray:
    """float64 [3] unit horizontal direction the person faces in the world (the root's local +x)."""
    _, q = root_in_world(pose)
    f = quat_to_matrix(q)[:, 0].copy()
    f[2] = 0.0
    n = np.linalg.norm(f)
    return f / n if n > 1e-9 else np.array([1.0, 0.0, 0.0])


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence C-level stdout/stderr for the block (pybullet's build banner, urdfdom warnings)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _humanoid_urdf() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"


class HumanoidScene:
    """A headless pybullet world with `people` humanoids and their `ATTACHMENTS` (the ground is
    composited by `openhuman.synth.render`).

    `set_pose(pose, person)` poses one; `link_frames(person)` gives its links' world frames;
    `primitives()` lists every visible shape of a person (all people are alike); `labels_from_seg`
    turns pybullet's segmentation buffer into body14 ids.
    """

    def __init__(self, attachments: bool = True, people: int = 1) -> None:
        with quiet_native_output():
            import pybullet as p

        self._p = p
        c = self.client = p.connect(p.DIRECT)
        with quiet_native_output():
            self.body_ids = [
                p.loadURDF(str(_humanoid_urdf()), globalScaling=SCALE, physicsClientId=c) for _ in range(people)
            ]
        self.body_id = self.body_ids[0]
        self.link_index: dict[str, int] = {}
        for j in range(p.getNumJoints(self.body_id, physicsClientId=c)):
            self.link_index[p.getJointInfo(self.body_id, j, physicsClientId=c)[12].decode()] = j
        missing = set(LINK_BODY14) - set(self.link_index)
        if missing:
            raise RuntimeError(f"humanoid.urdf lacks links {sorted(missing)}")
        for body in self.body_ids:
            for name, j in self.link_index.items():
                p.changeVisualShape(body, j, rgbaColor=LINK_COLOURS[name], physicsClientId=c)
        self.attachments = ATTACHMENTS if attachments else ()
        self.attachment_ids = [[self._create_body(a) for a in self.attachments] for _ in self.body_ids]
        self._lut = self._build_lut()

    def _create_body(self, prim: Primitive) -> int:
        p, c = self._p, self.client
        if prim.kind == "sphere":
            shape = p.createVisualShape(p.GEOM_SPHERE, radius=prim.size[0], rgbaColor=prim.rgba, physicsClientId=c)
        elif prim.kind == "capsule":
            shape = p.createVisualShape(
                p.GEOM_CAPSULE, radius=prim.size[0], length=prim.size[1], rgbaColor=prim.rgba, physicsClientId=c
            )
        else:
            shape = p.createVisualShape(p.GEOM_BOX, halfExtents=list(prim.size), rgbaColor=prim.rgba, physicsClientId=c)
        return int(p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape, physicsClientId=c))

    def _build_lut(self) -> np.ndarray:
        """int16 [n_objects, n_links + 1]: body14 id of (object id, link index + 1); 0 elsewhere."""
        n_obj = max([*self.body_ids, *(a for ids in self.attachment_ids for a in ids)]) + 1
        lut = np.zeros((n_obj, len(self.link_index) + 1), dtype=np.uint8)
        for body, attached in zip(self.body_ids, self.attachment_ids, strict=True):
            for name, j in self.link_index.items():
                lut[body, j + 1] = LINK_BODY14[name]
            for prim, obj in zip(self.attachments, attached, strict=True):
                lut[obj, 0] = prim.part
        return lut

    def set_pose(self, pose: Pose, person: int = 0) -> None:
        """Pose a humanoid (clip Y-up pose -> world Z-up) and move its attachments with its links."""
        p, c, b = self._p, self.client, self.body_ids[person]
        pos, quat = root_in_world(pose)
        p.resetBasePositionAndOrientation(b, pos.tolist(), quat.tolist(), physicsClientId=c)
        for name, q in zip(SPHERICAL_JOINTS, pose.spherical, strict=True):
            p.resetJointStateMultiDof(b, self.link_index[name], q.tolist(), physicsClientId=c)
        for name, a in zip(REVOLUTE_JOINTS, pose.revolute, strict=True):
            p.resetJointState(b, self.link_index[name], float(a), physicsClientId=c)
        if not self.attachments:
            return
        frames = self.link_frames(person)
        for prim, obj in zip(self.attachments, self.attachment_ids[person], strict=True):
            lpos, lquat = frames[prim.link]
            wpos = lpos + quat_to_matrix(lquat) @ np.asarray(prim.pos)
            wquat = quat_mul(lquat, np.asarray(prim.quat))
            p.resetBasePositionAndOrientation(obj, wpos.tolist(), wquat.tolist(), physicsClientId=c)

    def link_frames(self, person: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """World frame of every link of a person: name -> (position float64[3], quaternion (x, y, z, w) float64[4])."""
        p, c, b = self._p, self.client, self.body_ids[person]
        states = p.getLinkStates(b, list(self.link_index.values()), computeForwardKinematics=True, physicsClientId=c)
        return {
            name: (np.asarray(st[4], dtype=np.float64), np.asarray(st[5], dtype=np.float64))
            for name, st in zip(self.link_index, states, strict=True)
        }

    def primitives(self) -> list[Primitive]:
        """Every visible shape of the person: the URDF links' own shapes, then the attachments."""
        p = self._p
        names = {j: n for n, j in self.link_index.items()}
        kinds = {p.GEOM_SPHERE: "sphere", p.GEOM_CAPSULE: "capsule", p.GEOM_BOX: "box"}
        out = []
        for v in p.getVisualShapeData(self.body_id, physicsClientId=self.client):
            name, kind, dims = names[v[1]], kinds[int(v[2])], v[3]
            if kind == "sphere":
                size: tuple[float, ...] = (float(dims[0]),)
            elif kind == "capsule":  # pybullet reports (length, radius)
                size = (float(dims[1]), float(dims[0]))
            else:  # full extents
                size = tuple(0.5 * float(d) for d in dims)
            pos, quat = tuple(float(x) for x in v[5]), tuple(float(x) for x in v[6])
            out.append(Primitive(name, kind, size, pos, quat, LINK_BODY14[name], LINK_COLOURS[name]))  # type: ignore[arg-type]
        return out + list(self.attachments)

    def labels_from_seg(self, seg: np.ndarray) -> np.ndarray:
        """uint8 [H, W] body14 ids from pybullet's int32 [H, W] object + ((link + 1) << 24) buffer."""
        seg = np.asarray(seg, dtype=np.int64)
        obj = np.where(seg < 0, 0, seg & 0xFFFFFF)
        link1 = np.where(seg < 0, 0, seg >> 24)
        ok = (seg >= 0) & (obj < self._lut.shape[0]) & (link1 < self._lut.shape[1])
        return np.where(ok, self._lut[np.where(ok, obj, 0), np.where(ok, link1, 0)], 0).astype(np.uint8)

    def close(self) -> None:
        if self.client >= 0:
            self._p.disconnect(physicsClientId=self.client)
            self.client = -1

    def __enter__(self) -> HumanoidScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

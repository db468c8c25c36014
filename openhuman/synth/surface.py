"""Labelled surface points of the posed humanoid (3D ground truth), from its primitive shapes.

Points are drawn once, uniformly by area, in each primitive's own frame (fixed seed), then moved
with the links every frame. Points that lie inside another primitive of the person in this pose
(e.g. the part of the head sphere covered by the hair cap, a capsule end buried in the torso, or
the chest under an arm pressed against it) are dropped, so what remains is this frame's outer
surface. Every point keeps the index of its sample (`ids`): points with the same id in two
frames are the same body point (ground-truth correspondences / scene flow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openhuman.synth.humanoid import Primitive, quat_to_matrix

INSIDE_TOL = 1e-3
"""A point counts as buried when it is more than this many metres inside another primitive."""


def _area(prim: Primitive) -> float:
    if prim.kind == "sphere":
        return 4.0 * np.pi * prim.size[0] ** 2
    if prim.kind == "capsule":
        r, length = prim.size
        return 4.0 * np.pi * r**2 + 2.0 * np.pi * r * length
    hx, hy, hz = prim.size
    return 8.0 * (hx * hy + hy * hz + hx * hz)


def _unit_sphere(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sample_primitive(prim: Primitive, n: int, rng: np.random.Generator) -> np.ndarray:
    """float64 [n, 3] points uniform on the surface of `prim`, in the primitive's own frame."""
    if prim.kind == "sphere":
        return _unit_sphere(rng, n) * prim.size[0]
    if prim.kind == "capsule":
        r, length = prim.size
        on_side = rng.random(n) < (2.0 * np.pi * r * length) / _area(prim)
        pts = _unit_sphere(rng, n) * r
        pts[:, 2] += np.sign(pts[:, 2]) * length / 2.0
        k = int(on_side.sum())
        a = rng.uniform(0.0, 2.0 * np.pi, k)
        pts[on_side] = np.stack([r * np.cos(a), r * np.sin(a), rng.uniform(-length / 2, length / 2, k)], axis=1)
        return pts
    half = np.asarray(prim.size)
    face_areas = np.array([half[1] * half[2], half[0] * half[2], half[0] * half[1]]).repeat(2)
    face = rng.choice(6, size=n, p=face_areas / face_areas.sum())
    pts = rng.uniform(-1.0, 1.0, size=(n, 3)) * half
    axis = face // 2
    pts[np.arange(n), axis] = np.where(face % 2 == 0, -1.0, 1.0) * half[axis]
    return pts


def signed_distance(prim: Primitive, local: np.ndarray) -> np.ndarray:
    """float64 [M] signed distance (negative inside) of points [M, 3] given in the primitive's frame."""
    if prim.kind == "sphere":
        return np.linalg.norm(local, axis=1) - prim.size[0]
    if prim.kind == "capsule":
        r, length = prim.size
        z = np.clip(local[:, 2], -length / 2, length / 2)
        return np.linalg.norm(local - np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1), axis=1) - r
    q = np.abs(local) - np.asarray(prim.size)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


@dataclass
class SurfaceSampler:
    """Fixed surface samples of a list of primitives; `points(link_frames)` poses them."""

    prims: list[Primitive]
    local: list[np.ndarray]
    """Per primitive: float64 [n_i, 3] samples in its own frame."""

    @classmethod
    def build(cls, prims: list[Primitive], n_points: int, seed: int = 0) -> SurfaceSampler:
        """Spread about `n_points` samples over `prims` in proportion to their areas."""
        rng = np.random.default_rng(seed)
        areas = np.array([_area(p) for p in prims])
        counts = np.maximum(1, np.round(n_points * areas / areas.sum()).astype(int))
        return cls(prims, [sample_primitive(p, int(n), rng) for p, n in zip(prims, counts, strict=True)])

    def _poses(self, link_frames: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """World (rotation [3, 3], translation [3]) of each primitive."""
        out = []
        for prim in self.prims:
            lpos, lquat = link_frames[prim.link]
            R_link = quat_to_matrix(lquat)
            out.append((R_link @ quat_to_matrix(np.asarray(prim.quat)), lpos + R_link @ np.asarray(prim.pos)))
        return out

    def _world(
        self, link_frames: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """All samples in the world float64 [N, 3], and each primitive's world pose."""
        poses = self._poses(link_frames)
        return np.concatenate([pts @ R.T + t for pts, (R, t) in zip(self.local, poses, strict=True)]), poses

    def _buried(self, xyz: np.ndarray, poses: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """bool [N] mask of the world samples `xyz` that lie inside another primitive."""
        owner = np.concatenate([np.full(len(pts), i) for i, pts in enumerate(self.local)])
        buried = np.zeros(len(xyz), dtype=bool)
        for i, (prim, (R, t)) in enumerate(zip(self.prims, poses, strict=True)):
            buried |= (owner != i) & (signed_distance(prim, (xyz - t) @ R) < -INSIDE_TOL)
        return buried

    @property
    def labels(self) -> np.ndarray:
        """uint8 [N] body14 id of every sample."""
        return np.concatenate(
            [np.full(len(pts), p.part, dtype=np.uint8) for p, pts in zip(self.prims, self.local, strict=True)]
        )

    def points(
        self, link_frames: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The samples on the outer surface of this pose: world points float32 [M, 3], body14
        labels uint8 [M] and sample ids int32 [M] (the same id is the same body point in every pose)."""
        xyz, poses = self._world(link_frames)
        keep = ~self._buried(xyz, poses)
        return xyz[keep].astype(np.float32), self.labels[keep], np.flatnonzero(keep).astype(np.int32)

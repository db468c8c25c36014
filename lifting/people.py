"""One id per person across the views and over time.

Each view's tracker numbers its people on its own, so person 0 of one view need not be person 0
of another, and a view that lost a person and found them again may call them 1 from then on.
`CrossViewPeople` groups the views' person tracks into people by their 2D landmarks:
- two tracks of two views are the same person when the landmarks that do not depend on
  left/right (the nose and the midpoints of the 16 left/right pairs, so a view that swapped the
  person's left and right still matches) meet the epipolar geometry of the two cameras: the
  median symmetric epipolar distance is under `max_px` pixels;
- tracks under `max_px` apart are joined, first the pairs that most other views confirm (a
  third view whose nearest track to both is the same: where two people stand on one epipolar
  plane of a camera pair, each matches both in that pair, and only the other cameras tell them
  apart), then the closest; never two tracks of one view, never two groups holding a pair of tracks over
  `max_px` apart (complete linkage);
- a group takes the id that most of its tracks had before (the view trackers keep their own ids
  stable), or a new one; so a person keeps their id when one view renumbers them, and each
  person gets one id in every view and in 3D;
- groups that were one person the frame before and hold no two tracks of one view stay one
  (landmarks can go wrong in some views for a few frames);
- a view's person without usable landmarks (a parser without keypoints, a person too hidden)
  joins the group of the id they had before, else one with the same id in another view (the
  views' own numbering, right for one person), else stands alone.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from lifting.keypoints import LR_LANDMARK_PAIRS, _normalised
from openhuman.arrays import present_ids
from openhuman.ontology import LANDMARK_ID
from openhuman.types import CameraView, PartParse

Node = tuple[str, int]
"""(view id, the view's own person id)."""

STALE_FRAMES = 1000
"""A view's person id unseen for this many frames is forgotten (memory stays bounded)."""


def translate_ids(ids: np.ndarray, mapping: dict[int, int] | None) -> np.ndarray:
    """int64 person ids (>= -1) with each id that `mapping` names replaced; the others (-1, no
    person, included) stay as they are."""
    if not mapping or not ids.size:
        return ids
    lut = np.arange(-1, max(int(ids.max()), max(mapping)) + 1, dtype=np.int64)  # lut[id + 1]
    lut[np.array(list(mapping)) + 1] = list(mapping.values())
    return lut[ids + 1]


def side_free_points(kps: np.ndarray) -> np.ndarray:
    """float [..., 17, 3] (x, y, visibility) of the nose and the midpoints of the 16 left/right
    landmark pairs (visibility: the smaller of the pair's) from landmarks [..., 33, 3]."""
    kps = np.asarray(kps, np.float64)
    a, b = kps[..., LR_LANDMARK_PAIRS[:, 0], :], kps[..., LR_LANDMARK_PAIRS[:, 1], :]
    mid = np.concatenate([(a[..., :2] + b[..., :2]) / 2, np.minimum(a[..., 2:], b[..., 2:])], -1)
    return np.concatenate([kps[..., LANDMARK_ID["nose"] : LANDMARK_ID["nose"] + 1, :], mid], -2)


def _essential(a: CameraView, b: CameraView) -> np.ndarray:
    """E with x_b^T E x_a = 0 for normalised image points of cameras a and b."""
    ta, tb = np.asarray(a.cam_from_world, np.float64), np.asarray(b.cam_from_world, np.float64)
    R = tb[:3, :3] @ ta[:3, :3].T
    t = tb[:3, 3] - R @ ta[:3, 3]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return tx @ R


def epipolar_px(xa: np.ndarray, ok_a: np.ndarray, xb: np.ndarray, ok_b: np.ndarray, E: np.ndarray, f: float) -> float:
    """Median symmetric epipolar distance (pixels, at focal length f) between the points xa and xb
    (normalised [J, 2], seen where ok); inf when fewer than 3 points are seen in both."""
    both = ok_a & ok_b
    if both.sum() < 3:
        return np.inf
    pa = np.c_[xa[both], np.ones(both.sum())]
    pb = np.c_[xb[both], np.ones(both.sum())]
    la, lb = pa @ E.T, pb @ E  # epipolar lines in b of pa, in a of pb
    r = np.abs(np.sum(pb * la, 1))
    d = r / np.maximum(np.hypot(la[:, 0], la[:, 1]), 1e-12) + r / np.maximum(np.hypot(lb[:, 0], lb[:, 1]), 1e-12)
    return float(np.median(d) / 2 * f)


class CrossViewPeople:
    """Stable person ids shared by all views (see the module docstring)."""

    def __init__(self, cameras: dict[str, CameraView], max_px: float = 25.0, min_visibility: float = 0.5):
        self.cameras = cameras
        self.max_px = max_px
        self.min_visibility = min_visibility
        self._owner: dict[Node, tuple[int, int]] = {}
        """node -> (person id, the last frame it was seen)."""
        self._next_id = 0
        self._frame = 0

    def _nodes(self, parses: dict[str, PartParse]) -> tuple[list[Node], dict[Node, tuple[np.ndarray, np.ndarray]]]:
        """Every view's person ids, and the normalised side-free landmarks of those with keypoints."""
        nodes: list[Node] = []
        points: dict[Node, tuple[np.ndarray, np.ndarray]] = {}
        for vid, p in parses.items():
            pid = np.asarray(p.person_ids)
            kps = p.keypoints
            for i in present_ids(pid):
                nodes.append((vid, i))
                if kps is not None and np.ndim(kps) == 3 and i < len(kps) and np.shape(kps)[1:] == (33, 3):
                    sf = side_free_points(np.asarray(kps)[i])[None]
                    xy, ok = _normalised(sf, [self.cameras[vid]], self.min_visibility)
                    if ok.any():
                        points[(vid, i)] = (xy[0], ok[0])
        return nodes, points

    def _groups(self, nodes: list[Node], points: dict[Node, tuple[np.ndarray, np.ndarray]]) -> list[list[Node]]:
        """Group the nodes (all with landmarks) into people (see the module docstring)."""
        dist: dict[tuple[Node, Node], float] = {}
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                if a[0] != b[0]:
                    ca, cb = self.cameras[a[0]], self.cameras[b[0]]
                    f = float(np.sqrt(ca.K[0, 0] * cb.K[0, 0]))
                    dist[(a, b)] = dist[(b, a)] = epipolar_px(*points[a], *points[b], _essential(ca, cb), f)
        best: dict[tuple[Node, str], Node] = {}  # (track, view) -> its nearest track there, under max_px
        for (a, b), d in dist.items():
            if d < self.max_px and d < dist.get((a, best.get((a, b[0]), a)), np.inf):
                best[(a, b[0])] = b

        def support(a: Node, b: Node) -> int:
            """Other views whose nearest track to a is also the nearest to b."""
            views = {c[0] for c in nodes} - {a[0], b[0]}
            return sum((a, v) in best and best[(a, v)] == best.get((b, v)) for v in views)

        # where two people stand on one epipolar plane of a camera pair, each matches both there;
        # the other views tell them apart, so links that more of them confirm are taken first
        links = sorted((-support(a, b), d, a, b) for (a, b), d in dist.items() if a < b and d < self.max_px)
        far = {pair for pair, d in dist.items() if self.max_px <= d < np.inf}
        group = {n: [n] for n in nodes}
        for _, _, a, b in links:
            ga, gb = group[a], group[b]
            if ga is gb or {n[0] for n in ga} & {n[0] for n in gb}:
                continue  # one person per view
            if any((x, y) in far for x in ga for y in gb):
                continue  # complete linkage: no two of their tracks far apart
            ga.extend(gb)
            for n in gb:
                group[n] = ga
        out, seen = [], set()
        for g in group.values():
            if id(g) not in seen:
                seen.add(id(g))
                out.append(g)
        return out

    def _keep_together(self, groups: list[list[Node]]) -> list[list[Node]]:
        """Join again groups that hold tracks of one person of the frame before and no two tracks of
        one view: landmarks that go wrong for a few frames (a cartwheel: 13 of 2382 view pairs of
        ten synthetic clips lay over 25 px apart, all in it) must not split a person."""
        merged = True
        while merged:
            merged = False
            for i, a in enumerate(groups):
                for b in groups[i + 1 :]:
                    before = {self._owner[n][0] for n in a if n in self._owner}
                    shared = before & {self._owner[n][0] for n in b if n in self._owner}
                    if shared and not {n[0] for n in a} & {n[0] for n in b}:
                        a.extend(b)
                        groups.remove(b)
                        merged = True
                        break
                if merged:
                    break
        return groups

    def _join_loose(self, node: Node, groups: list[list[Node]]) -> None:
        """A view's person without usable landmarks joins the group of the id it had before, or
        else one holding the same person id in another view (the views' own numbering), or else
        stands alone; never a group that already has a person of its view."""
        free = [g for g in groups if node[0] not in {m[0] for m in g}]
        before = self._owner.get(node)
        for g in free:
            if before is not None and any(self._owner.get(m, (None,))[0] == before[0] for m in g):
                g.append(node)
                return
        for g in free:
            if any(m[1] == node[1] for m in g):
                g.append(node)
                return
        groups.append([node])

    def assign(self, parses: dict[str, PartParse]) -> dict[str, dict[int, int]]:
        """view id -> {the view's person id: the shared person id} for one frame's parses."""
        self._frame += 1
        nodes, points = self._nodes(parses)
        if self.max_px <= 0:
            return {vid: {i: i for v, i in nodes if v == vid} for vid in parses}
        groups = self._groups([n for n in nodes if n in points], points)
        for n in nodes:
            if n not in points:
                self._join_loose(n, groups)
        groups = self._keep_together(groups)
        # each group takes the id most of its nodes had (largest groups choose first), or a new one
        votes = sorted(
            ((count, len(g), gi, pid) for gi, g in enumerate(groups)
             for pid, count in Counter(self._owner[n][0] for n in g if n in self._owner).items()),
            reverse=True,
        )  # fmt: skip
        ids: dict[int, int] = {}
        taken: set[int] = set()
        for _, _, gi, pid in votes:
            if gi not in ids and pid not in taken:
                ids[gi] = pid
                taken.add(pid)
        out: dict[str, dict[int, int]] = {vid: {} for vid in parses}
        for gi, g in enumerate(groups):
            if gi not in ids:
                ids[gi] = self._next_id
                self._next_id += 1
            for n in g:
                out[n[0]][n[1]] = ids[gi]
                self._owner[n] = (ids[gi], self._frame)
        self._owner = {n: v for n, v in self._owner.items() if self._frame - v[1] < STALE_FRAMES}
        return out

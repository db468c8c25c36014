"""Visibility-aware multi-view label fusion onto 3D points.

Every view that sees a point (z-buffer test) adds its per-pixel class probabilities at the
point's pixel, weighted by the parse confidence and the viewing angle; the fused label is the
argmax and its confidence the weighted mean probability of that class. Points no view sees take
the majority label of their seen neighbours with confidence 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from lifting.config import LiftingConfig
from lifting.geometry import to_camera, visible_in_view
from lifting.people import translate_ids
from lifting.sources import Points
from openhuman.arrays import mask_box, nearest_source
from openhuman.ontology import FINE_PARTS, LEFT_IDS, LR_SWAP, NUM_CLASSES
from openhuman.types import CameraView, Frame, PartParse

log = logging.getLogger(__name__)

BACKGROUND_WEIGHT = 0.5
"""Vote weight of a pixel the parse leaves as background (parses carry no score there)."""


@dataclass(frozen=True)
class Fused:
    labels: np.ndarray
    """int16 [N] fused body14 id."""
    confidence: np.ndarray
    """float32 [N] weighted mean probability of the fused label (0 where no view saw the point)."""
    track_ids: np.ndarray
    """int32 [N] majority person id over the views that see the point (-1 = none)."""
    rgb: np.ndarray
    """uint8 [N, 3] the points' own colours when they have them (depth points), else the weighted
    mean colour over the views that see the point."""
    seen: np.ndarray
    """bool [N] whether any view saw the point."""
    visibility_tests: int
    """Number of point-view visibility tests run."""


def _view_votes(
    parse: PartParse, pix: np.ndarray, pids: np.ndarray, perms: dict[int, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities [C, n] (class-major, float16 or float32) and parse confidence float32 [n]
    at flat pixels `pix` (whose person ids are `pids`).

    perms: person id -> body14 channel permutation (its left/right mirrored in this view), or None.
    """
    labels = parse.labels.reshape(-1)[pix]
    if parse.probs is not None:
        C = parse.probs.shape[0]
        probs = np.take(parse.probs.reshape(C, -1), pix, axis=1)  # float16; upcast when weighted
        if C != NUM_CLASSES:
            probs = np.pad(probs, ((0, max(NUM_CLASSES - C, 0)), (0, 0)))[:NUM_CLASSES]
    else:
        probs = np.zeros((NUM_CLASSES, len(pix)), np.float32)
        probs[np.clip(labels, 0, NUM_CLASSES - 1).astype(np.int64), np.arange(len(pix))] = 1.0
    for person, perm in (perms or {}).items():
        swap = pids == person
        if swap.any():
            probs[:, swap] = probs[perm][:, swap]
    conf = np.where(labels > 0, parse.scores.reshape(-1)[pix], np.float32(BACKGROUND_WEIGHT)).astype(np.float32)
    return probs, conf


def _outward(xyz: np.ndarray, normals: np.ndarray | None) -> np.ndarray:
    """float32 [N, 3] unit outward directions: the normals, or the direction from the body centre."""
    if normals is not None:
        return np.asarray(normals, np.float32)
    n = (xyz - xyz.mean(0)).astype(np.float32)
    n /= np.maximum(np.sqrt(np.einsum("ij,ij->i", n, n)), 1e-9)[:, None]
    return n


def _angle_weight(xyz: np.ndarray, outward: np.ndarray, cam: CameraView, min_cos: float) -> np.ndarray:
    """float32 [n]: cos between the outward direction and the ray back to the camera, clamped."""
    ray = cam.center.astype(np.float32)[None, :] - xyz
    cos = np.einsum("ij,ij->i", outward, ray) / np.maximum(np.sqrt(np.einsum("ij,ij->i", ray, ray)), 1e-9)
    return np.clip(cos, min_cos, 1.0).astype(np.float32)


def _majority_ids(point_idx: np.ndarray, ids: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """int32 [n]: per point, the id with the largest summed weight; ties (zero weights included)
    go to the smallest id; -1 for points without a vote. Three paths (one id, a few, many) for
    speed, with the same result."""
    out = np.full(n, -1, np.int32)
    if len(point_idx) == 0:
        return out
    if ids.min() == ids.max():  # one person: every point with a vote gets that id
        has = np.zeros(n, bool)
        has[point_idx] = True
        out[has] = ids[0]
        return out
    uniq, inv = np.unique(ids, return_inverse=True)
    if len(uniq) <= 16:  # usual case: a few people, one weight row per id
        w = np.zeros((len(uniq), n), np.float64)
        for k in range(len(uniq)):
            sel = inv == k
            w[k] = np.bincount(point_idx[sel], weights=weights[sel], minlength=n)
        best = np.argmax(w, axis=0)
        has = np.zeros(n, bool)
        has[point_idx] = True
        out[has] = uniq[best[has]]
        return out
    base = int(ids.max()) + 1
    key = point_idx.astype(np.int64) * base + ids
    ukey, kinv = np.unique(key, return_inverse=True)
    wk = np.bincount(kinv, weights=weights)
    pts, pid = ukey // base, ukey % base
    order = np.lexsort((-wk, pts))
    first = np.r_[True, pts[order][1:] != pts[order][:-1]]
    out[pts[order][first]] = pid[order][first]
    return out


def fuse_labels(
    points: Points,
    cameras: dict[str, CameraView],
    parses: dict[str, PartParse],
    frames: dict[str, Frame] | None,
    depths: dict[str, np.ndarray] | None,
    cfg: LiftingConfig,
    mirrored: dict[str, dict[int, np.ndarray]] | None = None,
    person_ids: dict[str, dict[int, int]] | None = None,
    prior: np.ndarray | None = None,
) -> Fused:
    """Fuse the views' part probabilities onto `points`.

    mirrored: view id -> {person id: body14 channel permutation}, the people whose left/right
    (of some limbs) is mirrored in that view (from the 3D skeleton check), or None.
    person_ids: view id -> {the view's person id: the id shared by all views} (`lifting.people`);
    the points' track ids are voted in those; None = the views' own ids.
    prior: int [N] a body part per point from elsewhere (the skeleton's nearest bone; 0 = none),
    which votes with `cfg.hull_skeleton_vote` times the views' own part votes at the points the
    views give a part: it moves points between parts, never to or from background.
    """
    xyz = np.asarray(points.xyz, np.float32)
    outward = _outward(xyz, points.normals)
    fuse_rgb = points.rgb is None  # depth points already carry their pixel's colour
    N = len(xyz)
    acc = np.zeros((NUM_CLASSES, N), np.float32)  # class-major: contiguous per-class rows
    wsum = np.zeros(N, np.float32)
    rgb_acc = np.zeros((N if fuse_rgb else 0, 3), np.float32)
    tid_pts, tid_ids, tid_w = [], [], []
    for vid, parse in parses.items():
        cam = cameras[vid]
        depth = None if depths is None else depths.get(vid)
        vis, flat = visible_in_view(xyz, cam, cfg.visibility_tolerance, depth, cfg.splat_radius_px, cfg.occlusion_gap)
        idx = np.nonzero(vis)[0]
        pix = flat[idx]
        pids = parse.person_ids.ravel()[pix].astype(np.int64)
        probs, conf = _view_votes(parse, pix, pids, (mirrored or {}).get(vid))
        w = conf * _angle_weight(xyz[idx], outward[idx], cam, cfg.min_view_cos) if len(idx) else conf
        acc[:, idx] += probs * w
        wsum[idx] += w
        if fuse_rgb and frames is not None and vid in frames:
            rgb_acc[idx] += frames[vid].rgb.reshape(-1, 3)[pix].astype(np.float32) * w[:, None]
        has_id = pids >= 0
        tid_pts.append(idx[has_id])
        tid_ids.append(translate_ids(pids[has_id], (person_ids or {}).get(vid)))
        tid_w.append(conf[has_id])  # identity does not depend on the viewing angle
    if prior is not None and cfg.hull_skeleton_vote > 0:
        idx = np.flatnonzero(np.asarray(prior) > 0)
        parts = acc[1:, idx]
        given = parts.max(0, initial=0.0) > acc[0, idx]  # points the views give some part
        acc[prior[idx[given]], idx[given]] += cfg.hull_skeleton_vote * parts[:, given].sum(0)
    return _finish(points, acc, wsum, rgb_acc, tid_pts, tid_ids, tid_w, cfg, N * len(parses))


def _finish(
    points: Points,
    acc: np.ndarray,
    wsum: np.ndarray,
    rgb_acc: np.ndarray,
    tid_pts: list[np.ndarray],
    tid_ids: list[np.ndarray],
    tid_w: list[np.ndarray],
    cfg: LiftingConfig,
    tests: int,
) -> Fused:
    N = len(wsum)
    seen = wsum > 0
    labels = np.argmax(acc, axis=0).astype(np.int16)
    conf = np.zeros(N, np.float32)
    top = np.take_along_axis(acc, labels[None].astype(np.int64), axis=0)[0]
    conf[seen] = top[seen] / np.maximum(acc.sum(0)[seen], 1e-12)
    if points.rgb is not None:
        rgb = np.asarray(points.rgb, np.uint8)
    else:
        rgb = np.full((N, 3), 160, np.uint8)
        rgb[seen] = np.clip(np.rint(rgb_acc[seen] / wsum[seen, None]), 0, 255).astype(np.uint8)
    track = _majority_ids(
        np.concatenate(tid_pts) if tid_pts else np.zeros(0, np.int64),
        np.concatenate(tid_ids) if tid_ids else np.zeros(0, np.int64),
        np.concatenate(tid_w) if tid_w else np.zeros(0),
        N,
    )
    if seen.any() and not seen.all() and cfg.fill_neighbors > 0:
        labels, track = _fill_unseen(points.xyz, seen, labels, track, cfg.fill_neighbors)
    elif not seen.any():
        labels[:] = 0
    n_unseen = int((~seen).sum())
    if n_unseen:
        log.debug("%d of %d points seen by no view; labels filled from neighbours", n_unseen, N)
    return Fused(labels, conf, track, rgb, seen, tests)


def _fill_unseen(
    xyz: np.ndarray, seen: np.ndarray, labels: np.ndarray, track: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Majority label (and nearest track id) of the k nearest seen points, for unseen points.

    The search tree holds about 2 seen points per unseen point (at least 5000) (a regular subsample), which
    keeps this cheap when only a few points are unseen.
    """
    from scipy.spatial import cKDTree

    src = np.nonzero(seen)[0]
    step = max(1, len(src) // max(2 * int((~seen).sum()), 5000))
    src = src[::step]
    dst = np.nonzero(~seen)[0]
    k = min(k, len(src))
    tree = cKDTree(xyz[src], balanced_tree=False, compact_nodes=False)  # faster build, same answers
    _, nn = tree.query(xyz[dst], k=k)
    nn = np.asarray(nn).reshape(len(dst), k)
    flat = np.repeat(np.arange(len(dst)) * NUM_CLASSES, k) + labels[src][nn].ravel()
    votes = np.bincount(flat, minlength=len(dst) * NUM_CLASSES).reshape(len(dst), NUM_CLASSES)
    labels = labels.copy()
    track = track.copy()
    labels[dst] = np.argmax(votes, axis=1)
    track[dst] = track[src][nn[:, 0]]
    return labels, track


def one_side_per_limb(
    xyz: np.ndarray, labels: np.ndarray, weights: np.ndarray, radius: float, min_share: float, min_points: int = 30
) -> np.ndarray:
    """int16 [N] labels where each limb piece carries one side.

    The points of one limb part type (both thighs' points, say) that connect form one piece: one
    limb, or two that touch. Connected means in the same or a neighbouring cell (26-neighbourhood)
    of a grid of `radius / 2` metres, so points about `radius` apart join (from radius / 2 up to
    1.7 radius). Views that disagree on left and right leave a limb speckled with the other
    side's label. A piece whose weighted majority side holds at least `min_share` of its weight
    takes that side throughout; a piece near an even split (two touching limbs) or smaller than
    `min_points` is left as fused.
    xyz float [N, 3], labels int [N] body14, weights float [N] (fused confidence).
    """
    from scipy import ndimage

    out = np.asarray(labels, np.int16).copy()
    kind = np.minimum(out, LR_SWAP[np.clip(out, 0, NUM_CLASSES - 1)])  # limb type: its left part's id
    idx = np.nonzero(np.isin(kind, LEFT_IDS))[0]
    if len(idx) < min_points:
        return out
    limb = kind[idx]
    cell = np.floor(np.asarray(xyz, np.float64)[idx] / (radius / 2)).astype(np.int64)
    piece, n = np.zeros(len(idx), np.int64), 0
    for left in LEFT_IDS:  # connected pieces of each limb type on its own occupancy grid
        sel = np.nonzero(limb == left)[0]
        if len(sel) == 0:
            continue
        ijk = tuple((cell[sel] - cell[sel].min(0)).T)
        grid = np.zeros([int(c.max()) + 1 for c in ijk], bool)
        grid[ijk] = True
        lab, count = ndimage.label(grid, structure=np.ones((3, 3, 3), bool))
        piece[sel] = lab[ijk] - 1 + n
        n += count
    w = np.maximum(np.asarray(weights, np.float64)[idx], 0.05)  # points no view saw still count a little
    size = np.bincount(piece, minlength=n)
    left_share = np.bincount(piece, weights=w * (out[idx] == limb), minlength=n) / np.bincount(piece, w, n)
    to_left = (left_share >= min_share) & (size >= min_points)
    to_right = (left_share <= 1 - min_share) & (size >= min_points)
    out[idx] = np.where(to_left[piece], limb, np.where(to_right[piece], LR_SWAP[limb], out[idx]))
    return out


def neighbour_vote(labels: np.ndarray, weights: np.ndarray, neighbors: np.ndarray, rounds: int = 1) -> np.ndarray:
    """int16 [N]: each point's label by the weighted vote of itself and its nearest points.

    Removes the isolated points of another part that fusion leaves where views disagree (a few
    points of the other thigh inside a thigh, say); a part boundary moves by at most a point or
    two a round. Each round votes on the last round's labels, so it reaches a little farther.
    labels int [N], weights float [N] (fused confidence; points no view saw still count a
    little), neighbors int [N, k] indices into the same points (-1 = none; `Points.neighbors`).
    """
    out = np.asarray(labels, np.int16).copy()
    nb = np.asarray(neighbors)
    ok = nb >= 0
    safe = np.where(ok, nb, 0)
    w = np.where(ok, np.maximum(np.asarray(weights, np.float32), 0.05)[safe], 0.0)
    for _ in range(rounds):
        near = out[safe]
        rows = np.nonzero(((near != out[:, None]) & ok).any(1))[0]  # not unanimous (~7 % of points)
        if len(rows) == 0:
            break
        slot = (np.arange(len(rows), dtype=np.int32) * NUM_CLASSES)[:, None] + near[rows]
        votes = np.bincount(slot.ravel(), w[rows].ravel(), len(rows) * NUM_CLASSES)
        out[rows] = votes.reshape(len(rows), NUM_CLASSES).argmax(1)
    return out


_FINE_PARENT = np.array([parent for _, parent in FINE_PARTS], np.int16)


def labels_from_cloud(
    parse: PartParse,
    xyz: np.ndarray,
    labels: np.ndarray,
    cam: CameraView,
    depth: np.ndarray | None,
    cfg: LiftingConfig,
    confident: np.ndarray | None = None,
) -> PartParse:
    """The view's parse with its person pixels relabelled from the fused cloud they see.

    The cloud's points that the view sees (`visible_in_view`, with its depth map where given) are
    drawn into the image; each pixel the parse gives a body part takes the label of the nearest
    drawn confident point within `cfg.relabel_max_px` pixels (pixels with none keep theirs).
    Which part each pixel is comes from all views together, so a view that mistakes left for
    right, or a limb part for its neighbour, is overruled by the others.

    The silhouette is the view's own, except where its depth map shows the scene behind the
    person: a part pixel whose reading lies more than `cfg.relabel_behind` metres behind every
    drawn point within `cfg.relabel_search_px` pixels (and has one there) becomes background
    (track id -1, score 0.5). A parser's person mask is smoother than the body and spills onto
    the background between the arms and the torso and around the legs. Pixels without a reading
    keep theirs. The reverse, with `cfg.relabel_fill`: a background pixel next to a drawn
    confident point (within `cfg.relabel_max_px`) whose reading lies within `relabel_fill`
    metres of that point's depth takes its label, the nearest person pixel's id and score 0.5
    (a limb the view's mask missed and the other views saw).

    Scores, person ids and keypoints are otherwise kept; `probs` is dropped (it would contradict
    the new labels) and fine labels whose parent part changed become 0 (none).
    xyz float [N, 3], labels int [N] of the fused (kept) points; confident: bool [N], the points
    whose labels may be taken (None = all; every point counts for the silhouette).
    """
    person = parse.labels > 0
    if len(xyz) == 0 or not person.any():
        return replace(parse, probs=None)
    xyz = np.asarray(xyz, np.float32)
    vis, flat = visible_in_view(xyz, cam, cfg.visibility_tolerance, depth, cfg.splat_radius_px, cfg.occlusion_gap)
    h, w = cam.height, cam.width
    check_behind = depth is not None and cfg.relabel_behind > 0 and vis.any()
    fill = depth is not None and cfg.relabel_fill > 0
    pad = max(int(cfg.relabel_max_px), int(cfg.relabel_search_px) if check_behind else 0)
    seen = vis if confident is None else vis & np.asarray(confident, bool)
    drawn = np.full(h * w, -1, np.int16)
    drawn[flat[seen]] = np.asarray(labels, np.int16)[seen]
    region = person | (drawn.reshape(h, w) > 0) if fill else person
    y0, y1, x0, x1 = mask_box(region, pad)  # type: ignore[misc]  # person has a pixel
    box = (slice(y0, y1), slice(x0, x1))
    old = parse.labels[box]
    new = old.copy()
    sub = drawn.reshape(h, w)[box]
    if fill or check_behind:  # each point's depth along this camera's axis, and the view's readings
        zcam = to_camera(xyz, cam)[:, 2]
        d = np.asarray(depth, np.float32)[box]
    added = np.zeros(old.shape, bool)
    if (sub > 0).any():
        dist, nearest = nearest_source(sub > 0)
        near = np.where(dist <= cfg.relabel_max_px, sub.reshape(-1)[nearest], 0).astype(np.int16)
        take = (old > 0) & (near > 0)
        if fill:  # background pixels whose depth reading lies on the surface of the point they see
            zd = np.zeros(h * w, np.float32)
            zd[flat[seen]] = zcam[seen]
            zn = zd.reshape(h, w)[box].reshape(-1)[nearest].reshape(old.shape)
            with np.errstate(invalid="ignore"):
                added = (old == 0) & (near > 0) & (np.abs(d - zn) <= cfg.relabel_fill)
            take |= added
        new[take] = near[take]
    behind = np.zeros(old.shape, bool)
    if check_behind:
        import cv2

        z = np.zeros(h * w, np.float32)
        z[flat[vis]] = zcam[vis]
        # the farthest seen point within the search window: a pixel of the body, even one the points
        # miss next to a nearer limb, is not behind all of them
        r = int(cfg.relabel_search_px)
        far = cv2.dilate(np.ascontiguousarray(z.reshape(h, w)[box]), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
        with np.errstate(invalid="ignore"):  # NaN: no reading
            behind = (old > 0) & (far > 0) & np.isfinite(d) & (d > far + cfg.relabel_behind)
        new[behind] = 0
    changed = new != old
    if not changed.any():
        return replace(parse, probs=None)
    new_labels = parse.labels.copy()
    new_labels[box] = new
    fine = parse.fine_labels
    if fine is not None:
        fine = fine.copy()
        f = fine[box]
        f[changed & (_FINE_PARENT[np.clip(f, 0, len(_FINE_PARENT) - 1)] != new)] = 0
    ids, scores = parse.person_ids, parse.scores
    if behind.any() or added.any():
        ids, scores = ids.copy(), scores.copy()
        ids[box][behind], scores[box][behind] = -1, 0.5
    if added.any():
        win = ids[box]
        if (win >= 0).any():  # an added pixel belongs to the nearest person pixel
            win[added] = win.reshape(-1)[nearest_source(win >= 0)[1].reshape(win.shape)[added]]
        scores[box][added] = 0.5
    return replace(parse, labels=new_labels, person_ids=ids, scores=scores, probs=None, fine_labels=fine)

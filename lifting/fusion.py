"""Visibility-aware multi-view label fusion onto 3D points.

Every view that sees a point (z-buffer test) adds its per-pixel class probabilities at the
point's pixel, weighted by the parse confidence and the viewing angle; the fused label is the
argmax and its confidence the weighted mean probability of that class. Points no view sees take
the majority label of their seen neighbours with confidence 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from lifting.config import LiftingConfig
from lifting.geometry import visible_in_view
from lifting.sources import Points
from openhuman.ontology import LR_SWAP, NUM_CLASSES
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
    """uint8 [N, 3] weighted mean colour over the views that see the point."""
    seen: np.ndarray
    """bool [N] whether any view saw the point."""
    visibility_tests: int
    """Number of point-view visibility tests run."""


def _view_votes(parse: PartParse, pix: np.ndarray, swap_person: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities float32 [n, C] and parse confidence float32 [n] at flat pixels `pix`.

    swap_person: bool [n] rows whose left/right channels are swapped (mirrored view), or None.
    """
    labels = parse.labels.ravel()[pix].astype(np.int64)
    if parse.probs is not None:
        C = parse.probs.shape[0]
        probs = parse.probs.reshape(C, -1)[:, pix].T.astype(np.float32)
        if C < NUM_CLASSES:
            probs = np.pad(probs, ((0, 0), (0, NUM_CLASSES - C)))
        probs = probs[:, :NUM_CLASSES]
    else:
        probs = np.zeros((len(pix), NUM_CLASSES), np.float32)
        probs[np.arange(len(pix)), np.clip(labels, 0, NUM_CLASSES - 1)] = 1.0
    if swap_person is not None and swap_person.any():
        probs[swap_person] = probs[swap_person][:, LR_SWAP]
    conf = np.where(labels > 0, parse.scores.ravel()[pix], BACKGROUND_WEIGHT).astype(np.float32)
    return probs, conf


def _angle_weight(xyz: np.ndarray, normals: np.ndarray | None, cam: CameraView, min_cos: float) -> np.ndarray:
    """cos between the outward normal (or direction from the body centre) and the ray back to the camera."""
    if normals is None:
        n = xyz - xyz.mean(0)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    else:
        n = normals
    ray = cam.center[None, :] - xyz
    ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-9)
    return np.clip(np.sum(n * ray, axis=1), min_cos, 1.0).astype(np.float32)


def _majority_ids(point_idx: np.ndarray, ids: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """int32 [n]: per point, the id with the largest summed weight (-1 where none)."""
    out = np.full(n, -1, np.int32)
    if len(point_idx) == 0:
        return out
    base = int(ids.max()) + 1
    key = point_idx.astype(np.int64) * base + ids
    uniq, inv = np.unique(key, return_inverse=True)
    w = np.bincount(inv, weights=weights)
    pts, pid = uniq // base, uniq % base
    order = np.lexsort((-w, pts))
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
    mirrored: dict[str, np.ndarray] | None = None,
) -> Fused:
    """Fuse the views' part probabilities onto `points`.

    mirrored: view id -> int array of person ids whose left/right channels to swap in that view
    (from the 3D skeleton check), or None.
    """
    xyz = points.xyz.astype(np.float64)
    N = len(xyz)
    acc = np.zeros((N, NUM_CLASSES), np.float32)
    wsum = np.zeros(N, np.float32)
    rgb_acc = np.zeros((N, 3), np.float32)
    tid_pts, tid_ids, tid_w = [], [], []
    for vid, parse in parses.items():
        cam = cameras[vid]
        depth = None if depths is None else depths.get(vid)
        vis, flat = visible_in_view(xyz, cam, cfg.visibility_tolerance, depth, cfg.splat_radius_px, cfg.occlusion_gap)
        idx = np.nonzero(vis)[0]
        pix = flat[idx]
        pids = parse.person_ids.ravel()[pix].astype(np.int64)
        swap = None
        if mirrored is not None and vid in mirrored and len(mirrored[vid]):
            swap = np.isin(pids, mirrored[vid])
        probs, conf = _view_votes(parse, pix, swap)
        normals = None if points.normals is None else points.normals[idx]
        w = conf * _angle_weight(xyz[idx], normals, cam, cfg.min_view_cos) if len(idx) else conf
        acc[idx] += probs * w[:, None]
        wsum[idx] += w
        if frames is not None and vid in frames:
            rgb_acc[idx] += frames[vid].rgb.reshape(-1, 3)[pix].astype(np.float32) * w[:, None]
        has_id = pids >= 0
        tid_pts.append(idx[has_id])
        tid_ids.append(pids[has_id])
        tid_w.append(w[has_id])
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
    labels = np.argmax(acc, axis=1).astype(np.int16)
    conf = np.zeros(N, np.float32)
    conf[seen] = acc[seen, labels[seen]] / np.maximum(acc[seen].sum(1), 1e-12)
    rgb = np.full((N, 3), 160, np.uint8)
    rgb[seen] = np.clip(np.rint(rgb_acc[seen] / wsum[seen, None]), 0, 255).astype(np.uint8)
    if points.rgb is not None:
        rgb[~seen] = points.rgb[~seen]
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
    """Majority label (and nearest track id) of the k nearest seen points, for unseen points."""
    from scipy.spatial import cKDTree

    src = np.nonzero(seen)[0]
    dst = np.nonzero(~seen)[0]
    k = min(k, len(src))
    _, nn = cKDTree(xyz[src]).query(xyz[dst], k=k, workers=-1)
    nn = np.asarray(nn).reshape(len(dst), k)
    votes = np.zeros((len(dst), NUM_CLASSES), np.int32)
    np.add.at(votes, (np.repeat(np.arange(len(dst)), k), labels[src][nn].ravel()), 1)
    labels = labels.copy()
    track = track.copy()
    labels[dst] = np.argmax(votes, axis=1)
    track[dst] = track[src][nn[:, 0]]
    return labels, track

"""3D keypoints by DLT triangulation with RANSAC over views, and left/right checks per view.

A parser that mistakes the person's left for right in one view (typical for back views) gives
landmarks and part labels that are mirrored together. Triangulating each landmark from the views
that agree (RANSAC over view pairs) gives a 3D skeleton the mirrored view disagrees with: its 2D
left wrist lies nearer the projection of the 3D right wrist. Such a view's left/right part
channels are swapped before label fusion, so its evidence is corrected rather than averaged away.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from lifting.geometry import pixel_rays, project_points
from openhuman.ontology import LANDMARK_ID, POSE_LANDMARKS
from openhuman.types import CameraView

log = logging.getLogger(__name__)

# (left landmark index, right landmark index) pairs of mediapipe's 33 landmarks.
LR_LANDMARK_PAIRS = np.array(
    [(i, LANDMARK_ID["right_" + n[5:]]) for i, n in enumerate(POSE_LANDMARKS) if n.startswith("left_")], dtype=np.int64
)
LR_LANDMARK_SWAP = np.arange(len(POSE_LANDMARKS))
LR_LANDMARK_SWAP[LR_LANDMARK_PAIRS[:, 0]] = LR_LANDMARK_PAIRS[:, 1]
LR_LANDMARK_SWAP[LR_LANDMARK_PAIRS[:, 1]] = LR_LANDMARK_PAIRS[:, 0]


def _normalised(kps: np.ndarray, cams: list[CameraView], min_vis: float) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [V, J, 3] (px, py, vis) -> normalised coordinates [V, J, 2] and validity [V, J]."""
    V, J = kps.shape[:2]
    xy = np.zeros((V, J, 2))
    valid = np.isfinite(kps).all(-1) & (kps[..., 2] >= min_vis)
    for v, cam in enumerate(cams):
        xy[v] = pixel_rays(cam, np.nan_to_num(kps[v, :, :2]))
    return xy, valid


def _dlt(P: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted DLT, batched. P [V, 3, 4], xy [B, V, 2], w [B, V] -> X float64 [B, 3]."""
    rows_x = xy[..., 0:1] * P[None, :, 2] - P[None, :, 0]  # [B, V, 4]
    rows_y = xy[..., 1:2] * P[None, :, 2] - P[None, :, 1]
    A = np.concatenate([rows_x * w[..., None], rows_y * w[..., None]], axis=1)  # [B, 2V, 4]
    # the right singular vector of A's smallest singular value is the eigenvector of A^T A's
    # smallest eigenvalue: eigh on 4x4 matrices takes half the time of SVD on [2V, 4] ones
    _, vecs = np.linalg.eigh(np.einsum("bri,brj->bij", A, A))
    X = vecs[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return X[:, :3] / X[:, 3:4]


def _reproject(P: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P [V, 3, 4], X [..., 3] -> normalised xy [..., V, 2], depth [..., V]."""
    Xh = np.concatenate([X, np.ones(X.shape[:-1] + (1,))], -1)
    x = np.einsum("vij,...j->...vi", P, Xh)
    z = x[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return x[..., :2] / z[..., None], z


def triangulate_ransac(
    kps: np.ndarray, cams: list[CameraView], min_vis: float = 0.5, threshold_px: float = 20.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate landmarks seen in several views, robust to views that disagree.

    kps: float [V, J, 3] per view (x_px, y_px, visibility). Every pair of views proposes a 3D
    point per landmark; the proposal with most views within `threshold_px` wins and is refit by
    DLT on its inliers. Returns (X float64 [J, 3], ok bool [J], inliers bool [V, J]).
    """
    kps = np.asarray(kps, np.float64)
    V, J = kps.shape[:2]
    xy, valid = _normalised(kps, cams, min_vis)
    P = np.stack([c.cam_from_world[:3] for c in cams])
    thr = threshold_px / np.array([c.K[0, 0] for c in cams])[:, None]  # [V, 1] normalised units
    best_n = np.zeros(J, int)
    best_err = np.full(J, np.inf)
    best_inl = np.zeros((V, J), bool)
    for a, b in itertools.combinations(range(V), 2):
        both = valid[a] & valid[b]
        if not both.any():
            continue
        w = np.zeros((J, V))
        w[:, [a, b]] = 1.0
        X = _dlt(P, np.transpose(xy, (1, 0, 2)), w)  # [J, 3]
        proj, z = _reproject(P, X)  # [J, V, 2], [J, V]
        err = np.linalg.norm(proj - np.transpose(xy, (1, 0, 2)), axis=-1).T  # [V, J]
        inl = valid & (z.T > 0) & (err < thr) & both[None]
        n = inl.sum(0)
        tot = np.where(inl, err, 0).sum(0)
        better = (n > best_n) | ((n == best_n) & (n > 0) & (tot < best_err))
        best_n = np.where(better, n, best_n)
        best_err = np.where(better, tot, best_err)
        best_inl[:, better] = inl[:, better]
    ok = best_n >= 2
    X = _dlt(P, np.transpose(xy, (1, 0, 2)), best_inl.T.astype(np.float64))
    X[~ok] = np.nan
    return X, ok, best_inl


def _robust_costs(xy: np.ndarray, valid: np.ndarray, P: np.ndarray, f: np.ndarray, threshold_px: float) -> np.ndarray:
    """Truncated squared reprojection error (in units of threshold_px^2) of each trial's landmarks
    after DLT on all views and one refit on the inliers, all trials in one batch.

    xy: float64 [T, V, J, 2] normalised coordinates; valid: bool [T, V, J]; P: [V, 3, 4] camera
    matrices; f: [V] focal lengths in pixels. Returns float64 [T].
    """
    T, V, J = valid.shape
    xyT = xy.transpose(0, 2, 1, 3).reshape(T * J, V, 2)
    w = valid.transpose(0, 2, 1).reshape(T * J, V).astype(np.float64)
    usable = w.sum(1) >= 2
    if not usable.any():
        return np.zeros(T)
    for _ in range(2):
        X = _dlt(P, xyT[usable], w[usable])
        proj, _ = _reproject(P, X)
        err = np.zeros_like(w)
        err[usable] = np.nan_to_num(np.linalg.norm(proj - xyT[usable], axis=-1), nan=1e9) * f
        inl = (err < threshold_px) & (w > 0)
        refit = usable & (inl.sum(1) >= 2)
        w = np.where(refit[:, None], inl, w).astype(np.float64)
    e = np.minimum(err, threshold_px) / threshold_px
    seen = valid.transpose(0, 2, 1).reshape(T * J, V) & usable[:, None]
    return np.where(seen, e * e, 0.0).reshape(T, J * V).sum(1)


def mirrored_views(
    kps: np.ndarray, cams: list[CameraView], min_vis: float = 0.5, threshold_px: float = 20.0
) -> np.ndarray:
    """bool [V]: views whose 2D left/right landmarks are mirrored relative to the 3D skeleton.

    kps: float [V, 33, 3] one person's landmarks per view. Sets of fewer than half of the views
    are tried as "mirrored": their landmarks are swapped left/right, the skeleton is triangulated
    from all views, and the set with the lowest truncated reprojection error wins if it beats
    "none mirrored" by 0.3 (a third of one landmark off by the threshold). (Mirroring every view
    is indistinguishable from mirroring none, hence the minority rule.) Needs at least 3 views;
    fewer give all False. Up to 10 views every such set is tried (385 at 10 views, scored in one
    batch). With more, the search starts from the views that fit a RANSAC skeleton better swapped
    (`_disagreeing_views`) and then adds or drops one view at a time while that lowers the error.
    """
    kps = np.asarray(kps, np.float64)
    V = kps.shape[0]
    out = np.zeros(V, bool)
    if V < 3:
        return out
    max_k = (V - 1) // 2
    # swapping left and right commutes with normalising: normalise once, then swap per trial
    xy, valid = _normalised(kps, cams, min_vis)
    P = np.stack([c.cam_from_world[:3] for c in cams])
    f = np.array([c.K[0, 0] for c in cams])

    def costs(trials: list[tuple[int, ...]]) -> np.ndarray:
        xys, valids = np.repeat(xy[None], len(trials), 0), np.repeat(valid[None], len(trials), 0)
        for t, subset in enumerate(trials):
            views = list(subset)
            xys[t, views] = xy[views][:, LR_LANDMARK_SWAP]
            valids[t, views] = valid[views][:, LR_LANDMARK_SWAP]
        return _robust_costs(xys, valids, P, f, threshold_px)

    if V <= 10:
        trials = [()] + [c for k in range(1, max_k + 1) for c in itertools.combinations(range(V), k)]
        cost = costs(trials)
        base, i = cost[0], int(np.argmin(cost[1:])) + 1
        best_set, best = trials[i], cost[i]
    else:
        best_set = tuple(sorted(_disagreeing_views(kps, valid, cams, min_vis, threshold_px)[:max_k]))
        base, best = costs([(), best_set])
        for _ in range(V):  # each round adds or drops one view
            trials = [tuple(sorted(set(best_set) ^ {v})) for v in range(V)]
            trials = [t for t in trials if len(t) <= max_k]
            cost = costs(trials)
            i = int(np.argmin(cost))
            if cost[i] >= best - 1e-9:
                break
            best_set, best = trials[i], cost[i]
    if best_set and base - best >= 0.3:
        out[list(best_set)] = True
        log.debug("left/right mirrored in views %s; their left/right labels are swapped", sorted(best_set))
    return out


def _disagreeing_views(
    kps: np.ndarray, valid: np.ndarray, cams: list[CameraView], min_vis: float, threshold_px: float
) -> tuple[int, ...]:
    """Views whose landmarks, swapped left/right, fit the RANSAC skeleton (`triangulate_ransac`:
    each landmark from the views that agree) better by 0.3 of the truncated error unit, the
    largest gain first. A minority of mirrored views cannot outvote the others there. valid:
    bool [V, J] the landmarks `_normalised` keeps."""
    X, ok, _ = triangulate_ransac(kps, cams, min_vis, threshold_px)
    j = np.flatnonzero(ok & (np.arange(len(LR_LANDMARK_SWAP)) != LR_LANDMARK_SWAP))  # sided landmarks
    if not len(j):
        return ()
    proj = np.stack([project_points(X[j], cam)[0] for cam in cams])  # [V, len(j), 2]
    both = valid[:, j] & valid[:, LR_LANDMARK_SWAP[j]]

    def cost(idx: np.ndarray) -> np.ndarray:  # [V] truncated squared error of landmarks idx at proj
        e = np.minimum(np.linalg.norm(np.nan_to_num(kps[:, idx, :2]) - proj, axis=-1), threshold_px) / threshold_px
        return np.where(both, e * e, 0.0).sum(1)

    gains = cost(j) - cost(LR_LANDMARK_SWAP[j])
    return tuple(int(v) for v in np.argsort(gains)[::-1] if gains[v] >= 0.3)

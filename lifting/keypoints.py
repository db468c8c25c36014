"""3D keypoints by DLT triangulation with RANSAC over views, and left/right checks per view.

A parser that mistakes the person's left for right in one view (typical for back views) gives
landmarks and part labels that are mirrored together. Triangulating each landmark from the views
that agree (RANSAC over view pairs) gives a 3D skeleton the mirrored view disagrees with: its 2D
left wrist lies nearer the projection of the 3D right wrist. Such a view's left/right part
channels are swapped before label fusion, so its evidence is corrected rather than averaged away.

Parsers also swap one limb pair alone (the legs where they cross in a side view), so the check
runs per limb group (`LIMB_LANDMARKS`: arms, legs). When exactly half of the views disagree
(two of four), geometry cannot say which half is mirrored: both give a consistent skeleton, one
the mirror image of the other. The person's own left (`body_left`, from landmarks that do not
depend on left/right: nose, the midpoints of shoulders, hips, heels and toes) then decides: the
left limbs must lie on the body's left. Otherwise the majority of views decides, frame by frame.
"""

from __future__ import annotations

import itertools
import logging
import warnings

import numpy as np

from lifting.geometry import pixel_rays, project_points
from openhuman.ontology import BODY14, LANDMARK_ID, LR_SWAP, NUM_CLASSES, PART_ID, POSE_LANDMARKS
from openhuman.types import CameraView

log = logging.getLogger(__name__)

# (left landmark index, right landmark index) pairs of mediapipe's 33 landmarks.
LR_LANDMARK_PAIRS = np.array(
    [(i, LANDMARK_ID["right_" + n[5:]]) for i, n in enumerate(POSE_LANDMARKS) if n.startswith("left_")], dtype=np.int64
)
LR_LANDMARK_SWAP = np.arange(len(POSE_LANDMARKS))
LR_LANDMARK_SWAP[LR_LANDMARK_PAIRS[:, 0]] = LR_LANDMARK_PAIRS[:, 1]
LR_LANDMARK_SWAP[LR_LANDMARK_PAIRS[:, 1]] = LR_LANDMARK_PAIRS[:, 0]


def _sides(*names: str) -> np.ndarray:
    """Landmark ids of the left then the right `names`."""
    return np.array([LANDMARK_ID[f"{side}_{n}"] for side in ("left", "right") for n in names], np.int64)


LIMB_LANDMARKS: dict[str, np.ndarray] = {
    "arms": _sides("shoulder", "elbow", "wrist", "pinky", "index", "thumb"),
    "legs": _sides("hip", "knee", "ankle", "heel", "foot_index"),
}
"""Landmarks of each limb group whose left/right is checked on its own (left ones first)."""


def other_side(n: int) -> np.ndarray:
    """int [2n] each landmark's other side in a limb group laid out as n left ones, then their n
    right ones (`LIMB_LANDMARKS`)."""
    return np.r_[np.arange(n, 2 * n), np.arange(n)]


def _part_swap(*parts: str) -> np.ndarray:
    perm = np.arange(NUM_CLASSES)
    for part in parts:
        left, right = BODY14.index("left " + part), BODY14.index("right " + part)
        perm[left], perm[right] = right, left
    return perm


LIMB_SWAP: dict[str, np.ndarray] = {
    "arms": _part_swap("upper arm", "forearm", "hand"),
    "legs": _part_swap("thigh", "shin", "foot"),
}
"""body14 channel permutation that swaps each limb group's left and right parts."""
MIN_SIDE_M = 0.04
"""A tie between two halves of the views is settled only when each half, on its own, puts the
left landmarks at least this far (metres, on average) to the body's left: crossed legs, say,
leave no side to go by."""


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
    kps: np.ndarray,
    cams: list[CameraView],
    min_vis: float = 0.5,
    threshold_px: float = 20.0,
    joints: np.ndarray | None = None,
    left_dir: np.ndarray | None = None,
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

    joints: the landmarks to check (a `LIMB_LANDMARKS` group: left ones, then their right ones);
    None = all 33. left_dir: float [3] the person's own left (`body_left`); with it, sets of
    exactly half of the views are tried too. When such a set wins, each half is triangulated on
    its own (the set swapped, the others as they are) and the set is taken as mirrored when both
    put the left landmarks on the body's left, its complement when both put them on the right;
    when they disagree, or one puts the sides less than `MIN_SIDE_M` apart, nothing is flagged.
    """
    kps = np.asarray(kps, np.float64)
    V = kps.shape[0]
    out = np.zeros(V, bool)
    if V < 3:
        return out
    swap = LR_LANDMARK_SWAP
    if joints is not None:
        kps, swap = kps[:, joints], other_side(len(joints) // 2)
    halves = left_dir is not None and V % 2 == 0
    max_k = V // 2 if halves else (V - 1) // 2
    # swapping left and right commutes with normalising: normalise once, then swap per trial
    xy, valid = _normalised(kps, cams, min_vis)
    P = np.stack([c.cam_from_world[:3] for c in cams])
    f = np.array([c.K[0, 0] for c in cams])

    def swapped(trials: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
        xys, valids = np.repeat(xy[None], len(trials), 0), np.repeat(valid[None], len(trials), 0)
        for t, subset in enumerate(trials):
            views = list(subset)
            xys[t, views] = xy[views][:, swap]
            valids[t, views] = valid[views][:, swap]
        return xys, valids

    def costs(trials: list[tuple[int, ...]]) -> np.ndarray:
        return _robust_costs(*swapped(trials), P, f, threshold_px)

    if V <= 10:
        # a half and its complement are the same skeleton mirrored: try the halves with view 0
        trials = [()] + [
            c for k in range(1, max_k + 1) for c in itertools.combinations(range(V), k) if 2 * k < V or 0 in c
        ]
        cost = costs(trials)
        base, i = cost[0], int(np.argmin(cost[1:])) + 1
        best_set, best = trials[i], cost[i]
    else:
        best_set = tuple(sorted(_disagreeing_views(kps, valid, cams, min_vis, threshold_px, swap)[:max_k]))
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
        if 2 * len(best_set) == V:
            assert left_dir is not None
            # each half on its own (the set swapped, the rest as they are) must put the same side left
            xys, valids = swapped([best_set])
            n_side = len(swap) // 2 if joints is not None else None
            sides = []
            for part in (list(best_set), [v for v in range(V) if v not in best_set]):
                keep = np.zeros(V, bool)
                keep[part] = True
                sides.append(_left_side(xys, valids & keep[None, :, None], P, left_dir, n_side))
            if sides[0] * sides[1] <= 0 or min(abs(sides[0]), abs(sides[1])) < MIN_SIDE_M:
                return out
            if sides[0] < 0:
                best_set = tuple(v for v in range(V) if v not in best_set)
        out[list(best_set)] = True
        log.debug("left/right mirrored in views %s; their left/right labels are swapped", sorted(best_set))
    return out


def _left_side(xy: np.ndarray, valid: np.ndarray, P: np.ndarray, left_dir: np.ndarray, n: int | None) -> float:
    """Mean of (left landmark - right landmark) . left_dir over the pairs triangulated from one
    trial (xy [1, V, J, 2], valid [1, V, J]): > 0 when the left landmarks lie on the body's left;
    0 when no pair is seen in two views. n: the first n landmarks are the left ones, the next n
    their right ones (None: the 33 pose landmarks)."""
    w = valid[0].T.astype(np.float64)  # [J, V]
    X = _dlt(P, xy[0].transpose(1, 0, 2), w)
    left, right = (np.arange(n), np.arange(n, 2 * n)) if n is not None else LR_LANDMARK_PAIRS.T
    ok = (w[left].sum(1) >= 2) & (w[right].sum(1) >= 2)
    if not ok.any():
        return 0.0
    return float(np.mean((X[left[ok]] - X[right[ok]]) @ left_dir))


def body_left(kps: np.ndarray, cams: list[CameraView], min_vis: float = 0.5) -> np.ndarray | None:
    """float64 [3] unit vector to the person's own left, from landmarks that do not change when a
    view swaps left and right: the nose and, per view, the midpoints of the shoulders, hips, heels
    and toes, triangulated. Up runs from the hips' midpoint to the shoulders'; forward is where the
    nose lies in front of the shoulders plus the direction from heels to toes (each made
    perpendicular to up, and each counted only when at least 3 cm long); left = up x forward.
    None when up or both forward cues are missing."""
    kps = np.asarray(kps, np.float64)

    def mid(name: str) -> np.ndarray:
        a, b = kps[:, LANDMARK_ID["left_" + name]], kps[:, LANDMARK_ID["right_" + name]]
        return np.concatenate([(a[:, :2] + b[:, :2]) / 2, np.minimum(a[:, 2:], b[:, 2:])], 1)

    cues = np.stack([kps[:, LANDMARK_ID["nose"]], mid("shoulder"), mid("hip"), mid("heel"), mid("foot_index")], 1)
    xy, valid = _normalised(cues, cams, min_vis)
    P = np.stack([c.cam_from_world[:3] for c in cams])
    X = _dlt(P, xy.transpose(1, 0, 2), valid.T.astype(np.float64))
    ok = valid.sum(0) >= 2
    if not (ok[1] and ok[2]):
        return None
    up = X[1] - X[2]  # shoulders - hips
    up /= max(float(np.linalg.norm(up)), 1e-9)
    forward = np.zeros(3)
    for tip, base in ((0, 1), (4, 3)):  # nose in front of the shoulders, toes in front of the heels
        if ok[tip] and ok[base]:
            d = X[tip] - X[base]
            d -= up * (d @ up)
            if np.linalg.norm(d) >= 0.03:
                forward += d / np.linalg.norm(d)
    if np.linalg.norm(forward) < 1e-6:
        return None
    left = np.cross(up, forward)
    return left / max(float(np.linalg.norm(left)), 1e-9)


def _disagreeing_views(
    kps: np.ndarray, valid: np.ndarray, cams: list[CameraView], min_vis: float, threshold_px: float, swap: np.ndarray
) -> tuple[int, ...]:
    """Views whose landmarks, swapped left/right, fit the RANSAC skeleton (`triangulate_ransac`:
    each landmark from the views that agree) better by 0.3 of the truncated error unit, the
    largest gain first. A minority of mirrored views cannot outvote the others there. valid:
    bool [V, J] the landmarks `_normalised` keeps; swap: int [J] each landmark's other side."""
    X, ok, _ = triangulate_ransac(kps, cams, min_vis, threshold_px)
    j = np.flatnonzero(ok & (np.arange(len(swap)) != swap))  # sided landmarks
    if not len(j):
        return ()
    proj = np.stack([project_points(X[j], cam)[0] for cam in cams])  # [V, len(j), 2]
    both = valid[:, j] & valid[:, swap[j]]

    def cost(idx: np.ndarray) -> np.ndarray:  # [V] truncated squared error of landmarks idx at proj
        e = np.minimum(np.linalg.norm(np.nan_to_num(kps[:, idx, :2]) - proj, axis=-1), threshold_px) / threshold_px
        return np.where(both, e * e, 0.0).sum(1)

    gains = cost(j) - cost(swap[j])
    return tuple(int(v) for v in np.argsort(gains)[::-1] if gains[v] >= 0.3)


_CAPSULE_BONES = np.array(
    [
        (LANDMARK_ID[a], LANDMARK_ID[b])
        for a, b in (
            ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("left_wrist", "left_index"),
            ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("right_wrist", "right_index"),
            ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_foot_index"),
            ("left_heel", "left_foot_index"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
            ("right_ankle", "right_foot_index"), ("right_heel", "right_foot_index"),
            ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
            ("right_shoulder", "right_hip"), ("left_shoulder", "right_hip"), ("right_shoulder", "left_hip"),
            ("left_ear", "right_ear"), ("nose", "left_ear"), ("nose", "right_ear"),
        )
    ],
    dtype=np.int64,
)  # fmt: skip
"""Landmark pairs whose capsules cover the body: limbs, hands and feet, the torso's outline and
both diagonals (its front and back lie within half its depth of them), and the head."""


_CAPSULE_PARTS = np.array(
    [PART_ID[p] for p in (
        "left upper arm", "left forearm", "left hand", "right upper arm", "right forearm", "right hand",
        "left thigh", "left shin", "left foot", "left foot", "right thigh", "right shin", "right foot", "right foot",
        "torso", "torso", "torso", "torso", "torso", "torso", "head", "head", "head",
    )],
    dtype=np.int64,
)  # fmt: skip
"""body14 id of each `_CAPSULE_BONES` bone's body part."""


def capsule_parts(start: np.ndarray, kps: np.ndarray, cams: list[CameraView], min_vis: float = 0.5) -> np.ndarray:
    """int64 [B] body14 part of each bone of a triangulated skeleton (`skeleton_capsules`' start
    points [B, 3]), its sides swapped when the bones named left lie on the person's right
    (`body_left`: most views mirrored the landmarks' sides); as named when that is unknown."""
    left = body_left(kps, cams, min_vis)
    if left is None:
        return _CAPSULE_PARTS.copy()
    # start points of the left/right upper arms (shoulders) and thighs (hips)
    shoulders, hips = start[0] - start[3], start[6] - start[10]
    return LR_SWAP[_CAPSULE_PARTS].astype(np.int64) if float((shoulders + hips) @ left) < 0 else _CAPSULE_PARTS.copy()


def _bone_distances2(
    xyz: np.ndarray, start: np.ndarray, end: np.ndarray, dtype: type[np.floating] = np.float32
) -> np.ndarray:
    """[N, B] squared distance of each point xyz [N, 3] to each bone axis, the segment start
    [B, 3] -> end [B, 3], every point against every bone at once (one matrix product), in `dtype`."""
    A: np.ndarray = np.asarray(start, dtype)
    AB = np.asarray(end, dtype) - A
    origin = A.mean(0)  # distances from differences of squares: keep the numbers small
    P, A = np.asarray(xyz, dtype) - origin, A - origin
    # u = (p - a).ab, t = clip(u / |ab|^2), and d^2 = |p - a|^2 - 2 t u + t^2 |ab|^2
    ab2 = np.maximum((AB * AB).sum(1), 1e-12)
    u = P @ AB.T
    u -= (A * AB).sum(1)
    d2 = P @ (-2.0 * A.T)
    d2 += (A * A).sum(1)
    d2 += (P * P).sum(1)[:, None]  # |p - a|^2
    t = np.clip(u / ab2, 0.0, 1.0)
    w = t * ab2
    w -= u
    w -= u
    w *= t
    d2 += w
    return d2


def nearest_bone_parts(
    xyz: np.ndarray, skeletons: list[tuple[np.ndarray, np.ndarray, np.ndarray]], max_distance: float = 0.25
) -> np.ndarray:
    """int16 [N]: for points xyz [N, 3], the body part of the nearest bone axis over all skeletons
    (start [B, 3], end [B, 3], part [B]); 0 for points farther than `max_distance` metres from
    every bone."""
    out = np.zeros(len(xyz), np.int16)
    if not skeletons or not len(xyz):
        return out
    d2 = _bone_distances2(xyz, np.concatenate([s[0] for s in skeletons]), np.concatenate([s[1] for s in skeletons]))
    parts = np.concatenate([s[2] for s in skeletons])
    best = np.argmin(d2, axis=1)
    near = d2[np.arange(len(d2)), best] <= max_distance**2
    out[near] = parts[best[near]]
    return out


def skeleton_capsules(
    kps: np.ndarray,
    cams: list[CameraView],
    masks: list[np.ndarray],
    min_vis: float = 0.5,
    threshold_px: float = 20.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Capsules around one person's bones, for cutting a visual hull down to the body.

    kps: float [V, 33, 3] the person's landmarks in each view; masks: bool [H, W] the person's
    silhouette in each view. The bones (`_CAPSULE_BONES`) are triangulated (`triangulate_ransac`).
    A limb seen from any side projects to a band as wide as the limb, so each bone's half-width
    is measured in every view: the silhouette's distance transform at 7 points along the middle
    of the projected bone, in pixels times depth over focal length, median over the points. The
    bone's radius is the median over the views (a view where another part hides the bone measures
    more, one whose mask misses it measures nothing and is left out).

    Returns (start [B, 3], end [B, 3], radius [B]) in metres, or None when a landmark of some
    bone could not be triangulated or no view measured some bone (then nothing may be cut).
    """
    import cv2

    X, ok, _ = triangulate_ransac(kps, cams, min_vis, threshold_px)
    if not ok[_CAPSULE_BONES].all():
        return None
    A, B = X[_CAPSULE_BONES[:, 0]], X[_CAPSULE_BONES[:, 1]]
    t = np.linspace(0.2, 0.8, 7)
    samples = (A[:, None] + t[None, :, None] * (B - A)[:, None]).reshape(-1, 3)
    widths = np.full((len(cams), len(A), len(t)), np.nan)
    for v, (cam, mask) in enumerate(zip(cams, masks, strict=True)):
        dt = cv2.distanceTransform(np.asarray(mask, np.uint8), cv2.DIST_L2, 5)
        uv, z = project_points(samples, cam)
        col, row = np.round(uv[:, 0]), np.round(uv[:, 1])
        inside = (z > 0) & (col >= 0) & (col < dt.shape[1]) & (row >= 0) & (row < dt.shape[0])
        w = np.full(len(samples), np.nan)
        w[inside] = dt[row[inside].astype(int), col[inside].astype(int)] * z[inside] / cam.K[0, 0]
        w[w <= 0] = np.nan  # off the silhouette: this view says nothing
        widths[v] = w.reshape(len(A), len(t))
    if np.isnan(widths).all((0, 2)).any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a view with no reading along a bone
        return A, B, np.nanmedian(np.nanmedian(widths, axis=2), axis=0)


def in_capsules(xyz: np.ndarray, capsules: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """bool [N]: points xyz [N, 3] within any capsule (start [B, 3], end [B, 3], radius [B])."""
    if not capsules or not len(xyz):
        return np.zeros(len(xyz), bool)
    start, end = np.concatenate([c[0] for c in capsules]), np.concatenate([c[1] for c in capsules])
    d2 = _bone_distances2(xyz, start, end, np.float64)  # float32 moves voxels on a capsule's edge
    radius = np.concatenate([c[2] for c in capsules]).astype(np.float64)
    return (d2 <= radius * radius).any(1)

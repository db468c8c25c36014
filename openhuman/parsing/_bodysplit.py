"""Split a person mask into body14 parts by landmark geometry (pure numpy, vectorised).

Every part is a small skeleton (line segments or a polygon) built from mediapipe's 33 pose
landmarks. On a coarse pixel grid, part k scores

    S_k(p) = -(d_k(p) / r_k)^2 + b_k

where d_k is the distance from pixel p to the part's skeleton, r_k a width prior scaled by body
size (torso length), and b_k a bias from the part type (limbs lie in front of the torso), the
landmarks' visibility (occluded limbs lose) and their depth (nearer limbs win overlaps). A softmax
over the 14 parts gives per-pixel part probabilities given "person"; the caller multiplies them by
the person-segmentation probability. "left" is always the person's own left, as in mediapipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# mediapipe pose landmark ids (see openhuman.ontology.POSE_LANDMARKS)
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, MOUTH_L, MOUTH_R = 0, 2, 5, 7, 8, 9, 10
L_SH, R_SH, L_EL, R_EL, L_WR, R_WR = 11, 12, 13, 14, 15, 16
L_PINKY, R_PINKY, L_INDEX, R_INDEX = 17, 18, 19, 20
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK = 23, 24, 25, 26, 27, 28
L_HEEL, R_HEEL, L_FOOT, R_FOOT = 29, 30, 31, 32
FACE_IDS = tuple(range(11))

NUM_PARTS = 14
"""Channels of the part split: index k holds body14 id k + 1."""

# Width priors as a fraction of the torso length (mid-shoulder to mid-hip), per body14 id 0..14,
# and part-type biases (limbs usually lie in front of the torso where both are possible). Tuned by
# coordinate descent on synthetic clips walk/kick/punch/spin (tools/bench_parse.py evaluates on
# other clips): body14 mIoU 0.578 -> 0.652 on the tuning frames. Tuned again (s20) once the person
# mask was refined and carved, replaying cached video-mode parses of the same four clips (4 views x
# 40 frames, left and right tied): 0.698 -> 0.708; on run, jump, dance_a, dance_b, spinkick and
# cartwheel 0.629 -> 0.635, every clip higher.
RADIUS = np.array([0.0, 0.255, 0.112, 0.103, 0.103, 0.089, 0.089, 0.086, 0.086, 0.133, 0.133, 0.13, 0.13, 0.108, 0.108])
BIAS = np.array([0.0, 0.25, -0.08, 0.35, 0.35, 0.57, 0.57, 0.6, 0.6, 0.5, 0.5, 0.45, 0.45, 0.25, 0.25])
DEPTH_WEIGHT = 0.0
"""Bias change per torso length of depth difference to the torso (nearer = larger). mediapipe's
landmark depth proved too noisy to help on the synthetic captures, so it is off by default."""
TEMPERATURE = 1.0
HIP_DROP = 0.0
"""The torso polygon's lower edge sits this many torso lengths below the hip joints (pelvis)."""
THIGH_START = 0.1
"""The thigh's bone starts this fraction of the way from hip to knee."""


@dataclass(frozen=True)
class PoseLandmarks:
    """One person's pose landmarks in image pixels."""

    xy: np.ndarray
    """float32 [33, 2] (x, y) pixels."""
    z: np.ndarray
    """float32 [33] depth relative to the hips, pixels (smaller = nearer the camera)."""
    vis: np.ndarray
    """float32 [33] visibility in [0, 1]."""


@dataclass(frozen=True)
class Refinements:
    """Optional detections that replace the landmark-only guess of a part."""

    hands: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    """(left, right) hand landmarks float32 [21, 2] pixels from mediapipe Hands, or None."""
    head: tuple[float, float, float] | None = None
    """Face box from face detection: (centre x, centre y, half size) in pixels, or None."""


def body_scale(lm: PoseLandmarks) -> float:
    """Torso length in pixels (mid-shoulder to mid-hip), floored by shoulder width and head size."""
    xy = lm.xy
    mid_sh = (xy[L_SH] + xy[R_SH]) / 2
    mid_hip = (xy[L_HIP] + xy[R_HIP]) / 2
    torso = float(np.linalg.norm(mid_sh - mid_hip))
    shoulders = float(np.linalg.norm(xy[L_SH] - xy[R_SH]))
    ears = float(np.linalg.norm(xy[L_EAR] - xy[R_EAR]))
    return max(torso, 1.1 * shoulders, 2.5 * ears, 4.0)


def _up_vector(lm: PoseLandmarks) -> np.ndarray:
    xy = lm.xy
    v = (xy[L_SH] + xy[R_SH]) / 2 - (xy[L_HIP] + xy[R_HIP]) / 2
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-6 else np.array([0.0, -1.0])


def _seg_dist(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from grid points to segment a-b. px: [1, w], py: [h, 1] -> float32 [h, w]."""
    ab = b - a
    denom = float(ab @ ab)
    dx, dy = px - a[0], py - a[1]
    if denom < 1e-9:
        return np.sqrt(dx * dx + dy * dy)
    t = np.clip((dx * ab[0] + dy * ab[1]) / denom, 0.0, 1.0)
    ex, ey = dx - t * ab[0], dy - t * ab[1]
    return np.sqrt(ex * ex + ey * ey)


def _poly_dist(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance from grid points to a filled polygon (0 inside). poly: float [P, 2] grid coords."""
    import cv2

    h, w = py.shape[0], px.shape[1]
    d = np.min([_seg_dist(px, py, poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly))], axis=0)
    inside = np.zeros((h, w), np.uint8)
    pts = np.round(poly * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(inside, [pts], (1,), lineType=cv2.LINE_8, shift=4)
    d[inside.astype(bool)] = 0.0
    return d


def _head_skeleton(lm: PoseLandmarks, scale: float, head: tuple[float, float, float] | None):
    """Head segment (chin -> crown) and radius, in pixels."""
    xy, vis = lm.xy, lm.vis
    up = _up_vector(lm)
    if head is not None:
        cx, cy, half = head
        centre = np.array([cx, cy])
        r = max(half * 1.05, 0.12 * scale)
        return centre - up * 0.25 * r, centre + up * 0.55 * r, r
    face = xy[list(FACE_IDS)]
    weights = np.maximum(vis[list(FACE_IDS)], 0.05)[:, None]
    centre = (face * weights).sum(0) / weights.sum()
    ear_w = float(np.linalg.norm(xy[L_EAR] - xy[R_EAR]))
    r = max(0.62 * ear_w, RADIUS[1] * scale * 0.75)
    return centre - up * 0.35 * r, centre + up * 0.55 * r, r


def _hand_shapes(lm: PoseLandmarks, side: int, hand: np.ndarray | None, scale: float):
    """(segments, polygon or None, radius) of one hand. side 0 = left, 1 = right."""
    xy = lm.xy
    wrist = xy[L_WR + side]
    if hand is not None:
        palm = hand[[0, 1, 5, 9, 13, 17]]
        segs = [(hand[i], hand[i + 1]) for f in range(5) for i in range(1 + 4 * f, 4 + 4 * f)]
        segs.append((wrist, hand[0]))
        size = float(np.linalg.norm(hand[0] - hand[9]))
        return segs, palm, max(0.28 * size, 1.0)
    knuckles = (xy[L_INDEX + side] + xy[L_PINKY + side]) / 2
    tip = wrist + 1.35 * (knuckles - wrist)
    return [(wrist, tip)], None, RADIUS[7] * scale


def part_skeletons(lm: PoseLandmarks, scale: float, ref: Refinements) -> list[tuple[list, np.ndarray | None, float]]:
    """Per body14 id 1..14: (segments [(a, b)], polygon float[P, 2] or None, radius) in pixels."""
    xy = lm.xy
    h0, h1, rh = _head_skeleton(lm, scale, ref.head)
    out: list[tuple[list, np.ndarray | None, float]] = [([(h0, h1)], None, rh)]
    drop = -_up_vector(lm) * HIP_DROP * scale
    torso = np.stack([xy[L_SH], xy[R_SH], xy[R_HIP] + drop, xy[L_HIP] + drop])
    out.append(([], torso, RADIUS[2] * scale))
    for side in (0, 1):
        out.append(([(xy[L_SH + side], xy[L_EL + side])], None, RADIUS[3] * scale))
    for side in (0, 1):
        out.append(([(xy[L_EL + side], xy[L_WR + side])], None, RADIUS[5] * scale))
    for side in (0, 1):
        out.append(_hand_shapes(lm, side, ref.hands[side], scale))
    for side in (0, 1):
        hip, knee = xy[L_HIP + side], xy[L_KNEE + side]
        out.append(([(hip + THIGH_START * (knee - hip), knee)], None, RADIUS[9] * scale))
    for side in (0, 1):
        out.append(([(xy[L_KNEE + side], xy[L_ANK + side])], None, RADIUS[11] * scale))
    for side in (0, 1):
        foot = xy[[L_ANK + side, L_HEEL + side, L_FOOT + side]]
        out.append(([(foot[0], foot[2])], foot, RADIUS[13] * scale))
    return out


_BONES = (
    (L_SH, L_EL), (L_EL, L_WR), (R_SH, R_EL), (R_EL, R_WR), (L_WR, L_INDEX), (R_WR, R_INDEX),
    (L_HIP, L_KNEE), (L_KNEE, L_ANK), (R_HIP, R_KNEE), (R_KNEE, R_ANK), (L_ANK, L_FOOT), (R_ANK, R_FOOT),
    (L_SH, R_SH), (L_HIP, R_HIP),
)  # fmt: skip
BONE_WIDTH = 0.06
"""`core_mask`: width of the drawn bones as a fraction of the torso length."""


def core_mask(people: list[PoseLandmarks], window: tuple[int, int, int, int]) -> np.ndarray:
    """bool [y1 - y0, x1 - x0] over window (y0, y1, x0, x1): pixels that lie on the people's
    skeletons (limb bones `BONE_WIDTH` torso lengths wide, the spine, the middle half of the torso
    and a disc at the nose), which are the person whatever the colours around them say."""
    import cv2

    y0, y1, x0, x1 = window
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    limit = 4.0 * max(out.shape)  # far-off landmarks are clipped: cv2 draws in int32 pixels
    for lm in people:
        scale = body_scale(lm)
        xy = np.clip(lm.xy.astype(np.float64) - (x0, y0), -limit, limit)
        pt = lambda p: (int(round(p[0])), int(round(p[1])))  # noqa: E731
        width = max(2, int(round(BONE_WIDTH * scale)))
        for a, b in _BONES:
            cv2.line(out, pt(xy[a]), pt(xy[b]), (1,), width)
        cv2.line(out, pt((xy[L_SH] + xy[R_SH]) / 2), pt((xy[L_HIP] + xy[R_HIP]) / 2), (1,), width)
        quad = xy[[L_SH, R_SH, R_HIP, L_HIP]]
        quad = quad.mean(0) + 0.5 * (quad - quad.mean(0))
        cv2.fillPoly(out, [np.round(quad).astype(np.int32)], (1,))
        cv2.circle(out, pt(xy[NOSE]), max(2, int(round(0.18 * scale))), (1,), -1)
    return out.astype(bool)


# landmarks whose visibility / depth describe each part (body14 id 1..14)
_PART_LANDMARKS: tuple[tuple[int, ...], ...] = (
    (NOSE, L_EYE, R_EYE, L_EAR, R_EAR), (L_SH, R_SH, L_HIP, R_HIP),
    (L_SH, L_EL), (R_SH, R_EL), (L_EL, L_WR), (R_EL, R_WR), (L_WR, L_INDEX, L_PINKY), (R_WR, R_INDEX, R_PINKY),
    (L_HIP, L_KNEE), (R_HIP, R_KNEE), (L_KNEE, L_ANK), (R_KNEE, R_ANK), (L_ANK, L_HEEL, L_FOOT), (R_ANK, R_HEEL, R_FOOT),
)  # fmt: skip


def part_biases(lm: PoseLandmarks, scale: float, ref: Refinements) -> np.ndarray:
    """float64 [14] score bias per part: type prior + visibility + depth order."""
    bias = BIAS[1:].copy()
    z_torso = float(np.mean(lm.z[[L_SH, R_SH, L_HIP, R_HIP]]))
    for k, ids in enumerate(_PART_LANDMARKS):
        idx = list(ids)
        vis = float(np.max(lm.vis[idx])) if k == 0 else float(np.min(lm.vis[idx[:2]]))
        if k in (6, 7) and ref.hands[k - 6] is not None:
            vis = 1.0
        if k == 0 and ref.head is not None:
            vis = 1.0
        bias[k] += np.log(0.3 + 0.7 * vis)
        if k not in (0, 1):
            dz = (float(np.mean(lm.z[idx[:2]])) - z_torso) / scale
            bias[k] -= DEPTH_WEIGHT * float(np.clip(dz, -0.5, 0.5))
    return bias


def split_parts(
    lm: PoseLandmarks,
    grid_hw: tuple[int, int],
    image_hw: tuple[int, int],
    ref: Refinements | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Part probabilities given "person" on a coarse grid.

    Args:
        lm: landmarks in image pixels.
        grid_hw: (h, w) of the output grid; it covers `region` (default the whole image).
        image_hw: (H, W) of the image the landmarks refer to.
        ref: optional hand/face refinements.
        region: (x0, y0, x1, y1) image pixels the grid covers (x1, y1 exclusive).

    Returns:
        float32 [14, h, w], channel k = body14 id k + 1, summing to 1 over channels.
    """
    ref = ref or Refinements()
    h, w = grid_hw
    x0, y0, x1, y1 = region if region is not None else (0, 0, image_hw[1], image_hw[0])
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    to_grid = np.array([sx, sy])
    origin = np.array([x0, y0], np.float64)

    def g(p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, np.float64) - origin + 0.5) * to_grid - 0.5

    scale = body_scale(lm)
    px = np.arange(w, dtype=np.float32)[None, :]
    py = np.arange(h, dtype=np.float32)[:, None]
    grid_scale = (sx + sy) / 2
    scores = np.empty((NUM_PARTS, h, w), np.float32)
    biases = part_biases(lm, scale, ref)
    for k, (segs, poly, radius) in enumerate(part_skeletons(lm, scale, ref)):
        dists = [_seg_dist(px, py, g(a), g(b)) for a, b in segs]
        if poly is not None:
            dists.append(_poly_dist(px, py, g(poly)))
        d = dists[0] if len(dists) == 1 else np.minimum.reduce(dists)
        r = max(radius * grid_scale, 0.5)
        scores[k] = biases[k] - (d / r) ** 2
    scores /= TEMPERATURE
    scores -= scores.max(axis=0, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=0, keepdims=True)
    return scores

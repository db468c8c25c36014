"""Finer child parts (fingers, eyes, nose, mouth) drawn from hand and face-mesh landmarks.

Ids follow `openhuman.ontology.FINE_PARTS`; fine parts are only written inside their body14
parent (fingers inside the matching hand, face parts inside the head).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from openhuman.ontology import FINE_PARTS

_FINE_ID = {name: i for i, (name, _parent) in enumerate(FINE_PARTS)}
_FINGERS = ("thumb", "index finger", "middle finger", "ring finger", "little finger")


def _seg_dist(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    denom = float(ab @ ab) + 1e-9
    dx, dy = xs - a[0], ys - a[1]
    t = np.clip((dx * ab[0] + dy * ab[1]) / denom, 0.0, 1.0)
    return np.hypot(dx - t * ab[0], dy - t * ab[1])


def draw_fingers(fine: np.ndarray, labels: np.ndarray, hand: np.ndarray, side: str) -> None:
    """Write finger ids into `fine` (int16 [H, W], in place) for one hand.

    hand: float32 [21, 2] mediapipe hand landmarks in pixels; side: "left" or "right" (the
    person's own side). Pixels of the hand label nearer a finger's bones than the palm become
    that finger.
    """
    hand_id = 7 if side == "left" else 8
    size = float(np.linalg.norm(hand[0] - hand[9])) + 1.0
    x0, y0 = np.floor(hand.min(0) - size).astype(int)
    x1, y1 = np.ceil(hand.max(0) + size).astype(int)
    h, w = labels.shape
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dists = []
    for f in range(5):
        chain = hand[1 + 4 * f : 5 + 4 * f]
        dists.append(np.min([_seg_dist(xs, ys, chain[i], chain[i + 1]) for i in range(len(chain) - 1)], axis=0))
    palm = hand[[0, 1, 5, 9, 13, 17]]
    palm_c = palm.mean(0)
    d_palm = np.hypot(xs - palm_c[0], ys - palm_c[1]) - 0.45 * size
    stack = np.stack(dists)
    nearest = stack.argmin(0)
    dmin = stack.min(0)
    is_finger = (dmin < 0.3 * size) & (dmin < d_palm) & (labels[y0:y1, x0:x1] == hand_id)
    ids = np.array([_FINE_ID[f"{side} {name}"] for name in _FINGERS], np.int16)
    region = fine[y0:y1, x0:x1]
    region[is_finger] = ids[nearest[is_finger]]


@lru_cache(maxsize=1)
def _face_index_sets() -> dict[str, np.ndarray]:
    from openhuman.parsing._mp_runtime import _mp

    fm = _mp().solutions.face_mesh

    def idx(edges: frozenset) -> np.ndarray:
        return np.array(sorted({i for e in edges for i in e}), np.int64)

    # mediapipe's LEFT_EYE is the subject's own left eye.
    return {
        "left eye": idx(fm.FACEMESH_LEFT_EYE),
        "right eye": idx(fm.FACEMESH_RIGHT_EYE),
        "nose": idx(fm.FACEMESH_NOSE),
        "mouth": idx(fm.FACEMESH_LIPS),
    }


def draw_face_parts(fine: np.ndarray, labels: np.ndarray, mesh: np.ndarray) -> None:
    """Write eye/nose/mouth ids into `fine` (in place) from face-mesh landmarks float32 [468, 2]."""
    import cv2

    layer = np.zeros(labels.shape, np.int16)
    for name, ids in _face_index_sets().items():
        hull = cv2.convexHull(np.round(mesh[ids] * 16).astype(np.int32))
        cv2.fillConvexPoly(layer, hull, (int(_FINE_ID[name]),), lineType=cv2.LINE_8, shift=4)
    keep = (layer > 0) & (labels == 1)
    fine[keep] = layer[keep]

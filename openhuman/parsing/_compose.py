"""Pure-numpy composition of the mediapipe parse: person region, people merge, full resolution.

The landmark geometry (`_bodysplit`) runs on a coarse grid over the person's bounding box; these
helpers pick that box, merge several people by pixel ownership and bring the grid probabilities
back to image resolution as float16 probabilities, labels and scores.
"""

from __future__ import annotations

import numpy as np

from openhuman.arrays import guided_mask, mask_box, to_float16

PERSON_MIN_PROB = 0.02
"""Person probabilities below this count as 0 (outside the region every pixel is background)."""


def person_region(p: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of person probability >= PERSON_MIN_PROB, padded; None if empty."""
    box = mask_box(p >= PERSON_MIN_PROB, max(2, int(0.01 * max(p.shape))))
    if box is None:
        return None
    y0, y1, x0, x1 = box
    return x0, y0, x1, y1


def refine_person(p: np.ndarray, rgb: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Person probability float32 [H, W] aligned to the image's colour edges (`guided_mask`).

    mediapipe's segmentation comes from a 256x256 network output, upsampled: its silhouette is
    soft and a few pixels off. The guided filter snaps it to colour edges where the image has them;
    where it has none (a person against a background of the same colour), the mask is only
    smoothed over about `radius` pixels, which leaves a straight boundary where it was. Only the
    box around the pixels with probability >= PERSON_MIN_PROB is touched; the result is clipped
    to [0, 1]. rgb: uint8 [H, W, 3] guide.
    """
    fitted = guided_mask(p, rgb, radius, eps, threshold=PERSON_MIN_PROB)
    if fitted is None:
        return p
    q, (y0, y1, x0, x1) = fitted
    out = np.array(p, dtype=np.float32, copy=True)
    out[y0:y1, x0:x1] = np.clip(q, 0.0, 1.0)
    return out


def merge_people(parts: list[np.ndarray], owner: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Part probabilities [14, h, w] on the grid taken from each pixel's owner (most likely person)."""
    import cv2

    own = cv2.resize(owner.astype(np.uint8), (grid[1], grid[0]), interpolation=cv2.INTER_NEAREST)
    out = parts[0].copy()
    for i in range(1, len(parts)):
        sel = own == i
        out[:, sel] = parts[i][:, sel]
    return out


def full_resolution(q: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upsample grid part probabilities and combine them with the person probability.

    Args:
        q: float32 [14, h, w] P(part | person) on the grid.
        p: float32 [H, W] person probability.

    Returns:
        probs float16 [15, H, W] (channel 0 = 1 - p), labels int16 [H, W], scores float32 [H, W].
        Labels take the part argmax at half resolution (nearest-upsampled; boundaries between
        parts are at most 2 px coarse) and background wherever it is the most likely class.
    """
    import cv2

    H, W = p.shape
    k = q.shape[0]
    up = np.empty((k, H, W), np.float32)
    for c in range(k):
        cv2.resize(q[c], (W, H), dst=up[c], interpolation=cv2.INTER_LINEAR)
    qmax = up.max(0)
    half = (max(W // 2, 1), max(H // 2, 1))
    qh = np.stack([cv2.resize(q[c], half, interpolation=cv2.INTER_LINEAR) for c in range(k)])
    # argmax over channels as a max over (quantised value, channel) keys: much faster than argmax(0)
    keys = (qh * 65536.0).astype(np.int32)
    keys <<= 4
    keys |= np.arange(k, dtype=np.int32)[:, None, None]
    part = cv2.resize((keys.max(0) & 15).astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST)
    up *= p[None]
    probs = np.empty((k + 1, H, W), np.float16)
    to_float16(up, probs[1:])
    bg = 1.0 - p
    to_float16(bg, probs[0])
    best = qmax * p
    labels = part.astype(np.int16)
    labels += 1
    labels[best <= bg] = 0
    scores = np.maximum(best, bg).astype(np.float32, copy=False)
    return probs, labels, scores


def grid_shape(h: int, w: int, long_side: int) -> tuple[int, int]:
    s = min(1.0, long_side / max(h, w))
    return max(int(round(h * s)), 1), max(int(round(w * s)), 1)

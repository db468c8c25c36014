"""Pure-numpy composition of the mediapipe parse: person region, people merge, full resolution.

The landmark geometry (`_bodysplit`) runs on a coarse grid over the person's bounding box; these
helpers pick that box, merge several people by pixel ownership and bring the grid probabilities
back to image resolution as float16 probabilities, labels and scores.
"""

from __future__ import annotations

from collections.abc import Callable

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


CARVE_RING = (3, 20)
"""`carve_background`: the background sample is the band this many pixels (from, to) outside the
person mask."""
CARVE_BINS = 16
"""`carve_background`: colour histogram bins per RGB channel."""


def carve_background(
    p: np.ndarray,
    rgb: np.ndarray,
    core: Callable[[tuple[int, int, int, int]], np.ndarray],
    threshold: float,
    min_share: float,
) -> np.ndarray:
    """Person probability float32 [H, W] with background-coloured regions inside the mask set to 0.

    mediapipe's mask is blobby: it fills the gaps between an arm and the torso, or between the
    legs, with the scene behind them, and the guided filter cannot open a gap wider than its
    radius. Here each pixel of the mask (p >= 0.5) gets P(background | colour) from two colour
    histograms (`CARVE_BINS` per channel, equal priors): one of the band `CARVE_RING` pixels
    outside the mask (the scene around the person), one of the mask itself. Connected regions of
    pixels with P >= `threshold` that cover at least `min_share` of the mask are removed, except
    on the skeleton: core(window) gives the bool [h, w] pixels over window (y0, y1, x0, x1) that
    are the person anyway (`_bodysplit.core_mask`); they are left out of the regions first. Small regions stay: on
    real photos they are more often clothing that shares a colour with the scene than background.
    rgb: uint8 [H, W, 3]. Inputs are not modified; unchanged outputs are the input itself.
    """
    import cv2

    near, far = CARVE_RING
    box = mask_box(p >= 0.5, far + 1)
    if box is None:
        return p
    y0, y1, x0, x1 = box
    inside = p[y0:y1, x0:x1] >= 0.5
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    ring = (dist > near) & (dist <= far)
    n_ring, n_in = int(ring.sum()), int(inside.sum())
    if n_ring < 50 or n_in < 50:
        return p
    q = rgb[y0:y1, x0:x1] // (256 // CARVE_BINS)
    idx = (q[..., 0].astype(np.int32) * CARVE_BINS + q[..., 1]) * CARVE_BINS + q[..., 2]
    h_bg = np.bincount(idx[ring], minlength=CARVE_BINS**3) / n_ring
    h_fg = np.bincount(idx[inside], minlength=CARVE_BINS**3) / n_in
    p_bg = h_bg / np.maximum(h_bg + h_fg, 1e-12)
    cand = inside & (p_bg[idx] >= threshold)
    if cand.sum() < min_share * n_in:
        return p
    cand &= ~core(box)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= min_share * n_in
    big[0] = False
    if not big[1:].any():
        return p
    out = np.array(p, dtype=np.float32, copy=True)
    out[y0:y1, x0:x1][big[comp]] = 0.0
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

"""Small array helpers shared by the stages.

- Fast float16 <-> float32 conversion (OpenCV's is ~10x faster than numpy's `astype` here). Part
  probabilities travel as float16 [C, H, W] to halve their memory; every stage that does
  arithmetic on them converts a window to float32 and back, so the conversion is on the hot path.
- `mask_box`: the (padded) bounding box of a mask's true pixels.
- `guided_mask`: a soft mask fitted to an image's colour edges in the padded box around it.
- `nearest_source`: for every pixel, the nearest pixel of a mask (fills that copy a label,
  id or score from the nearest labelled pixel).
"""

from __future__ import annotations

import numpy as np


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a


def to_float32(a: np.ndarray) -> np.ndarray:
    """float32 copy of a float16 array (any shape)."""
    import cv2

    if a.dtype != np.float16:
        return np.asarray(a, dtype=np.float32)
    if a.size == 0:
        return a.astype(np.float32)
    return np.asarray(cv2.convertFp16(_as_2d(a).view(np.int16))).reshape(a.shape)


def to_float16(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float16 version of a float32 array (any shape), written into `out` when given."""
    import cv2

    src = np.asarray(a, dtype=np.float32)
    if out is None:
        out = np.empty(src.shape, np.float16)
    if src.size == 0:
        return out
    if out.flags.c_contiguous:  # convert straight into `out` when OpenCV accepts it as dst
        res = cv2.convertFp16(_as_2d(src), dst=out.reshape(-1, out.shape[-1]).view(np.int16))
        if np.shares_memory(res, out):
            return out
    res = np.asarray(cv2.convertFp16(_as_2d(src))).view(np.float16).reshape(src.shape)
    out[...] = res
    return out


def mask_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), end-exclusive, of the true pixels of bool [H, W], padded by `margin` pixels
    on every side and clipped to the image; None when there are none."""
    rows = np.flatnonzero(mask.any(1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask.any(0))
    h, w = mask.shape
    return (
        max(0, int(rows[0]) - margin),
        min(h, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin),
        min(w, int(cols[-1]) + 1 + margin),
    )


def guided_mask(
    mask: np.ndarray, rgb: np.ndarray, radius: int, eps: float, threshold: float = 0.5
) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A mask [H, W] (bool or float in [0, 1]) fitted to the colour edges of rgb uint8 [H, W, 3]:
    (float32 [h, w] unclipped, (y0, y1, x0, x1) its window), or None when no pixel reaches
    `threshold` or radius <= 0.

    A colour-guided filter (He, Sun and Tang, "Guided Image Filtering", 2010; OpenCV's ximgproc)
    makes the mask a local linear function of the image within `radius` pixels: boundaries snap to
    colour edges where the image has them and are only smoothed where it has none. eps:
    regularisation in (intensity / 255)^2 units (smaller follows edges more closely). Only the
    window around the pixels with mask >= `threshold`, padded by 2 x radius + 2, is filtered.
    """
    import cv2

    box = mask_box(mask >= threshold, 2 * radius + 2) if radius > 0 else None
    if box is None:
        return None
    y0, y1, x0, x1 = box
    guide = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    src = np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=np.float32)
    return cv2.ximgproc.guidedFilter(guide, src, int(radius), eps * 255.0**2), box


def nearest_source(source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of bool [h, w] `source` (at least one true): (distance float32 [h, w] in
    pixels to the nearest true pixel, flat index int [h, w] of that pixel in `source`).

    OpenCV's distance transform with pixel labels (5x5 mask: within about 2 % of the Euclidean
    distance; among nearly equidistant pixels it may pick another one than an exact transform).
    About 3x faster than scipy's exact `distance_transform_edt` with indices on a person window.
    """
    import cv2

    dist, label = cv2.distanceTransformWithLabels(
        (~source).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # labels count the source pixels in raster order, from 1
    return dist, np.flatnonzero(source)[label - 1]


def present_ids(person_ids: np.ndarray) -> list[int]:
    """The ids >= 0 in a person-id map (one comparison per possible id: ids are small, and
    np.unique sorts the whole map, 36 ms at 640x480)."""
    top = int(person_ids.max()) if person_ids.size else -1
    if top > 64:
        present = np.flatnonzero(np.bincount(person_ids.ravel().astype(np.intp) + 1)) - 1
        return present[present >= 0].tolist()  # type: ignore[no-any-return]
    return [i for i in range(top + 1) if (person_ids == i).any()]

"""Find and follow people too small for mediapipe Pose's full-frame detector.

Pose's person detector sees the whole frame at 224x224, so a person under ~80 px tall in a 640x480
frame is usually missed. When the full frame finds nobody, `ZoomSearch` runs Pose (static mode)
on four overlapping tiles of 60 % of the frame; once someone is found it follows them with a
square crop about 2.5x their height, and hands back to the full frame when they grow large.
Results are mapped back to full-frame pixels.
"""

from __future__ import annotations

import numpy as np

from openhuman.arrays import mask_box
from openhuman.parsing._bodysplit import PoseLandmarks
from openhuman.parsing._mp_runtime import PoseResult, PoseRunner

TILE_FRACTION = 0.6
LARGE_PERSON = 0.45
"""A person taller than this fraction of the frame goes back to full-frame detection."""


def _tiles(h: int, w: int) -> list[tuple[int, int, int, int]]:
    th, tw = int(h * TILE_FRACTION), int(w * TILE_FRACTION)
    return [(x, y, x + tw, y + th) for y in (0, h - th) for x in (0, w - tw)]


def _person_box(prob: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of person probability > 0.5, or None."""
    box = mask_box(prob > 0.5)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    return x0, y0, x1, y1


def _crop_around(box: tuple[int, int, int, int], h: int, w: int) -> tuple[int, int, int, int]:
    """Square crop ~2.5x the person's size, centred on them and shifted inside the image."""
    x0, y0, x1, y1 = box
    side = int(min(max(2.5 * max(x1 - x0, y1 - y0), 96), h, w))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = min(max(cx - side // 2, 0), w - side)
    top = min(max(cy - side // 2, 0), h - side)
    return left, top, left + side, top + side


class ZoomSearch:
    """Pose on crops for small people; one instance per view and person slot."""

    def __init__(self, min_detection: float, retry_every: int) -> None:
        self._runner: PoseRunner | None = None
        self._min_detection = min_detection
        self.retry_every = max(retry_every, 1)
        self.crop: tuple[int, int, int, int] | None = None
        """Crop (x0, y0, x1, y1) following a small person, None while searching."""

    @property
    def following(self) -> bool:
        return self.crop is not None

    def _run(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> PoseResult | None:
        if self._runner is None:
            self._runner = PoseRunner(True, self._min_detection, 0.5)
        x0, y0, x1, y1 = box
        res = self._runner(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        if res is None:
            return None
        lm = res.landmarks
        xy = lm.xy + np.array([x0, y0], np.float32)
        prob = np.zeros(rgb.shape[:2], np.float32)
        prob[y0:y1, x0:x1] = res.person_prob
        return PoseResult(PoseLandmarks(xy=xy, z=lm.z, vis=lm.vis), prob)

    def __call__(self, rgb: np.ndarray, frame_no: int) -> PoseResult | None:
        """Pose of a small person in `rgb` (uint8 [H, W, 3]), or None.

        While searching, the tiles are tried only every `retry_every`-th frame (`frame_no`).
        """
        h, w = rgb.shape[:2]
        res = None
        if self.crop is not None:
            res = self._run(rgb, self.crop)
        elif frame_no % self.retry_every == 0:
            for tile in _tiles(h, w):
                res = self._run(rgb, tile)
                if res is not None:
                    break
        box = _person_box(res.person_prob) if res is not None else None
        if res is None or box is None:
            self.crop = None
            return res
        large = (box[3] - box[1]) > LARGE_PERSON * h
        self.crop = None if large else _crop_around(box, h, w)
        return res

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

"""What the pipeline reads from: a capture directory, a plain video, an image folder or one image.

`open_source(path)` gives a `Source` with the same small interface for all four; only a capture
directory has cameras (so lifting), depth and ground truth.

`open_source(path, max_side=N)` shrinks frames whose longer side exceeds N pixels (OpenCV's area
filter, aspect kept) before anything else sees them: a 4K phone clip is parsed, tracked and
written at that working size. A capture's cameras are scaled with its frames (intrinsics about
pixel centres) and its depth maps and 2D ground truth resized (nearest), so lifting and scoring
agree with the frames.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from openhuman.capture import Capture
from openhuman.errors import InputError
from openhuman.types import CameraView, Frame
from openhuman.video import IMAGE_SUFFIXES, open_frames

log = logging.getLogger(__name__)

LARGE_SIDE = 2000
"""Frames longer than this (pixels) get a hint about `max_side` when it is off."""


@dataclass
class Source:
    path: Path
    view_ids: tuple[str, ...]
    fps: float
    frame_count: int | None
    """None when unknown in advance (image folders are counted; videos probed)."""
    capture: Capture | None = None
    """The opened capture for capture directories and plain videos."""
    max_side: int = 0
    """Frames whose longer side exceeds this many pixels are shrunk to it (0 = native size)."""
    _hinted: bool = field(default=False, init=False, repr=False)

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a frame of this size as the source gives it (after `max_side`)."""
        return working_size(width, height, self.max_side)

    @cached_property
    def cameras(self) -> dict[str, CameraView] | None:
        """The capture's cameras, scaled to the working size (None without a capture)."""
        if self.capture is None or self.capture.cameras is None:
            return None
        return {v: scale_camera(c, *self.working_size(c.width, c.height)) for v, c in self.capture.cameras.items()}

    def _fit(self, image: np.ndarray, interpolation: int) -> np.ndarray:
        """A view's depth or label image at the working size of its frames."""
        import cv2

        h, w = image.shape[:2]
        size = self.working_size(w, h)
        return image if size == (w, h) else cv2.resize(image, size, interpolation=interpolation)

    def _shrunk(self, frame: Frame) -> Frame:
        import cv2

        size = self.working_size(frame.width, frame.height)
        if size == (frame.width, frame.height):
            if not self._hinted and self.max_side == 0 and max(size) > LARGE_SIDE:
                self._hinted = True
                log.info("frames are %dx%d: --max-side 1280 (video.max_side) would work at a smaller size, "
                         "several times faster", *size)  # fmt: skip
            return frame
        return replace(frame, rgb=cv2.resize(frame.rgb, size, interpolation=cv2.INTER_AREA))

    @property
    def has_depth(self) -> bool:
        return self.capture is not None and self.capture.has_depth

    @property
    def has_gt_2d(self) -> bool:
        return self.capture is not None and self.capture.has_gt_2d

    @property
    def has_gt_3d(self) -> bool:
        return self.capture is not None and self.capture.has_gt_3d

    @property
    def is_single_image(self) -> bool:
        return self.path.is_file() and self.path.suffix.lower() in IMAGE_SUFFIXES

    def synced(
        self, start: int = 0, stride: int = 1, max_frames: int | None = None, photos: bool = False
    ) -> Iterator[list[Frame]]:
        """One frame per view per time step, streamed.

        An image folder is read as the frames of a video, which share one size (tracking and
        mediapipe's smoothing need it): InputError at the first image of another size. `photos`:
        unrelated photos, any sizes.
        """
        if self.capture is not None:
            for group in self.capture.synced(start, stride, max_frames):
                yield [self._shrunk(f) for f in group]
            return
        frames = open_frames(
            self.path, self.view_ids[0], start=start, stride=stride, max_frames=max_frames, same_size=not photos
        )
        for frame in frames:
            yield [self._shrunk(frame)]

    def depths(self, index: int) -> dict[str, np.ndarray]:
        """float32[H,W] metres per view (NaN = no reading), at the working size."""
        import cv2

        assert self.capture is not None
        return {v: self._fit(self.capture.depth(v, index), cv2.INTER_NEAREST) for v in self.view_ids}

    def gt_2d(self, view_id: str, index: int) -> np.ndarray:
        import cv2

        assert self.capture is not None
        return self._fit(self.capture.gt_2d(view_id, index), cv2.INTER_NEAREST)

    def gt_3d(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.capture is not None
        return self.capture.gt_3d(index)

    def gt_3d_with_ids(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        assert self.capture is not None
        return self.capture.gt_3d_with_ids(index)


def working_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) shrunk so the longer side is at most `max_side` (0 = unchanged), aspect kept."""
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def scale_camera(cam: CameraView, width: int, height: int) -> CameraView:
    """The camera for its images resized to width x height: focal lengths scale with the image,
    and the principal point with pixel centres ((x + 0.5) * s - 0.5); distortion and pose stay."""
    if (width, height) == (cam.width, cam.height):
        return cam
    sx, sy = width / cam.width, height / cam.height
    K = np.asarray(cam.K, np.float64).copy()
    K[0, :] *= sx
    K[1, :] *= sy
    K[0, 2] += 0.5 * sx - 0.5
    K[1, 2] += 0.5 * sy - 0.5
    return replace(cam, K=K, width=width, height=height)


def open_source(path: str | os.PathLike[str], max_side: int = 0) -> Source:
    """Open a capture directory, a video file, an image folder or a single image; frames longer
    than `max_side` pixels (0 = no limit) are shrunk to it (see the module docs)."""
    if max_side < 0:
        raise InputError(f"max_side must be >= 0 (0 = native size), got {max_side}")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: not found; give a capture directory, a video, an image folder or an image")
    if p.is_dir() and not (p / "capture.json").is_file():
        count = sum(1 for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if count == 0:
            raise InputError(f"{p}: a folder without capture.json and without images; nothing to parse")
        return Source(p, ("images",), 30.0, count, max_side=max_side)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        return Source(p, ("image",), 1.0, 1, max_side=max_side)
    cap = Capture.open(p)  # a capture directory or a plain video (one view, "video"), probed once
    return Source(p, cap.view_ids, cap.fps, cap.frame_count, cap, max_side)

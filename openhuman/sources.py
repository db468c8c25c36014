"""What the pipeline reads from: a capture directory, a plain video, an image folder or one image.

`open_source(path)` gives a `Source` with the same small interface for all four; only a capture
directory has cameras (so lifting), depth and ground truth.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openhuman.capture import Capture
from openhuman.errors import InputError
from openhuman.types import CameraView, Frame
from openhuman.video import IMAGE_SUFFIXES, open_frames


@dataclass
class Source:
    path: Path
    view_ids: tuple[str, ...]
    fps: float
    frame_count: int | None
    """None when unknown in advance (image folders are counted; videos probed)."""
    capture: Capture | None = None
    """The opened capture for capture directories and plain videos."""

    @property
    def cameras(self) -> dict[str, CameraView] | None:
        return self.capture.cameras if self.capture is not None else None

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
            yield from self.capture.synced(start, stride, max_frames)
            return
        frames = open_frames(
            self.path, self.view_ids[0], start=start, stride=stride, max_frames=max_frames, same_size=not photos
        )
        for frame in frames:
            yield [frame]

    def depths(self, index: int) -> dict[str, np.ndarray]:
        """float32[H,W] metres per view (NaN = no reading)."""
        assert self.capture is not None
        return {v: self.capture.depth(v, index) for v in self.view_ids}

    def gt_2d(self, view_id: str, index: int) -> np.ndarray:
        assert self.capture is not None
        return self.capture.gt_2d(view_id, index)

    def gt_3d(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.capture is not None
        return self.capture.gt_3d(index)

    def gt_3d_with_ids(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        assert self.capture is not None
        return self.capture.gt_3d_with_ids(index)


def open_source(path: str | os.PathLike[str]) -> Source:
    """Open a capture directory, a video file, an image folder or a single image."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: not found; give a capture directory, a video, an image folder or an image")
    if p.is_dir() and not (p / "capture.json").is_file():
        count = sum(1 for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if count == 0:
            raise InputError(f"{p}: a folder without capture.json and without images; nothing to parse")
        return Source(p, ("images",), 30.0, count)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        return Source(p, ("image",), 1.0, 1)
    cap = Capture.open(p)  # a capture directory or a plain video (one view, "video"), probed once
    return Source(p, cap.view_ids, cap.fps, cap.frame_count, cap)

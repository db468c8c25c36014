"""Temporal association configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrackingConfig:
    keyframe_interval: int = 1
    """Run the parser every k-th frame and propagate with optical flow in between (1 = every frame)."""
    flow: Literal["dis", "farneback"] = "dis"
    """Dense optical flow used for propagation."""
    smoothing: Literal["none", "ema", "window"] = "ema"
    """Temporal smoothing of per-pixel part probabilities, aligned by motion."""
    ema_alpha: float = 0.6
    """Weight of the current frame in exponential smoothing."""
    max_lost: int = 10
    """Patience: frames a person track may be unseen before it is removed."""
    min_hits: int = 2
    """Detections before a tentative track is confirmed."""

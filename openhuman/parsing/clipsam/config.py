"""Training-free CLIP+SAM backend configuration (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ClipSamConfig:
    sam_model: Literal["vit_b", "vit_l", "vit_h", "tiny"] = "vit_b"
    """segment_anything registry name ("tiny" builds a small random model for tests)."""
    sam_checkpoint: str | None = None
    """Path to SAM weights in the official .pth format."""
    clip_model: str = "ViT-B-16"
    """open_clip architecture name."""
    clip_checkpoint: str | None = None
    """Path to an open_clip checkpoint for `clip_model`."""
    attention: Literal["original", "vv", "qqkk", "trase"] = "trase"
    """Last-block attention for dense CLIP features (original, value-value, q-q+k-k, CLIPtrase)."""

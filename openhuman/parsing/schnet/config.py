"""SCHNet configuration (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from openhuman.ontology import BODY14


@dataclass
class SchnetConfig:
    size: Literal["tiny", "base"] = "base"
    """Model size: "tiny" (random-init test model) or "base" (SAM ViT-B + CLIP ViT-B/16)."""
    checkpoint: str | None = None
    """Trained SCHNet checkpoint (.pt written by `openhuman train`); needed for inference."""
    sam_checkpoint: str | None = None
    """SAM weights in the official .pth format (e.g. sam_vit_b_01ec64.pth), for training."""
    clip_checkpoint: str | None = None
    """open_clip checkpoint file for the CLIP image/text towers, for training."""
    vocabulary: list[str] = field(default_factory=lambda: list(BODY14[1:]))
    """Class names (background is added by the model); change at inference for new classes."""
    image_size: int = 512
    """Square input size the image is resized to."""

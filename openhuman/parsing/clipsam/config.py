"""Training-free CLIP+SAM backend configuration (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openhuman.errors import check_settings


@dataclass
class ClipSamConfig:
    sam_model: Literal["vit_b", "vit_l", "vit_h", "tiny"] = "vit_b"
    """segment_anything registry name ("tiny" builds a small random model for tests)."""
    sam_checkpoint: str | None = None
    """Path to SAM weights in the official .pth format."""
    clip_model: str = "ViT-B-16"
    """open_clip architecture name ("tiny" = a small test architecture registered on demand)."""
    clip_checkpoint: str | None = None
    """Path to an open_clip checkpoint for `clip_model`."""
    attention: Literal["original", "vv", "qqkk", "trase"] = "trase"
    """Last-block attention for dense CLIP features (original, value-value, q-q+k-k, CLIPtrase)."""
    allow_random_init: bool = False
    """Build models with random weights when a checkpoint path is not set (tests/benchmarks only;
    the output is meaningless). Off: a missing checkpoint is an error naming its config key."""
    prompts_file: str | None = None
    """YAML with prompt templates, per-part synonyms and the background set
    (None = the project's configs/prompts.yaml)."""
    trase_temperature: float = 0.07
    """Softmax temperature of the CLIPtrase-style recalibrated self-correlation (cosine / T)."""
    clip_short_side: int = 448
    """The image is resized so its short side has this many pixels before sliding-window CLIP."""
    window_overlap: float = 0.5
    """Fraction of overlap between neighbouring CLIP windows (0 = tiled, <1)."""
    logit_scale: float = 50.0
    """Multiplier of cosine similarities before the softmax over classes."""
    prior_weight: float = 1.0
    """Strength w of the landmark prior: p ~ clip * prior^w (0 = CLIP only, 1 = Bayes product)."""
    prior_confidence: float = 0.8
    """Probability the landmark prior gives to the part a SAM prompt was built for."""
    min_visibility: float = 0.5
    """Landmarks below this mediapipe visibility are not used for prompts."""
    person_threshold: float = 0.5
    """mediapipe segmentation probability above which a pixel belongs to the person."""
    auto_masks: bool = True
    """Run SamAutomaticMaskGenerator (points only in uncovered person pixels) where no part
    proposal covers the person."""
    auto_points_per_side: int = 8
    """Point grid of the automatic mask generator (points_per_side)."""
    auto_min_uncovered: float = 0.05
    """Run the automatic generator only if this fraction of the person mask is uncovered."""
    static_image_mode: bool = True
    """mediapipe pose: every frame independent (True) or video tracking mode (False)."""
    auto_pred_iou_thresh: float = 0.8
    """Automatic generator: minimum SAM predicted IoU of a mask."""
    auto_stability_thresh: float = 0.9
    """Automatic generator: minimum stability score of a mask."""

    def validate(self) -> None:
        """Raise InputError naming the `parser.clipsam.*` key of the first unusable value."""
        checks = [
            ("trase_temperature", self.trase_temperature > 0, "> 0"),
            ("clip_short_side", self.clip_short_side >= 16, ">= 16 pixels"),
            ("window_overlap", 0.0 <= self.window_overlap < 1.0, "in [0, 1)"),
            ("logit_scale", self.logit_scale > 0, "> 0"),
            ("prior_weight", self.prior_weight >= 0, ">= 0 (0 = CLIP only)"),
            ("prior_confidence", 1.0 / 15 <= self.prior_confidence <= 1.0, "in [1/15, 1]"),
            ("min_visibility", 0.0 <= self.min_visibility <= 1.0, "in [0, 1]"),
            ("person_threshold", 0.0 <= self.person_threshold < 1.0, "in [0, 1)"),
            ("auto_points_per_side", self.auto_points_per_side >= 1, ">= 1"),
            ("auto_min_uncovered", 0.0 <= self.auto_min_uncovered <= 1.0, "in [0, 1]"),
        ]
        check_settings("parser.clipsam", self, checks)

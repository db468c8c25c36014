"""Parser configuration: which backend, and each backend's settings (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from openhuman.parsing.clipsam.config import ClipSamConfig
from openhuman.parsing.schnet.config import SchnetConfig


@dataclass
class MediapipeConfig:
    static_image_mode: bool = False
    """True: every frame is an independent photo. False: video mode with landmark smoothing."""
    min_detection_confidence: float = 0.5
    """Pose detector threshold."""
    min_tracking_confidence: float = 0.5
    """Pose landmark tracking threshold (video mode)."""
    max_people: int = 1
    """Parse up to this many people per frame (>1 finds people first, then parses each crop)."""
    use_hands: bool = True
    """Refine hands with mediapipe Hands where it fires."""
    use_face: bool = True
    """Refine the head with face detection / face mesh where it fires."""
    fine_parts: bool = False
    """Also produce finer child parts (fingers, eyes, nose, mouth) in PartParse.fine_labels."""
    hands_retry_every: int = 5
    """Video mode: after a frame where Hands found no hand, try again only every n-th frame (its
    palm detector is the costliest step when no hand is visible). 1 = every frame."""
    fix_lr_flips: bool = True
    """Video mode: undo sudden left/right swaps of a limb pair against the previous frame, when the
    exchanged limbs also lie nearer where they were two frames back (Pose setting its own slip
    right is not undone: ten clips, parser alone, body14 mIoU 0.670 -> 0.681)."""
    fix_lr_max_frames: int = 6
    """Video mode: after this many frames in a row with a swap undone, take Pose's sides as given
    (0 = no limit). A swap that came while the limbs crossed unseen, and was then set right by
    Pose, looked sudden and was "undone" until the limbs crossed again. Ten clips, 4 views x 40
    frames: parser alone body14 mIoU 0.627 (no limit) -> 0.651 (6; 4: 0.642, 8: 0.649, 12: 0.640;
    repair off: 0.631), no clip lower; whole pipeline 2D 0.825 -> 0.834, 3D 0.814 -> 0.821."""
    zoom_small_people: bool = True
    """When Pose finds nobody in the full frame, search overlapping tiles for a small (far) person
    and follow them with a crop (person slot 0 only)."""
    zoom_retry_every: int = 10
    """Video mode: while nobody is found, search the tiles only every n-th frame (4 Pose runs)."""
    grid_size: int = 160
    """Long side (pixels) of the grid the landmark geometry is computed on before upsampling;
    larger gives finer part boundaries at some speed cost."""
    mask_refine_radius: int = 8
    """Radius (pixels) of the colour-guided filter that aligns mediapipe's soft, low-resolution
    person mask with the image's edges (0 = off)."""
    mask_refine_eps: float = 1e-3
    """Guided-filter regularisation in (intensity / 255)^2 units: smaller follows colour edges more
    closely."""
    mask_carve_threshold: float = 0.8
    """Before the guided filter, remove regions inside the person mask whose colour is at least
    this likely to be the scene around the person (0 = off): the gaps between arms and torso or
    between the legs that mediapipe's blobby mask fills (`_compose.carve_background`)."""
    mask_carve_min_share: float = 0.01
    """Smallest region `mask_carve_threshold` removes, as a share of the person mask."""

    def check(self) -> None:
        """Raise InputError naming the first setting outside its range (`MediapipeParser` calls it)."""
        from openhuman.errors import check_settings

        rules = [  # (key, ok, what it must be)
            ("min_detection_confidence", 0 <= self.min_detection_confidence <= 1, "in [0, 1]"),
            ("min_tracking_confidence", 0 <= self.min_tracking_confidence <= 1, "in [0, 1]"),
            ("max_people", self.max_people >= 1, ">= 1"),
            ("hands_retry_every", self.hands_retry_every >= 1, ">= 1 (1 = every frame)"),
            ("fix_lr_max_frames", self.fix_lr_max_frames >= 0, ">= 0 (0 = no limit)"),
            ("zoom_retry_every", self.zoom_retry_every >= 1, ">= 1 (1 = every frame)"),
            ("grid_size", self.grid_size >= 16, ">= 16"),
            ("mask_refine_radius", self.mask_refine_radius >= 0, ">= 0 (0 = off)"),
            ("mask_refine_eps", self.mask_refine_eps > 0, "> 0"),
            ("mask_carve_threshold", 0 <= self.mask_carve_threshold < 1, "in [0, 1) (0 = off)"),
            ("mask_carve_min_share", 0 < self.mask_carve_min_share <= 1, "in (0, 1]"),
        ]  # fmt: skip
        check_settings("parser.mediapipe", self, rules)


@dataclass
class ParserConfig:
    backend: Literal["mediapipe", "schnet", "clipsam"] = "mediapipe"
    """Which parser: the offline default (mediapipe) or a model loaded from local checkpoints."""
    device: str = "cpu"
    """torch device for the model backends ("cpu", "cuda")."""
    cpu_bf16: bool = False
    """Model backends on the CPU, where the CPU computes bfloat16 natively (AVX512-BF16 or AMX;
    elsewhere float32 with a warning): SCHNet and CLIP+SAM's SAM image encoder run under
    bfloat16 autocast, and CLIP+SAM's CLIP image tower on bfloat16 weights; outputs stay
    float32. On the 2-core dev CPU (AMD Zen 5), SCHNet-base at 512 px takes 1.28 s an image
    instead of 3.40 (one thread), and CLIP+SAM ViT-B 6.2 s a 320x240 frame instead of 16.0 (two
    threads); small models at 192 px gain nothing. The trained SCHNet-small scores the same
    held-out mIoU either way (0.521 against 0.520)."""
    mediapipe: MediapipeConfig = field(default_factory=MediapipeConfig)
    schnet: SchnetConfig = field(default_factory=SchnetConfig)
    clipsam: ClipSamConfig = field(default_factory=ClipSamConfig)

"""SCHNet configuration (no torch import here).

`SchnetConfig` is the model/inference config (a section of `ParserConfig`); `TrainConfig` is what
`openhuman train CONFIG.yaml` reads (it embeds a `SchnetConfig` under `model`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from openhuman.ontology import BODY14


@dataclass
class SchnetConfig:
    size: Literal["tiny", "small", "base"] = "base"
    """Model size: "tiny" (random-init test model), "small" (from-scratch CPU training) or "base"
    (SAM ViT-B + CLIP ViT-B/16)."""
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
    prompt_template: str = "a photo of a person's {}."
    """Text prompt for each class name ("{}" is replaced by the name)."""
    freeze_backbones: bool | None = None
    """Freeze the SAM/CLIP weights (partial fine-tuning with SRM/FTM/head). None = automatic:
    frozen when pretrained SAM and CLIP checkpoints are given, trained from scratch otherwise."""
    ftm_tokens: int = 8
    """Learnable tokens per SAM layer in the Fine-Tuning Module (m)."""
    person_crop: float | None = None
    """Person-centred second pass (None = off): the people found by a whole-image pass, their box
    grown by this fraction of its size on every side (e.g. 0.15), are parsed again at full input
    size. A training setting (the model is trained on such crops too); inference takes the
    checkpoint's value."""
    side_head: bool = True
    """Person-side head: "left"/"right" in a class name is taken out of its text prompt and
    predicted per pixel by a side logit of its own, gated per image (the class logit is the part's
    cosine logit plus log P(that side); see `modules.SideHead`, trained with
    `TrainConfig.facing_weight`). CLIP-style text embeddings barely tell "left hand" from "right
    hand" (cosine 0.92-0.997 after training), which caps how far a cosine head can separate the
    two. A training setting, stored in the checkpoint (older checkpoints: off)."""
    flip_test: bool = False
    """Test-time flip: average the parse with that of the mirrored image (left/right classes
    swapped back). Twice the compute; an inference setting (the parser config's value is used)."""
    pose_sides: bool = False
    """Take each limb's left/right from the mediapipe parse of the same frame (pose landmarks,
    `parser.mediapipe` settings): a SCHNet limb pixel gets the side of the nearer of mediapipe's
    two limbs of its type, and SCHNet keeps the part segmentation. The small SCHNet trained from
    scratch mirrors 23-32 % of held-out limb pixels, mediapipe 4-11 %: held-out 0.520 -> 0.612
    (README "SCHNet"). About 33 ms more a 640x480 frame on the 2-core CPU (10 % of SCHNet-small's
    time). Off by default: on a multi-view capture with depth the fusion already settles the sides
    in 3D, and there it lowered the demo's 2D / 3D mIoU (0.938 / 0.939 -> 0.902 / 0.908). An
    inference setting (the parser config's value is used)."""


@dataclass
class DataConfig:
    format: Literal["synth", "lip", "cihp", "ppp"] = "synth"
    """Dataset layout: synthetic captures, LIP, CIHP or PASCAL-Person-Part folders."""
    root: str = "runs/synth_data"
    """Dataset root (for "synth": a folder of capture directories, one per clip, or one capture)."""
    train_split: str = "train"
    """Split / sub-folder list used for training ("train" / "val"; for synth: clip folder names
    separated by commas, or "" for every capture under root)."""
    val_split: str = "val"
    """Split used for validation (for synth: comma-separated clip folder names)."""
    frame_stride: int = 1
    """Synthetic captures: use every n-th frame."""
    max_samples: int | None = None
    """Cap the number of training samples (None = all)."""


@dataclass
class AugmentConfig:
    scale_min: float = 0.75
    """Random rescale range (relative to the crop size)."""
    scale_max: float = 1.25
    """Upper bound of the random rescale."""
    hflip: bool = True
    """Random horizontal flip (swaps left/right labels)."""
    color_jitter: float = 0.2
    """Brightness/contrast jitter amplitude (0 = off)."""
    rotate_max: float = 0.0
    """Random in-plane rotation about the crop's centre, uniform in +-rotate_max degrees (0 =
    off); the corners it brings in are black and ignored by the loss."""
    person_crop_prob: float = 0.75
    """Share of training samples cut around the person when model.person_crop is set (the rest
    stay whole images, which the first inference pass sees)."""


@dataclass
class TrainConfig:
    model: SchnetConfig = field(default_factory=lambda: SchnetConfig(size="small", image_size=128))
    """The model to train (its vocabulary must name the dataset's classes, in id order 1..K)."""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    out_dir: str = "runs/schnet"
    """Where checkpoints (last.pt, best.pt) and logs go."""
    steps: int = 2000
    """Optimizer steps."""
    batch_size: int = 8
    """Images per step."""
    lr: float = 1e-3
    """Peak AdamW learning rate (new modules); backbones use lr * backbone_lr_scale."""
    backbone_lr_scale: float = 0.1
    """LR multiplier of the SAM/CLIP weights when they are trained (from scratch: use 1.0)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_steps: int = 50
    """Linear warm-up before the poly decay."""
    poly_power: float = 0.9
    """Poly schedule: lr * (1 - step / steps) ** power."""
    boundary_weight: float = 1.0
    """Extra cross-entropy weight on pixels within `boundary_radius` of a label edge (0 = off)."""
    boundary_radius: int = 2
    """Pixel radius of the boundary band."""
    facing_weight: float = 0.2
    """Weight of the facing loss (models with the side head; 0 = off): binary cross-entropy of the
    side head's gate 1 against "the person faces the camera", read off each training image's
    labels (the person's left parts lie right of their right parts; profile views, where the two
    are too close, and images missing a side are skipped). Neither the facing nor where a limb
    lies tells its side alone, so without this signal the side head rarely gets started."""
    val_every: int = 250
    """Validate (mIoU) and checkpoint every n steps."""
    val_max_images: int = 64
    """Validation images per evaluation (spread evenly over the split)."""
    num_workers: int = 0
    """DataLoader workers (used when a GPU exists; 0 = load in the main process)."""
    amp: bool = True
    """Mixed precision on CUDA (float16 autocast + gradient scaling)."""
    cpu_bf16: bool = False
    """On the CPU: bfloat16 autocast (weights and optimizer stay float32) where the CPU computes
    bfloat16 natively (AVX512-BF16 or AMX; elsewhere float32 with a warning): 0.165-0.178 s
    instead of 0.200 s a step of `configs/schnet_synth_side.yaml` on the 2-core dev CPU (AMD Zen 5)."""
    device: str = "auto"
    """"auto" (cuda when available), "cpu" or "cuda"."""
    threads: int = 2
    """torch CPU threads."""
    seed: int = 0
    """Random seed."""
    resume: bool = True
    """Continue from out_dir/last.pt when it exists."""
    init_checkpoint: str | None = None
    """Start from this checkpoint's weights (fine-tuning another run's model; the step count and
    optimizer start afresh). Modules the file lacks keep their new initialisation (logged).
    Not used when resuming from out_dir/last.pt."""

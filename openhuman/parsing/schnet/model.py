"""The SCHNet model: SAM's ViT image encoder with CLIP semantics injected at every stage.

Forward pass for images [B, 3, H, W] (float RGB in [0, 1]):
1. CLIP (open_clip ViT): the image resized to CLIP's input size; its transformer blocks are split
   into 4 equal groups, and after each group the patch tokens are reshaped to a map f_cv^i
   [B, Cc, g, g]; the pooled, projected image embedding is f_cls [B, D]. The text tower gives
   f_txt [K, D] for the prompts of the vocabulary.
2. SimModule: f_sim = softmax(cos(f_cls, f_txt) * CLIP logit scale) [B, K].
3. SAM (`ImageEncoderViT`): the image resized to `image_size`, patch-embedded (+ absolute position
   embedding, bicubically resized to the token grid): f_sv^0 [B, h, w, C]. Its blocks are split
   into 4 equal stages. Before stage i, SRM_i fuses f_cv^i (resized to h x w) into f_sv^(i-1);
   after every block, that layer's FTM refines the features; the stage output is f_sv^i.
4. Head: f_sv^1..4 -> per-pixel embeddings -> cosine logits vs [background, f_txt]
   -> [B, K + 1, H, W]; with `side_head`, "left"/"right" leave the prompts and a per-pixel side
   logit splits each part between its two sides (see `modules`).

SAM's neck and CLIP's final pooling are not used beyond f_cls. Frozen backbones (pretrained
weights given) keep requires_grad=False; gradients still flow through them to earlier SRM/FTMs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openhuman.parsing import backbones
from openhuman.parsing.schnet.config import SchnetConfig
from openhuman.parsing.schnet.data import side_of
from openhuman.parsing.schnet.modules import FTM, FTMMLP, SRM, ParsingHead, SimModule

log = logging.getLogger(__name__)
NUM_STAGES = 4


@dataclass(frozen=True)
class SizeSpec:
    sam: str
    """backbones.SAM_SIZES name."""
    clip: str
    """open_clip architecture."""
    head_width: int
    """Channels of the parsing head."""


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(sam="tiny", clip="openhuman-tiny-clip", head_width=32),
    "small": SizeSpec(sam="small", clip="openhuman-small-clip", head_width=64),
    "base": SizeSpec(sam="vit_b", clip="ViT-B-16", head_width=128),
}


def _split(n: int, parts: int) -> list[range]:
    """Split range(n) into `parts` contiguous, near-equal groups."""
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


class SchnetModel(nn.Module):
    """SCHNet. `forward(images [B, 3, H, W] in [0, 1]) -> logits [B, K + 1, H, W]` (0 = background)."""

    sam: Any
    """segment_anything ImageEncoderViT."""
    clip: Any
    """open_clip CLIP (visual + text towers)."""
    sam_mean: torch.Tensor
    sam_std: torch.Tensor
    clip_mean: torch.Tensor
    clip_std: torch.Tensor
    text_tokens: torch.Tensor

    def __init__(self, sam_encoder: nn.Module, clip_model: nn.Module, tokenizer, cfg: SchnetConfig) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.sam = sam_encoder
        self.clip = clip_model
        self.tokenizer = tokenizer
        self.image_size = cfg.image_size
        self.person_crop = cfg.person_crop
        self.flip_test = cfg.flip_test
        self.prompt_template = cfg.prompt_template
        sam_dim = int(self.sam.patch_embed.proj.out_channels)
        clip_dim = int(self.clip.visual.conv1.out_channels)
        embed_dim = int(self.clip.text_projection.shape[1])
        self.sam_stages = _split(len(self.sam.blocks), NUM_STAGES)
        self.clip_stages = _split(len(self.clip.visual.transformer.resblocks), NUM_STAGES)
        self.sim = SimModule()
        self.srm = nn.ModuleList(SRM(sam_dim, clip_dim, embed_dim) for _ in range(NUM_STAGES))
        shared = FTMMLP(sam_dim)
        self.ftm = nn.ModuleList(FTM(sam_dim, cfg.ftm_tokens, shared) for _ in self.sam.blocks)
        self.head = ParsingHead(sam_dim, NUM_STAGES, embed_dim, SIZES[cfg.size].head_width, cfg.side_head)
        sam_mean, sam_std = backbones.sam_normalize_constants()
        clip_mean, clip_std = backbones.clip_normalize_constants(self.clip)
        self.register_buffer("sam_mean", sam_mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("sam_std", sam_std.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_mean", torch.tensor(clip_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(clip_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("text_tokens", torch.zeros(0, 1, dtype=torch.long), persistent=False)
        self.register_buffer("class_side", torch.zeros(0), persistent=False)
        self.vocabulary: list[str] = []
        self._text_cache: torch.Tensor | None = None
        self.set_vocabulary(cfg.vocabulary)

    @property
    def side_head(self) -> bool:
        """Built with the person-side head (`SchnetConfig.side_head`)."""
        return self.head.side is not None

    # --- vocabulary ---------------------------------------------------------------------------
    def set_vocabulary(self, names: list[str]) -> None:
        """Set the K class names (background is implicit, id 0); text embeddings are recomputed."""
        if not names or any(not str(n).strip() for n in names):
            raise ValueError("vocabulary must be a non-empty list of non-empty class names")
        if "{}" not in self.prompt_template:
            raise ValueError(f"prompt_template must contain '{{}}' for the class name, got {self.prompt_template!r}")
        self.vocabulary = [str(n) for n in names]
        sides = [side_of(n) if self.side_head else (0, n) for n in self.vocabulary]
        prompts = [self.prompt_template.format(part) for _, part in sides]
        self.text_tokens = self.tokenizer(prompts).to(self.text_tokens.device)
        self.class_side = torch.tensor([float(s) for s, _ in sides], device=self.text_tokens.device)
        self._text_cache = None

    def text_trainable(self) -> bool:
        return any(p.requires_grad for p in self.clip.transformer.parameters())

    def text_embeddings(self) -> torch.Tensor:
        """f_txt [K, D]; cached unless the text tower is being trained."""
        if self.training and self.text_trainable():
            return self.clip.encode_text(self.text_tokens)
        if self._text_cache is None or self._text_cache.device != self.text_tokens.device:
            with torch.no_grad():
                self._text_cache = self.clip.encode_text(self.text_tokens).detach()
        return self._text_cache

    def train(self, mode: bool = True) -> SchnetModel:
        self._text_cache = None
        return super().train(mode)

    # --- forward ------------------------------------------------------------------------------
    def clip_features(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """images [B, 3, H, W] in [0, 1] -> (4 maps f_cv^i [B, Cc, g, g], f_cls [B, D])."""
        visual = self.clip.visual
        size = visual.image_size
        x = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False)
        x = visual._embeds((x - self.clip_mean) / self.clip_std)  # [B, 1 + g*g, Cc]
        gh, gw = visual.grid_size
        maps = []
        for group in self.clip_stages:
            for i in group:
                x = visual.transformer.resblocks[i](x)
            tokens = x[:, -gh * gw :]
            maps.append(tokens.transpose(1, 2).reshape(x.shape[0], -1, gh, gw))
        pooled, _ = visual._pool(x)
        f_cls = pooled @ visual.proj if visual.proj is not None else pooled
        return maps, f_cls

    def sam_embed(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] in [0, 1] -> f_sv^0 [B, h, w, C] with h = w = image_size / 16."""
        x = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = self.sam.patch_embed((x - self.sam_mean) / self.sam_std)
        pos = self.sam.pos_embed
        if pos is not None:
            if pos.shape[1:3] != x.shape[1:3]:
                pos = F.interpolate(pos.permute(0, 3, 1, 2), size=x.shape[1:3], mode="bicubic", align_corners=False)
                pos = pos.permute(0, 2, 3, 1)
            x = x + pos
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images float [B, 3, H, W] in [0, 1] -> logits [B, K + 1, H, W]."""
        return self.logits_and_facing(images)[0]

    def logits_and_facing(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits [B, K + 1, H, W], facing logit [B] or None without the side head): the side
        head's gate 1, which training's facing loss makes "the person faces the camera"."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
        f_txt = self.text_embeddings()
        f_cv, f_cls = self.clip_features(images)
        f_sim = self.sim(f_cls, f_txt, self.clip.logit_scale.exp().clamp(max=100.0))
        x = self.sam_embed(images)
        outs = []
        for stage, (blocks, srm) in enumerate(zip(self.sam_stages, self.srm, strict=True)):
            cv = F.interpolate(f_cv[stage], size=x.shape[1:3], mode="bilinear", align_corners=False)
            x = srm(x, cv, f_sim, f_txt)
            for i in blocks:
                x = self.ftm[i](self.sam.blocks[i](x))
            outs.append(x.permute(0, 3, 1, 2))
        logits, gates = self.head.forward_with_gates(outs, images, f_txt, self.class_side)
        return logits, None if gates is None else gates[:, 1]

    # --- parameters ---------------------------------------------------------------------------
    def set_backbones_trainable(self, trainable: bool) -> None:
        """Freeze (False) or unfreeze (True) every SAM and CLIP weight."""
        for p in list(self.sam.parameters()) + list(self.clip.parameters()):
            p.requires_grad_(trainable)
        self._text_cache = None

    def trainable_state_dict(self, include_frozen: bool = False) -> dict[str, torch.Tensor]:
        """The weights a checkpoint must store: every parameter with requires_grad (or all of them)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad or include_frozen}
        return {k: v.detach().cpu() for k, v in self.state_dict().items() if k in names}


def resolve_freeze(cfg: SchnetConfig) -> bool:
    """Whether the backbones are frozen: explicit flag, else frozen iff both pretrained files are set."""
    if cfg.freeze_backbones is not None:
        return cfg.freeze_backbones
    return cfg.sam_checkpoint is not None and cfg.clip_checkpoint is not None


def build_schnet(cfg: SchnetConfig, key_prefix: str = "parser.schnet") -> SchnetModel:
    """Build SCHNet for `cfg` (pretrained SAM/CLIP from their files when set), in eval mode."""
    if cfg.size not in SIZES:
        raise ValueError(f"unknown SCHNet size {cfg.size!r}; choose one of {', '.join(SIZES)}")
    if cfg.image_size % 16 or cfg.image_size < 32:
        raise ValueError(f"image_size must be a multiple of 16 and >= 32, got {cfg.image_size}")
    if cfg.person_crop is not None and not 0 <= cfg.person_crop <= 2:
        raise ValueError(f"person_crop must be a margin fraction in [0, 2] or null, got {cfg.person_crop}")
    spec = SIZES[cfg.size]
    sam = backbones.build_sam_image_encoder(spec.sam, cfg.sam_checkpoint, f"{key_prefix}.sam_checkpoint")
    clip, _, tokenizer = backbones.build_clip(spec.clip, cfg.clip_checkpoint, f"{key_prefix}.clip_checkpoint")
    model = SchnetModel(sam, clip, tokenizer, cfg)
    model.set_backbones_trainable(not resolve_freeze(cfg))
    return model.eval()

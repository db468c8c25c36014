"""Model builders of the CLIP+SAM backend, on top of the shared `openhuman.parsing.backbones`
(same strict local-file loading and error messages as SCHNet).

A missing or mismatched checkpoint raises `CheckpointError` naming the config key
(`parser.clipsam.sam_checkpoint` / `parser.clipsam.clip_checkpoint`). Random weights only with
`ClipSamConfig.allow_random_init` (tests, benchmarks).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from torch import nn

from openhuman._compat import ensure_torchvision
from openhuman.errors import CheckpointError
from openhuman.parsing import backbones
from openhuman.parsing.clipsam.config import ClipSamConfig

log = logging.getLogger(__name__)

SAM_KEY = "parser.clipsam.sam_checkpoint"
CLIP_KEY = "parser.clipsam.clip_checkpoint"
TINY_CLIP = "openhuman-tiny-clip"
"""open_clip architecture that `clip_model: tiny` maps to (registered by backbones)."""
TINY_SAM_IMAGE_SIZE = 256
"""Input size of `sam_model: tiny` (16x16 image embedding: a cheap mask decoder for tests)."""


def build_tiny_sam() -> nn.Module:
    """A small random SAM from segment_anything's own modules: 256 px input, 64-d 2-block encoder,
    32-d prompt encoder / mask decoder (tests and benchmarks; SAM's official sizes come from
    backbones)."""
    ensure_torchvision()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    dim, size, patch = 32, TINY_SAM_IMAGE_SIZE, 16
    encoder = ImageEncoderViT(
        img_size=size, patch_size=patch, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4,
        out_chans=dim, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rel_pos=True, window_size=4, global_attn_indexes=(1,),
    )  # fmt: skip
    grid = size // patch
    prompt = PromptEncoder(
        embed_dim=dim, image_embedding_size=(grid, grid), input_image_size=(size, size), mask_in_chans=8
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=2),
        transformer_dim=dim,
        iou_head_depth=3,
        iou_head_hidden_dim=32,
    )
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)
    return sam.eval()


def clip_arch(cfg: ClipSamConfig) -> str:
    """open_clip architecture name for `cfg.clip_model`."""
    return TINY_CLIP if cfg.clip_model == "tiny" else cfg.clip_model


def _require(path: str | None, key: str, allow_random: bool, what: str) -> None:
    if path is None and not allow_random:
        raise CheckpointError(
            f"{key} is not set: give the path of a local {what} checkpoint file "
            "(or set parser.clipsam.allow_random_init: true for tests; the output is then meaningless)"
        )


def check_checkpoint_paths(cfg: ClipSamConfig) -> None:
    """The cheap part of the builders' checks (each checkpoint set unless random weights are
    allowed; those set are non-empty torch files), for callers that refuse bad paths before
    writing anything; the contents are checked when they load."""
    for path, key, what in ((cfg.sam_checkpoint, SAM_KEY, "SAM (.pth)"), (cfg.clip_checkpoint, CLIP_KEY, "open_clip")):
        _require(path, key, cfg.allow_random_init, what)
        if path is not None:
            backbones.check_file(path, key, f"give the path of a local {what} checkpoint file")


def build_sam(cfg: ClipSamConfig, device: str = "cpu") -> nn.Module:
    """The full segment_anything `Sam` model (eval mode) for `cfg.sam_model`."""
    _require(cfg.sam_checkpoint, SAM_KEY, cfg.allow_random_init, "SAM (.pth)")
    if cfg.sam_model == "tiny":  # much cheaper than backbones' tiny (1024 px, 256-d decoder)
        model = build_tiny_sam()
        if cfg.sam_checkpoint is not None:
            backbones.load_state_dict_strict(model, cfg.sam_checkpoint, SAM_KEY, hint="a tiny SAM state dict")
    else:
        model = backbones.build_sam(cfg.sam_model, cfg.sam_checkpoint, key=SAM_KEY)
    if cfg.sam_checkpoint is None:
        log.warning("SAM %s has random weights (allow_random_init): its masks are meaningless", cfg.sam_model)
    return model.to(device).eval()


def build_clip(cfg: ClipSamConfig, device: str = "cpu") -> tuple[nn.Module, Any]:
    """(open_clip CLIP model in eval mode, its tokenizer) for `cfg.clip_model`."""
    _require(cfg.clip_checkpoint, CLIP_KEY, cfg.allow_random_init, "open_clip")
    try:
        model, _, tokenizer = backbones.build_clip(clip_arch(cfg), cfg.clip_checkpoint, key=CLIP_KEY)
    except ValueError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"parser.clipsam.clip_model: {exc}") from None
    if cfg.clip_checkpoint is None:
        log.warning("CLIP %s has random weights (allow_random_init): its scores are meaningless", clip_arch(cfg))
    return model.to(device).eval(), tokenizer

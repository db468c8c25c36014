"""Dense, training-free CLIP features: the last visual block's attention replaced by a
self-correlation form, patch tokens projected into the text space, sliding windows for images
larger than CLIP's input.

Attention modes (per head, L = 1 + N tokens, the class token first):
- "original": CLIP's own softmax(q k^T / sqrt(d)); the block keeps its residual and FFN, so the
  class token equals the model's own image embedding (the tests check this).
- "vv": softmax(v v^T / sqrt(d)) (value-value attention, as in CLIP Surgery / MaskCLIP-style work).
- "qqkk": (softmax(q q^T / sqrt(d)) + softmax(k k^T / sqrt(d))) / 2 (SCLIP-style self-correlation,
  averaged so that each row stays a distribution).
- "trase": CLIPtrase-style recalibrated patch self-correlation. The keys of the last block,
  L2-normalised, give a cosine self-correlation S between tokens; the class-token column is
  removed (the global token dominates CLIP's attention and carries no location), every entry
  below its row's mean over patches is dropped (only tokens more similar than average may
  contribute; the diagonal is always kept), and softmax(S / T) over the rest is the attention.
For every mode except "original" the last block's residual branch and FFN are dropped (the
output is out_proj(attention @ v) alone): the residual stream carries the global, location-free
signal that makes CLIP's patch tokens noisy (ClearCLIP/SCLIP observation). Then ln_post and the
visual projection map each patch token into the joint image-text space.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

AttentionMode = Literal["original", "vv", "qqkk", "trase"]
ATTENTION_MODES: tuple[str, ...] = ("original", "vv", "qqkk", "trase")
_DEFAULT_MEAN = (0.48145466, 0.4578275, 0.40821073)
_DEFAULT_STD = (0.26862954, 0.26130258, 0.27577711)


def _check_visual(visual: Any) -> None:
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or not isinstance(getattr(blocks[-1], "attn", None), nn.MultiheadAttention):
        raise ValueError("dense CLIP features need an open_clip VisionTransformer with standard attention blocks")
    if getattr(visual, "attn_pool", None) is not None or visual.proj is None:
        raise ValueError("dense CLIP features need a ViT with a class token and a visual projection")
    if not getattr(visual.transformer, "batch_first", True):
        raise ValueError("dense CLIP features need a batch-first open_clip transformer")


def split_qkv(attn: nn.MultiheadAttention, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v [B, heads, L, d] of a block's attention for normalised tokens h [B, L, D]."""
    B, L, D = h.shape
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
    heads = attn.num_heads
    q, k, v = (t.reshape(B, L, heads, D // heads).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    return q, k, v


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mode: AttentionMode, temperature: float = 0.07
) -> torch.Tensor:
    """Attention matrix [B, heads, L, L] (rows sum to 1) from q, k, v [B, heads, L, d].

    Token 0 is the class token; "trase" gives it zero weight as a key.
    """
    if mode not in ATTENTION_MODES:
        raise ValueError(f"unknown attention mode {mode!r}; choose one of {', '.join(ATTENTION_MODES)}")
    scale = 1.0 / math.sqrt(q.shape[-1])
    if mode == "original":
        return torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    if mode == "vv":
        return torch.softmax(v @ v.transpose(-2, -1) * scale, dim=-1)
    if mode == "qqkk":
        qq = torch.softmax(q @ q.transpose(-2, -1) * scale, dim=-1)
        kk = torch.softmax(k @ k.transpose(-2, -1) * scale, dim=-1)
        return 0.5 * (qq + kk)
    return trase_attention(k, temperature)


def trase_attention(feats: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Recalibrated self-correlation attention [B, heads, L, L] from token features [B, heads, L, d].

    Cosine self-correlation, class-token column removed, entries below the row mean over patch
    tokens dropped (diagonal kept), softmax(S / temperature) over what remains.
    """
    if temperature <= 0:
        raise ValueError(f"trase temperature must be > 0, got {temperature}")
    f = F.normalize(feats, dim=-1)
    sim = f @ f.transpose(-2, -1)  # [B, h, L, L] cosine in [-1, 1]
    L = sim.shape[-1]
    keep = torch.ones_like(sim, dtype=torch.bool)
    keep[..., 0] = False  # class token is never a key
    row_mean = sim[..., 1:].mean(dim=-1, keepdim=True)
    keep &= sim >= row_mean
    eye = torch.eye(L, dtype=torch.bool, device=sim.device)
    eye[0, 0] = False
    keep |= eye
    if L > 1:
        keep[..., 0, 1:] |= ~keep[..., 0, 1:].any(dim=-1, keepdim=True)  # class row: never empty
    logits = (sim / temperature).masked_fill(~keep, float("-inf"))
    return torch.softmax(logits, dim=-1)


def _last_block(block: Any, x: torch.Tensor, mode: AttentionMode, temperature: float) -> torch.Tensor:
    """Run the last residual block with the chosen attention. x [B, L, D] -> [B, L, D]."""
    h = block.ln_1(x)
    q, k, v = split_qkv(block.attn, h)
    attn = attention_weights(q, k, v, mode, temperature)
    out = (attn @ v).transpose(1, 2).reshape(x.shape)
    out = block.attn.out_proj(out)
    if mode == "original":
        y = x + block.ls_1(out)
        return y + block.ls_2(block.mlp(block.ln_2(y)))
    return block.ls_1(out)


def dense_tokens(visual: Any, images: torch.Tensor, mode: AttentionMode, temperature: float = 0.07) -> torch.Tensor:
    """Projected tokens [B, 1 + gh*gw, E] (class token first) for normalised images [B, 3, S, S]
    at the model's input size S."""
    _check_visual(visual)
    x = visual._embeds(images)
    blocks = visual.transformer.resblocks
    for blk in blocks[:-1]:
        x = blk(x)
    x = _last_block(blocks[-1], x, mode, temperature)
    return visual.ln_post(x) @ visual.proj


def window_origins(size: int, win: int, stride: int) -> list[int]:
    """Start offsets of windows of length `win` covering [0, size) with step `stride` (last one
    aligned to the end)."""
    if size <= win:
        return [0]
    starts = list(range(0, size - win + 1, stride))
    if starts[-1] != size - win:
        starts.append(size - win)
    return starts


def prepare_image(rgb: torch.Tensor, visual: Any, short_side: int) -> torch.Tensor:
    """uint8/float RGB [H, W, 3] -> normalised [1, 3, H', W'] with min(H', W') >= the model's input
    size, H' and W' multiples of the patch size."""
    win = int(visual.image_size[0])
    patch = int(visual.patch_size[0])
    H, W = int(rgb.shape[0]), int(rgb.shape[1])
    scale = max(short_side, win) / min(H, W)
    h2 = max(win, round(H * scale / patch) * patch)
    w2 = max(win, round(W * scale / patch) * patch)
    img = rgb.permute(2, 0, 1)[None].float() / 255.0
    img = F.interpolate(img, size=(h2, w2), mode="bilinear", align_corners=False, antialias=True)
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", _DEFAULT_MEAN), dtype=img.dtype).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", _DEFAULT_STD), dtype=img.dtype).view(1, 3, 1, 1)
    return (img - mean) / std


def dense_features(
    visual: Any,
    image: torch.Tensor,
    mode: AttentionMode,
    overlap: float = 0.5,
    temperature: float = 0.07,
    batch: int = 8,
) -> torch.Tensor:
    """Sliding-window dense features [E, H'/p, W'/p] of a normalised image [1, 3, H', W'].

    Windows of the model's input size overlap by `overlap` (their strides are rounded to whole
    patches); each patch's feature is the average over the windows that contain it.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"window overlap must be in [0, 1), got {overlap}")
    win = int(visual.image_size[0])
    patch = int(visual.patch_size[0])
    _, _, H, W = image.shape
    if H % patch or W % patch or min(H, W) < win:
        raise ValueError(f"image {H}x{W} must be at least {win} and a multiple of {patch}; use prepare_image")
    stride = max(patch, int(round(win * (1.0 - overlap) / patch)) * patch)
    origins = [(y, x) for y in window_origins(H, win, stride) for x in window_origins(W, win, stride)]
    g = win // patch
    acc: torch.Tensor | None = None
    count = torch.zeros(1, H // patch, W // patch, dtype=image.dtype, device=image.device)
    for i in range(0, len(origins), batch):
        chunk = origins[i : i + batch]
        crops = torch.cat([image[:, :, y : y + win, x : x + win] for y, x in chunk])
        tokens = dense_tokens(visual, crops, mode, temperature)[:, 1:]  # [b, g*g, E]
        grids = tokens.transpose(1, 2).reshape(len(chunk), -1, g, g)
        if acc is None:
            acc = torch.zeros(grids.shape[1], H // patch, W // patch, dtype=grids.dtype, device=grids.device)
        for (y, x), grid in zip(chunk, grids, strict=True):
            acc[:, y // patch : y // patch + g, x // patch : x // patch + g] += grid
            count[:, y // patch : y // patch + g, x // patch : x // patch + g] += 1
    assert acc is not None
    return acc / count

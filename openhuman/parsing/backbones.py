"""Shared SAM and CLIP builders with strict, local-file checkpoint loading.

Used by the SCHNet backend/trainer and the training-free CLIP+SAM backend. Nothing is downloaded:
weights come from explicit file paths, are loaded onto CPU (`map_location="cpu"`,
`weights_only=True`) and must match the model exactly; otherwise `CheckpointError` names the
config key to fix.

SAM sizes (segment_anything's `_build_sam`, so the modules are SAM's own classes):
- "vit_b" / "vit_l" / "vit_h": the official encoders (registry settings).
- "tiny": embed 64, depth 4, 2 heads, all blocks global attention (tests; random init).
- "small": embed 128, depth 4, 4 heads, all global (from-scratch CPU training).

CLIP: any open_clip architecture name ("ViT-B-16", ...) plus two small registered configs,
"openhuman-tiny-clip" (vision width 64 / 4 layers / patch 16 / image 64; text width 64 / 2 layers;
embed 64) and "openhuman-small-clip" (vision width 128 / 4 layers / image 96; text width 128 / 2
layers; embed 128). Both use the standard CLIP BPE tokenizer (ships with open_clip, offline) with
a 16-token context.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openhuman._compat import ensure_torchvision
from openhuman.errors import CheckpointError, InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

SAM_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"encoder_embed_dim": 64, "encoder_depth": 4, "encoder_num_heads": 2,
             "encoder_global_attn_indexes": [0, 1, 2, 3]},
    "small": {"encoder_embed_dim": 128, "encoder_depth": 4, "encoder_num_heads": 4,
              "encoder_global_attn_indexes": [0, 1, 2, 3]},
    "vit_b": {"encoder_embed_dim": 768, "encoder_depth": 12, "encoder_num_heads": 12,
              "encoder_global_attn_indexes": [2, 5, 8, 11]},
    "vit_l": {"encoder_embed_dim": 1024, "encoder_depth": 24, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": [5, 11, 17, 23]},
    "vit_h": {"encoder_embed_dim": 1280, "encoder_depth": 32, "encoder_num_heads": 16,
              "encoder_global_attn_indexes": [7, 15, 23, 31]},
}  # fmt: skip
"""segment_anything `_build_sam` arguments per size (official values for vit_b/l/h)."""

SAM_OFFICIAL_FILES = {"vit_b": "sam_vit_b_01ec64.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_h": "sam_vit_h_4b8939.pth"}

SMALL_CLIP_CONFIGS: dict[str, dict[str, Any]] = {
    "openhuman-tiny-clip": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 4, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "openhuman-small-clip": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": 96, "layers": 4, "width": 128, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2},
    },
}
"""Small open_clip configs registered on first use (random init only; for tests / CPU training)."""

_registered = False


def _register_small_clip_configs() -> None:
    """Add the small configs to open_clip's registry. It reads the JSON files when they are added
    and keeps them in memory, so the temporary folder is removed at once (a later rescan of
    open_clip's config paths skips a folder that no longer exists)."""
    global _registered
    if _registered:
        return
    ensure_torchvision()
    import open_clip

    with tempfile.TemporaryDirectory(prefix="openhuman_clip_cfg_") as tmp:
        for name, cfg in SMALL_CLIP_CONFIGS.items():
            (Path(tmp) / f"{name}.json").write_text(json.dumps(cfg), encoding="utf-8")
        open_clip.add_model_config(tmp)
    _registered = True


_WARNED: set[str] = set()
"""Config keys whose missing-bfloat16 warning was given (once per process)."""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's check: AVX512-BF16 or AMX)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def compute_autocast(device: Any, cpu_bf16: bool, cuda_fp16: bool = True, key: str = "cpu_bf16") -> Any:
    """The autocast context a model runs under: float16 on CUDA (`cuda_fp16`), bfloat16 on a CPU
    that computes it natively when `cpu_bf16` asks for it (elsewhere float32, with a warning
    naming `key`), else none. Weights stay float32; callers turn outputs back to float32."""
    import torch

    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16, enabled=cuda_fp16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_cpu_bf16(device, cpu_bf16, key))


def use_cpu_bf16(device: Any, cpu_bf16: bool, key: str = "cpu_bf16") -> bool:
    """Whether a model on `device` should compute in bfloat16: asked for (`cpu_bf16`), on the
    CPU, and the CPU has it (else one warning naming `key`)."""
    import torch

    if not cpu_bf16 or torch.device(device).type != "cpu":
        return False
    if cpu_has_bf16():
        return True
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("%s: this CPU has no native bfloat16 (AVX512-BF16 or AMX); running in float32", key)
    return False


def torch_device(name: str, key: str, auto: bool = False) -> Any:
    """The `torch.device` a config names ("auto": a GPU when there is one, where `auto`);
    InputError naming `key` for an unknown name, or cuda without a GPU."""
    import torch

    if auto and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    choices = "auto, cpu or cuda" if auto else "cpu or cuda"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{key}: unknown device {name!r}; use {choices} (cuda:N for another GPU)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{key}: {name!r} requested but no GPU is available; use {'auto or ' * auto}cpu")
    return device


def check_file(path: str | os.PathLike[str], key: str, hint: str) -> Path:
    """The path, or CheckpointError when it is missing, a folder, empty or not a torch file
    (torch's own messages for the last three are cryptic, such as "(101)")."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise CheckpointError(f"{key}: {p} is a folder, not a file; {hint}")
    if not p.is_file():
        raise CheckpointError(f"{key}: file not found: {p} — {hint}")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{key}: {p} is empty (0 bytes); {hint}")
    if not _looks_like_torch_file(p):
        raise CheckpointError(f"{key}: {p} is not a torch checkpoint (truncated, or another kind of file); {hint}")
    return p


def _looks_like_torch_file(path: Path) -> bool:
    """A whole zip archive (torch.save's format) or a pickle (its legacy format)."""
    import zipfile

    try:
        with path.open("rb") as f:
            first = f.read(1)
        return first == b"\x80" or zipfile.is_zipfile(path)
    except OSError:
        return True  # unreadable: torch.load reports it


def load_checkpoint_file(path: str | os.PathLike[str], key: str, hint: str = "check the path") -> Any:
    """`torch.load` a local file onto CPU with `weights_only=True`; errors name `key`."""
    import torch

    p = check_file(path, key, hint)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code objects, not a torch file
        # torch's message spans lines and suggests weights_only=False; keep its reason only
        text = " ".join(str(exc).split())
        found = re.search(r"WeightsUnpickler error: (.*?)(?:\. | Check the documentation|$)", text)
        reason = found.group(1) if found else text[:200]
        raise CheckpointError(
            f"{key}: {p} is not a readable weights-only torch checkpoint ({reason}); give the file torch.save wrote"
        ) from None


def load_state_dict_strict(
    module: nn.Module,
    path: str | os.PathLike[str],
    key: str,
    prefix: str | None = None,
    hint: str = "check the path",
) -> None:
    """Load `path` into `module` strictly (all keys, all shapes), on CPU.

    `prefix` selects and strips a sub-tree ("image_encoder." of a full SAM checkpoint). A file
    with missing, unexpected or mis-shaped keys raises `CheckpointError` naming `key`.
    """
    state = load_checkpoint_file(path, key, hint)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{key}: {path} does not hold a state dict (got {type(state).__name__})")
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{key}: {path} has no weights under {prefix!r} — {hint}")
    check_state_dict(module, state, key, str(path))
    module.load_state_dict(state, strict=True)


def check_state_dict(module: nn.Module, state: dict[str, Any], key: str, source: str) -> None:
    """Raise CheckpointError (naming `key`) unless `state` matches `module` key-for-key and in shape."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(getattr(state[k], "shape", ()))]
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if bad_shape:
            k = bad_shape[0]
            parts.append(
                f"{len(bad_shape)} with other shapes (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise CheckpointError(f"{key}: {source} does not match the model: {'; '.join(parts)}")


def build_sam(size: str, checkpoint: str | None = None, key: str = "sam_checkpoint") -> nn.Module:
    """Full segment_anything `Sam` (encoder, prompt encoder, mask decoder) in eval mode.

    `checkpoint`: SAM's official .pth for `size`, loaded strictly; None = random init.
    """
    if size not in SAM_SIZES:
        raise ValueError(f"unknown SAM size {size!r}; choose one of {', '.join(SAM_SIZES)}")
    ensure_torchvision()
    from segment_anything.build_sam import _build_sam

    sam = _build_sam(checkpoint=None, **SAM_SIZES[size])
    if checkpoint is not None:
        load_state_dict_strict(sam, checkpoint, key, hint=_sam_hint(size))
    return sam.eval()


def _sam_hint(size: str) -> str:
    name = SAM_OFFICIAL_FILES.get(size)
    return f"point it at SAM's official {name}" if name else f"size {size!r} has no official weights; set it to null"


def build_sam_image_encoder(size: str, checkpoint: str | None = None, key: str = "sam_checkpoint") -> nn.Module:
    """SAM's `ImageEncoderViT` for `size`, in eval mode.

    `checkpoint`: SAM's official full .pth (its "image_encoder.*" weights are loaded strictly) or a
    file holding only the encoder's weights. Input: float [B, 3, S, S] SAM-normalised pixels with
    S = 1024 for the stock forward (callers may interpolate `pos_embed` for other sizes).
    """
    if size not in SAM_SIZES:
        raise ValueError(f"unknown SAM size {size!r}; choose one of {', '.join(SAM_SIZES)}")
    ensure_torchvision()
    from segment_anything.build_sam import _build_sam

    encoder = _build_sam(checkpoint=None, **SAM_SIZES[size]).image_encoder
    if checkpoint is not None:
        state = load_checkpoint_file(checkpoint, key, _sam_hint(size))
        has_prefix = isinstance(state, dict) and any(str(k).startswith("image_encoder.") for k in state)
        if has_prefix:
            state = {k[len("image_encoder.") :]: v for k, v in state.items() if k.startswith("image_encoder.")}
        if not isinstance(state, dict):
            raise CheckpointError(f"{key}: {checkpoint} does not hold a state dict")
        check_state_dict(encoder, state, key, str(checkpoint))
        encoder.load_state_dict(state, strict=True)
    return encoder.eval()


class _DropRandomInitWarning(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded" warning (random init is asked for explicitly)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded")


def build_clip(arch: str, checkpoint: str | None = None, key: str = "clip_checkpoint") -> tuple[nn.Module, Any, Any]:
    """open_clip model, its eval preprocess transform and tokenizer: `(model, preprocess, tokenizer)`.

    `checkpoint`: a local open_clip checkpoint for `arch` (strict); None = random init. The small
    configs in `SMALL_CLIP_CONFIGS` are registered on demand. Model returned in eval mode on CPU.
    """
    ensure_torchvision()
    import open_clip

    if arch in SMALL_CLIP_CONFIGS:
        _register_small_clip_configs()
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {arch!r}; e.g. ViT-B-16, {', '.join(SMALL_CLIP_CONFIGS)}")
    pretrained: str | None = None
    if checkpoint is not None:
        pretrained = str(check_file(checkpoint, key, f"point it at an open_clip checkpoint file for {arch}"))
    quiet = _DropRandomInitWarning()
    logging.getLogger().addFilter(quiet)  # random init is intended here (weights come later or not at all)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained, device="cpu")
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{key}: {checkpoint} does not match open_clip {arch}: {first}") from None
    finally:
        logging.getLogger().removeFilter(quiet)
    tokenizer = open_clip.get_tokenizer(arch)
    return model.eval(), preprocess, tokenizer


def clip_normalize_constants(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the CLIP model expects for [0, 1] RGB (open_clip's preprocess cfg, else OpenAI's)."""
    visual = getattr(model, "visual", None)
    mean = getattr(visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
    std = getattr(visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def sam_normalize_constants() -> tuple[torch.Tensor, torch.Tensor]:
    """SAM pixel mean/std for [0, 1] RGB, float [3]."""
    import torch

    mean = torch.tensor([123.675, 116.28, 103.53]) / 255.0
    std = torch.tensor([58.395, 57.12, 57.375]) / 255.0
    return mean, std

"""SCHNet checkpoints: trainable weights + model config + vocabulary (+ optimizer state and step).

A checkpoint is a plain dict saved with `torch.save` (atomically) and read back with
`weights_only=True` onto CPU:

    format      "openhuman-schnet/1"
    config      SchnetConfig as a dict (size, image_size, prompt template, backbone files, ...)
    vocabulary  the class names it was trained with (background implicit)
    frozen      SAM/CLIP were frozen pretrained weights: they are NOT stored and are rebuilt from
                config.sam_checkpoint / clip_checkpoint (or the files the caller names)
    weights     every parameter that had requires_grad (from scratch, or frozen without known
                backbone files: the whole model)
    step, best_miou, optimizer (optional)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch

from openhuman.config import from_dict, to_dict
from openhuman.errors import CheckpointError, InputError
from openhuman.io import atomic_path
from openhuman.parsing import backbones
from openhuman.parsing.schnet.config import SchnetConfig
from openhuman.parsing.schnet.model import SchnetModel, build_schnet

log = logging.getLogger(__name__)
FORMAT = "openhuman-schnet/1"


def save_checkpoint(
    path: str | os.PathLike[str],
    model: SchnetModel,
    cfg: SchnetConfig,
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    best_miou: float = float("nan"),
) -> None:
    """Write `path` atomically (a crash never leaves a partial file under the final name)."""
    frozen = not any(p.requires_grad for p in model.sam.parameters())
    # Frozen backbones are stored by reference (their files) only when both files are known;
    # otherwise (e.g. frozen random backbones) every weight goes into the checkpoint.
    by_reference = frozen and cfg.sam_checkpoint is not None and cfg.clip_checkpoint is not None
    payload: dict[str, Any] = {
        "format": FORMAT,
        "config": to_dict(dataclasses.replace(cfg, checkpoint=None, vocabulary=list(model.vocabulary))),
        "vocabulary": list(model.vocabulary),
        "frozen": by_reference,
        "weights": model.trainable_state_dict(include_frozen=not by_reference),
        "step": int(step),
        "best_miou": float(best_miou),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _hint(path: str | os.PathLike[str]) -> str:
    hint = "point it at a .pt written by `openhuman train`"
    if Path(path).expanduser().is_dir():
        hint += f" (such as {Path(path).expanduser() / 'best.pt'})"
    return hint


def check_checkpoint_path(path: str | os.PathLike[str] | None, key: str = "parser.schnet.checkpoint") -> None:
    """The cheap part of `load_schnet`'s checks (set; a non-empty torch file), for callers that
    refuse a bad path before writing anything; the contents are checked when it loads."""
    if not path:
        raise CheckpointError(
            f"{key}: not set — point it at a .pt written by `openhuman train` "
            "(e.g. configs/schnet_synth.yaml -> runs/schnet_synth/best.pt)"
        )
    backbones.check_file(path, key, _hint(path))


def read_checkpoint(path: str | os.PathLike[str], key: str = "parser.schnet.checkpoint") -> dict[str, Any]:
    """Load and validate the checkpoint dict (CPU, weights_only)."""
    data = backbones.load_checkpoint_file(path, key, _hint(path))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{key}: {path} is not a SCHNet checkpoint (format {FORMAT!r}); train one with `openhuman train`"
        )
    return data


def saved_config(data: dict[str, Any], key: str, path: str | os.PathLike[str]) -> SchnetConfig:
    """The SchnetConfig a checkpoint was trained with (checkpoints from before `side_head`: off)."""
    try:
        saved = from_dict(SchnetConfig, data["config"], "checkpoint.config")
    except InputError as exc:
        raise CheckpointError(f"{key}: {path} has an unreadable config: {exc}") from None
    if "side_head" not in data["config"]:
        saved = dataclasses.replace(saved, side_head=False)
    return saved


def load_weights(
    model: SchnetModel, data: dict[str, Any], key: str, source: str, allow_missing: tuple[str, ...] = ()
) -> None:
    """Load `data["weights"]` into the model's trainable parameters, strictly (names and shapes),
    except that the parameters named in `allow_missing` may be absent (they keep their values)."""
    weights = data["weights"]
    own = model.state_dict()
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(expected - set(weights) - set(allow_missing))
    unexpected = sorted(set(weights) - set(own))
    shapes = [k for k in weights if k in own and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shapes:
        what = missing[:1] or unexpected[:1] or shapes[:1]
        raise CheckpointError(
            f"{key}: {source} does not match the SCHNet model ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(shapes)} mis-shaped weights, e.g. {what[0]})"
        )
    model.load_state_dict(weights, strict=False)


def load_schnet(
    path: str | os.PathLike[str] | None,
    cfg: SchnetConfig | None = None,
    key: str = "parser.schnet.checkpoint",
) -> SchnetModel:
    """Build SCHNet from a checkpoint, in eval mode.

    `cfg` (optional) overrides the vocabulary (new class names at inference) and, for checkpoints
    with frozen backbones, the SAM/CLIP files to rebuild them from.
    """
    check_checkpoint_path(path, key)
    assert path  # for the type checker: check_checkpoint_path refuses an unset one
    data = read_checkpoint(path, key)
    saved = saved_config(data, key, path)
    frozen = bool(data.get("frozen", False))
    prefix = key.rsplit(".", 1)[0]
    sam_ckpt = (cfg.sam_checkpoint if cfg and cfg.sam_checkpoint else None) or saved.sam_checkpoint
    clip_ckpt = (cfg.clip_checkpoint if cfg and cfg.clip_checkpoint else None) or saved.clip_checkpoint
    if frozen and (sam_ckpt is None or clip_ckpt is None):
        raise CheckpointError(
            f"{prefix}.sam_checkpoint / {prefix}.clip_checkpoint: {path} was trained with frozen pretrained "
            "backbones; set both to the SAM and CLIP files it was trained from"
        )
    build_cfg = dataclasses.replace(
        saved,
        vocabulary=list(data["vocabulary"]),
        sam_checkpoint=sam_ckpt if frozen else None,
        clip_checkpoint=clip_ckpt if frozen else None,
        freeze_backbones=frozen,
    )
    model = build_schnet(build_cfg, key_prefix=prefix)
    load_weights(model, data, key, str(path))
    if cfg is not None:
        model.flip_test = cfg.flip_test
    if cfg is not None and list(cfg.vocabulary) != list(model.vocabulary):
        model.set_vocabulary(list(cfg.vocabulary))
        log.info("SCHNet vocabulary set to %d classes (trained with %d)", len(cfg.vocabulary), len(data["vocabulary"]))
    return model.eval()

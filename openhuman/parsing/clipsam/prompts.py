"""Prompt ensembles -> CLIP text embeddings (configs/prompts.yaml).

A part's embedding is the mean over (template x synonym) of the L2-normalised CLIP text
embeddings of `template.format(synonym)`, renormalised. Each background ("not a body part")
phrase is its own class, ensembled over the background templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from openhuman.errors import InputError
from openhuman.ontology import BODY14, CONFIG_DIR

DEFAULT_PROMPTS = CONFIG_DIR / "prompts.yaml"


@dataclass(frozen=True)
class PromptSet:
    templates: tuple[str, ...]
    parts: tuple[tuple[str, ...], ...]
    """Synonyms per body14 part 1..14 (index k = part k + 1)."""
    background: tuple[str, ...]
    background_templates: tuple[str, ...]


def _strings(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{path}: {key!r} must be a non-empty list of strings")
    return tuple(value)


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """Read a prompt YAML (None = configs/prompts.yaml); InputError naming what is wrong."""
    p = Path(path) if path is not None else DEFAULT_PROMPTS
    if not p.is_file():
        raise InputError(f"parser.clipsam.prompts_file: {p} does not exist")
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("parts"), dict):
        raise InputError(f"{p}: expected a mapping with 'templates', 'parts', 'background'")
    templates = _strings(data.get("templates"), "templates", p)
    for t in templates:
        if "{}" not in t:
            raise InputError(f"{p}: template {t!r} has no '{{}}' placeholder")
    missing = [name for name in BODY14[1:] if name not in data["parts"]]
    if missing:
        raise InputError(f"{p}: 'parts' lacks {', '.join(missing)}")
    parts = tuple(_strings(data["parts"][name], f"parts.{name}", p) for name in BODY14[1:])
    background = _strings(data.get("background"), "background", p)
    bg_templates = _strings(data.get("background_templates", ["{}"]), "background_templates", p)
    return PromptSet(templates, parts, background, bg_templates)


def encode_ensemble(model: Any, tokenizer: Any, templates: tuple[str, ...], synonyms: tuple[str, ...]) -> torch.Tensor:
    """Unit-norm text embedding [E]: mean of normalised embeddings of every template x synonym."""
    texts = [t.format(s) for t in templates for s in synonyms]
    device = next(model.parameters()).device
    emb = model.encode_text(tokenizer(texts).to(device))
    return F.normalize(F.normalize(emb.float(), dim=-1).mean(0), dim=0)


@dataclass(frozen=True)
class TextBank:
    parts: torch.Tensor
    """float [14, E] unit-norm embeddings of body14 parts 1..14."""
    background: torch.Tensor
    """float [B, E] unit-norm embeddings of the background phrases."""


def _encode_groups(model: Any, tokenizer: Any, groups: list[list[str]], chunk: int = 256) -> torch.Tensor:
    """Unit-norm ensemble embedding [G, E] per group of texts, encoding all texts in few batches."""
    texts = [t for g in groups for t in g]
    device = next(model.parameters()).device
    embs = torch.cat(
        [model.encode_text(tokenizer(texts[i : i + chunk]).to(device)) for i in range(0, len(texts), chunk)]
    )
    embs = F.normalize(embs.float(), dim=-1)
    out, start = [], 0
    for g in groups:
        out.append(F.normalize(embs[start : start + len(g)].mean(0), dim=0))
        start += len(g)
    return torch.stack(out)


def build_text_bank(model: Any, tokenizer: Any, prompts: PromptSet) -> TextBank:
    """Embed all part and background ensembles once (under inference mode); same result as
    `encode_ensemble` per part / background phrase."""
    part_groups = [[t.format(s) for t in prompts.templates for s in syn] for syn in prompts.parts]
    bg_groups = [[t.format(b) for t in prompts.background_templates] for b in prompts.background]
    with torch.inference_mode():
        emb = _encode_groups(model, tokenizer, part_groups + bg_groups)
    return TextBank(parts=emb[: len(part_groups)], background=emb[len(part_groups) :])

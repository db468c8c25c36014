"""One config system: typed dataclasses (a docstring under each field); YAML only serialises them.

`load_config(path, PipelineConfig)` reads YAML strictly (unknown keys and wrong types are errors
naming the key); `save_config(cfg, path)` writes YAML that loads back to an equal config.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from lifting.config import ExportConfig, LiftingConfig
from openhuman.errors import InputError
from openhuman.io import write_text_atomic
from openhuman.parsing.config import ParserConfig
from tracking.config import TrackingConfig

T = TypeVar("T")


@dataclass
class VideoConfig:
    start: int = 0
    """First frame to read (0-based)."""
    stride: int = 1
    """Read every n-th frame."""
    max_frames: int | None = None
    """Stop after this many frames (None = to the end)."""
    max_side: int = 0
    """Shrink frames whose longer side exceeds this many pixels (0 = native size). Everything
    runs, and every output is written, at that working size; a capture's cameras, depth maps and
    2D ground truth are scaled with the frames. 1280 parses a 4K phone clip several times faster."""


@dataclass
class PipelineConfig:
    query: str | None = None
    """Free-text part query ("left hand"); None = all body14 parts."""
    video: VideoConfig = field(default_factory=VideoConfig)
    parser: ParserConfig = field(default_factory=ParserConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    lifting: LiftingConfig = field(default_factory=LiftingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    workers: int = 0
    """Threads that parse and track the views of one time step concurrently (0 = one per CPU
    core, at most one per view; 1 = one view after another)."""
    switch_interval_ms: float = 0.5
    """CPython's thread switch interval while a pipeline runs (Python's own is 5 ms; 0 = leave
    it). mediapipe's graph threads call back into Python for each output and wait for the GIL
    while the other threads track, lift and write; a shorter interval hands it over sooner. On
    the demo-sized capture (2 cores, k=1) 0.5 ms ran 4-5 % more view-frames a second than 5 ms
    in 12 of 15 alternating pairs (docs/RESULTS.md, s18)."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (nested dataclasses become dicts, tuples become lists)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a config dataclass instance, got {type(cfg).__name__}")
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build `cls` from a dict, strictly: unknown keys and wrong types raise InputError."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InputError(f"config section {where or cls.__name__!r} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InputError(f"unknown config key {key!r}; valid keys here: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"config key {key!r} may not be empty")
    if origin is Literal:
        if value not in args:
            raise InputError(f"config key {key!r} is {value!r}; choose one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise InputError(f"config key {key!r} must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"config key {key!r} must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise InputError(f"config key {key!r} must be {tp.__name__}, got {value!r}")
    return value


def load_config(path: str | Path, cls: type[T]) -> T:
    """Read a YAML file into config dataclass `cls` (strict)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"config file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        return from_dict(cls, data)
    except InputError as exc:  # which file the bad key or section is in
        raise InputError(f"config file {p}: {exc}") from None


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a config dataclass as YAML (atomically)."""
    write_text_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under each field of a config dataclass (read from its source)."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        is_field = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        is_doc = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)
        if is_field and is_doc:
            docs[node.target.id] = " ".join(nxt.value.value.split())  # type: ignore[attr-defined]
    return docs


def commented_yaml(cfg: Any, indent: int = 0) -> str:
    """YAML of a config dataclass with each field's docstring as a comment above it."""
    import textwrap

    docs = field_docs(type(cfg))
    pad = " " * indent
    lines: list[str] = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        for line in textwrap.wrap(docs.get(f.name, ""), 100 - indent):
            lines.append(f"{pad}# {line}")
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:")
            lines.append(commented_yaml(value, indent + 2).rstrip("\n"))
        else:
            dumped = yaml.safe_dump({f.name: _plain(value)}, default_flow_style=True, width=1000).strip()
            lines.append(pad + dumped[1:-1].strip())
    return "\n".join(lines) + "\n"

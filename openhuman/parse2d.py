"""Parse a video, image folder or single image and write the 2D outputs for a part query.

`parse_to_dir(source, out_dir, query="left hand")` writes into `out_dir`:
- `masks/<frame:06d>.png`: uint8 label maps (body14 ids of the queried parts, 0 elsewhere);
- `masks.json`: COCO-style RLE annotations (category = body14 id, score, track_id);
- `overlay.mp4` (video / image folder) or `overlay.png` (single image): queried parts highlighted;
  photos of other sizes than the first (`--static`) are scaled into its size, with black bars;
- `summary.json`: frames, the query's resolution, parts found per frame, timings; `"complete"`
  is false while the parse runs and true once every output is written.
Every file is written atomically. The `parse` CLI command is a thin wrapper over this.

`out_dir` must be empty, missing, or a previous parse's output: that output's files are removed
before the new parse writes (so nothing stale is left); any other folder (an `openhuman run`
output, a capture, anything else) is refused. A parse that fails or is interrupted removes what
it wrote; one killed outright leaves summary.json with `"complete": false`, and the next parse
into that folder cleans it up.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openhuman.errors import InputError
from openhuman.io import write_json_atomic, write_png_atomic
from openhuman.ontology import BODY14, NUM_CLASSES
from openhuman.parsing.config import ParserConfig
from openhuman.sources import Source, open_source
from openhuman.types import Frame, PartParse

log = logging.getLogger(__name__)

_OUTPUTS = ("masks", "masks.json", "overlay.mp4", "overlay.png", "summary.json")
"""Everything `parse_to_dir` writes into its folder (plus hidden `.<stem>.*.tmp*` temporaries)."""


@dataclass(frozen=True)
class ParseSummary:
    """What `parse_to_dir` did (also written as summary.json)."""

    out_dir: Path
    frames: int
    part_ids: tuple[int, ...]
    frames_with_parts: int
    """Frames where at least one queried part was found."""
    parse_fps: float
    """Frames per second of the parser alone."""
    total_s: float


def resolve_query(query: str | None) -> tuple[tuple[int, ...], dict[str, Any]]:
    """Part ids for a free-text query (None = every body14 part) and a JSON description."""
    if query is None:
        ids = tuple(range(1, NUM_CLASSES))
        return ids, {"text": None, "part_ids": list(ids), "parts": list(BODY14[1:])}
    from openhuman.query import resolve

    res = resolve(query)
    if not res.part_ids:
        raise InputError(f"query {query!r} matches no body part; try e.g. 'left hand', 'head' or 'legs'")
    info = {
        "text": res.text, "part_ids": list(res.part_ids), "parts": [BODY14[i] for i in res.part_ids],
        "score": float(res.score), "approximate": bool(res.approximate), "explanation": res.explanation,
    }  # fmt: skip
    return tuple(res.part_ids), info


def parse_to_dir(
    source: str | os.PathLike[str] | Source,
    out_dir: str | os.PathLike[str],
    query: str | None = None,
    parser_cfg: ParserConfig | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    parse_fn: Callable[[Frame], PartParse] | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> ParseSummary:
    """Parse every selected frame of `source` and write masks, RLE JSON, overlay and summary.

    Args:
        source: video file, image folder or single image (a path, or opened by `open_source`, whose
            `max_side` sets the working size).
        out_dir: output folder: created, empty, or a previous parse's output (replaced); else InputError.
        query: free text ("left hand"); None = all body14 parts.
        parser_cfg: parser settings; a single image switches mediapipe to static mode.
        stride, max_frames: frame selection.
        parse_fn: use this instead of building a parser (e.g. a tracker's `step`).
        on_frame: progress callback, called with the number of frames done.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    _check_out(out)
    part_ids, query_info = resolve_query(query)
    src = source if isinstance(source, Source) else open_source(source)
    if len(src.view_ids) > 1:
        raise InputError(f"{src.path} is a multi-view capture; parse it with `openhuman run {src.path}`")
    single = src.is_single_image
    cfg = parser_cfg or ParserConfig()
    if single:
        cfg = dataclasses.replace(cfg, mediapipe=dataclasses.replace(cfg.mediapipe, static_image_mode=True))
    photos = cfg.mediapipe.static_image_mode  # unrelated photos: an image folder may mix sizes
    frames = (views[0] for views in src.synced(0, stride, max_frames, photos=photos))
    parser = None
    if parse_fn is None:
        from openhuman.parsing.base import Parser

        parser = Parser.from_config(cfg)
        parse_fn = parser
    created = not out.exists()
    summary: dict[str, Any] = {
        "source": str(src.path), "complete": False, "frames": 0, "query": query_info, "backend": cfg.backend,
        "parts_per_frame": [],
    }  # fmt: skip
    try:
        _remove_outputs(out)
        write_json_atomic(out / "summary.json", summary)  # marks the folder as this parse's, unfinished
        stats = _run(frames, parse_fn, part_ids, out, src, stride, on_frame)
        total = time.perf_counter() - t_start
        n = len(stats["per_frame"])
        fps = n / stats["parse_s"] if stats["parse_s"] > 0 else 0.0
        summary.update(
            complete=True, frames=n, parts_per_frame=stats["per_frame"],
            timings={"parse_s": round(stats["parse_s"], 3), "total_s": round(total, 3), "parse_fps": round(fps, 2)},
            outputs={"masks": "masks/", "rle": "masks.json", "overlay": stats["overlay"]},
        )  # fmt: skip
        write_json_atomic(out / "summary.json", summary)
    except BaseException:
        _remove_outputs(out)  # nothing half-written stays, nor the folder if this parse made it
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    finally:
        if parser is not None:
            parser.close()
    with_parts = sum(1 for f in stats["per_frame"] if f["parts"])
    return ParseSummary(out, n, part_ids, with_parts, fps, total)


def _is_output(name: str) -> bool:
    """A name `parse_to_dir` writes into its folder: an output or an atomic write's temporary."""
    return name in _OUTPUTS or (name.startswith((".masks.", ".overlay.", ".summary.")) and ".tmp" in name)


def _check_out(out: Path) -> None:
    """InputError unless `out` is missing, an empty folder or a previous parse's output."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder; choose a new folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        previous = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    others = sorted(p.name for p in out.iterdir() if not _is_output(p.name))
    if not isinstance(previous, dict) or "parts_per_frame" not in previous or others:
        what = f"holds {others[0]!r}" if others else "has no parse summary.json"
        raise InputError(
            f"--out {out} is not empty and not a previous `openhuman parse` output ({what}); choose a new folder"
        )


def _remove_outputs(out: Path) -> None:
    """Delete what `parse_to_dir` writes in `out` (checked by `_check_out`: nothing else is there)."""
    if not out.is_dir():
        return
    for p in out.iterdir():
        if _is_output(p.name) and p.is_dir():
            shutil.rmtree(p)
        elif _is_output(p.name):
            p.unlink()


def _run(
    frames: Iterable[Frame],
    parse_fn: Callable[[Frame], PartParse],
    part_ids: tuple[int, ...],
    out: Path,
    src: Source,
    stride: int,
    on_frame: Callable[[int], None] | None,
) -> dict[str, Any]:
    from openhuman.masks import MaskExporter, draw_overlay, masks_for_query
    from openhuman.video import VideoWriter

    per_frame: list[dict[str, Any]] = []
    parse_s = 0.0
    size: tuple[int, int] | None = None  # the overlay video's: the first frame's
    single = src.is_single_image
    overlay_name = "overlay.png" if single else "overlay.mp4"
    # every stride-th frame: at fps / stride the overlay plays in real time
    writer = None if single else VideoWriter(out / overlay_name, fps=src.fps / stride)
    # the video writer finishes (or, on error, discards its file) before the mask exporter does
    with MaskExporter(out, part_ids) as exporter, writer if writer is not None else nullcontext():
        for frame in _nonempty(frames, src.path):
            t0 = time.perf_counter()
            parse = parse_fn(frame)
            parse_s += time.perf_counter() - t0
            pm = masks_for_query(parse, part_ids)
            exporter.add(pm, frame.height, frame.width)
            found = sorted({BODY14[int(i)] for i in pm.labels})
            per_frame.append({"frame": frame.index, "parts": found, "people": parse.num_people})
            overlay = draw_overlay(frame.rgb, parse.labels, highlight_ids=part_ids)
            if writer is None:
                write_png_atomic(out / overlay_name, overlay)
            else:
                size = size or (frame.height, frame.width)
                writer.write(letterbox(overlay, size))
            if on_frame is not None:
                on_frame(len(per_frame))
    return {"per_frame": per_frame, "parse_s": parse_s, "overlay": overlay_name}


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`rgb` scaled to fit (height, width) `size`, keeping its aspect ratio, centred on black."""
    import cv2

    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb
    scale = min(h / rgb.shape[0], w / rgb.shape[1])
    sh, sw = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - sh) // 2, (w - sw) // 2
    out[y : y + sh, x : x + sw] = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    return out


def _nonempty(frames: Iterable[Frame], source: Any) -> Iterator[Frame]:
    n = 0
    for f in frames:
        n += 1
        yield f
    if n == 0:
        raise InputError(f"{source}: no frames selected (check --stride/--max-frames)")


def count_frames(src: Source, stride: int = 1, max_frames: int | None = None) -> int | None:
    """Number of frames `parse_to_dir` will read from `src` (None when unknown), for progress bars."""
    if src.frame_count is None:
        return None
    n = (src.frame_count + stride - 1) // max(stride, 1)
    return min(n, max_frames) if max_frames is not None else n

"""2D parsing evaluation against a capture's ground truth (gt/2d body14 label maps).

`evaluate_capture(capture_dir, parser_cfg)` parses every view and frame, accumulates confusion
matrices per view and overall, and reports per-class IoU and mIoU (parts only, background
excluded, as usual for human parsing) in body14 and in PASCAL-Person-Part's 7 classes. Left and
right are scored as the person's own sides: a mirrored answer counts as wrong.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openhuman.errors import InputError
from openhuman.metrics import confusion_matrix, iou_per_class, mean_iou
from openhuman.ontology import BODY14, NUM_CLASSES, taxonomy
from openhuman.parsing.config import ParserConfig

log = logging.getLogger(__name__)

PPP = "pascal_person_part"


@dataclass
class EvalResult:
    """Confusion matrices (rows = ground truth, columns = prediction) and derived scores."""

    views: dict[str, np.ndarray] = field(default_factory=dict)
    """view id -> int64 [15, 15] body14 confusion."""
    view_frames: dict[str, int] = field(default_factory=dict)
    """view id -> parsed frames."""
    view_seconds: dict[str, float] = field(default_factory=dict)
    """view id -> seconds inside the parser (per-view speed)."""
    view_first_seconds: dict[str, float] = field(default_factory=dict)
    """view id -> seconds of the view's first frame (includes model start-up)."""

    @property
    def frames(self) -> int:
        """Parsed view-frames."""
        return sum(self.view_frames.values())

    @property
    def parse_seconds(self) -> float:
        """Time spent inside the parser."""
        return sum(self.view_seconds.values())

    def steady_fps(self, view: str) -> float | None:
        """Frames/s of a view after its first frame (model start-up excluded); None if < 2 frames."""
        n = self.view_frames.get(view, 0) - 1
        t = self.view_seconds.get(view, 0.0) - self.view_first_seconds.get(view, 0.0)
        return n / t if n > 0 and t > 0 else None

    @property
    def overall(self) -> np.ndarray:
        """int64 [15, 15] body14 confusion summed over views."""
        return np.sum(list(self.views.values()), axis=0) if self.views else np.zeros((NUM_CLASSES,) * 2, np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores: overall and per view, in body14 and PASCAL-Person-Part."""
        out: dict[str, Any] = {
            "frames": self.frames,
            "parse_fps": round(self.frames / self.parse_seconds, 2) if self.parse_seconds > 0 else None,
            "overall": scores_from_confusion(self.overall),
            "views": {v: scores_from_confusion(c) for v, c in self.views.items()},
            "view_steady_fps": {v: _round(f) for v in self.view_frames if (f := self.steady_fps(v)) is not None},
            "view_fps": {
                v: round(self.view_frames[v] / t, 2)
                for v, t in self.view_seconds.items()
                if t > 0 and v in self.view_frames
            },
        }
        return out


def _collapse(conf: np.ndarray, mapping: np.ndarray, num: int) -> np.ndarray:
    """Confusion matrix in another taxonomy: sum body14 rows/columns into their target classes."""
    out = np.zeros((num, num), np.int64)
    np.add.at(out, (mapping[:, None], mapping[None, :]), conf)
    return out


def _named(ious: np.ndarray, names: tuple[str, ...]) -> dict[str, float | None]:
    return {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(names, ious, strict=True)}


def scores_from_confusion(conf: np.ndarray) -> dict[str, Any]:
    """Per-class IoU and mIoU (parts only) for a body14 confusion, in body14 and PPP."""
    ppp = taxonomy(PPP)
    conf_ppp = _collapse(conf, ppp.from_body14, len(ppp.classes))
    iou14, iou7 = iou_per_class(conf), iou_per_class(conf_ppp)
    fg_gt, fg_pred = conf[1:, :].sum(), conf[:, 1:].sum()
    fg_tp = conf[1:, 1:].sum()
    union = fg_gt + fg_pred - fg_tp
    return {
        "body14": {"miou": _round(mean_iou(conf)), "iou": _named(iou14, BODY14)},
        PPP: {"miou": _round(mean_iou(conf_ppp)), "iou": _named(iou7, ppp.classes)},
        "person_iou": _round(fg_tp / union) if union else None,
        "pixel_accuracy": _round(np.trace(conf) / conf.sum()) if conf.sum() else None,
    }


def _round(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 4)


def evaluate_capture(
    capture_dir: str | os.PathLike[str],
    parser_cfg: ParserConfig | None = None,
    max_frames: int | None = None,
    stride: int = 1,
    on_frame: Callable[[int], None] | None = None,
) -> EvalResult:
    """Parse each view of a capture and compare with gt/2d.

    Args:
        capture_dir: a capture directory with gt/2d (see openhuman.capture).
        parser_cfg: which backend and its settings (default: the mediapipe backend).
        max_frames: frames per view (None = all).
        stride: evaluate every n-th frame (video-mode parsers then see fewer frames).
        on_frame: called with the number of view-frames done after each one (progress).

    Raises:
        InputError: no ground truth in the capture.
    """
    from openhuman.capture import Capture
    from openhuman.parsing.base import Parser

    cap = Capture.open(capture_dir)
    if not cap.has_gt_2d:
        raise InputError(f"{Path(capture_dir)} has no gt/2d ground truth to evaluate against")
    parser = Parser.from_config(parser_cfg or ParserConfig())
    result = EvalResult()
    try:
        for view in cap.view_ids:
            parser.reset()
            conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
            result.view_frames[view], result.view_seconds[view] = 0, 0.0
            for frame in cap.frames(view, stride=stride, max_frames=max_frames):
                t0 = time.perf_counter()
                parse = parser(frame)
                dt = time.perf_counter() - t0
                result.view_seconds[view] += dt
                if not result.view_frames[view]:
                    result.view_first_seconds[view] = dt
                result.view_frames[view] += 1
                conf += confusion_matrix(parse.labels, cap.gt_2d(view, frame.index), NUM_CLASSES)
                if on_frame is not None:
                    on_frame(result.frames)
            result.views[view] = conf
    finally:
        parser.close()
    return result


def results_table(result: EvalResult, title: str = "2D parsing IoU") -> Any:
    """A rich Table: one row per class (body14, then PASCAL-Person-Part = "PPP"), one column per
    view and overall."""
    from rich.table import Table

    views = list(result.views)
    table = Table(title=title)
    table.add_column("taxonomy")
    table.add_column("class")
    for v in views:
        table.add_column(v, justify="right")
    table.add_column("overall", justify="right", style="bold")
    per_view = [scores_from_confusion(result.views[v]) for v in views]
    overall = scores_from_confusion(result.overall)

    def cell(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    ppp = taxonomy(PPP)
    for tax, names in (("body14", BODY14[1:]), (PPP, ppp.classes[1:])):
        shown = "PPP" if tax == PPP else tax
        for name in names:
            table.add_row(shown, name, *[cell(s[tax]["iou"][name]) for s in per_view], cell(overall[tax]["iou"][name]))
        table.add_row(
            shown,
            "[b]mIoU[/b]",
            *[cell(s[tax]["miou"]) for s in per_view],
            cell(overall[tax]["miou"]),
            end_section=True,
        )
    table.add_row("", "person IoU", *[cell(s["person_iou"]) for s in per_view], cell(overall["person_iou"]))
    return table

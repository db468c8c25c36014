"""`openhuman demo`: the whole system on a fresh machine, offline.

Synthesises a small multi-view capture from pybullet's bundled motion capture (exact ground
truth), runs the pipeline on the embedded default backend for one query (all body14 parts are
labelled too), writes every output, and scores 2D mIoU, 3D mIoU and flip rates against the
ground truth. Re-running into the same folder reuses the capture and resumes the run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from openhuman.config import PipelineConfig
from openhuman.pipeline import Pipeline, RunSummary

log = logging.getLogger(__name__)


def make_demo_capture(path: Path, clip: str, views: int, frames: int, size: str) -> Path:
    """Generate the demo capture at `path` unless a valid one is already there."""
    from openhuman.capture import check_capture
    from openhuman.synth import SynthConfig, generate_capture
    from openhuman.synth.generate import parse_size

    if path.is_dir() and not check_capture(path):
        log.info("reusing the synthetic capture in %s", path)
        return path
    width, height = parse_size(size)
    cfg = SynthConfig(clips=(clip,), views=views, frames=frames, width=width, height=height)
    log.info("synthesising %d views x %d frames of '%s' at %dx%d", views, frames, clip, width, height)
    return generate_capture(path, cfg)


def run_demo(
    out: str | Path,
    clip: str = "walk",
    views: int = 4,
    frames: int = 40,
    size: str = "640x480",
    query: str = "left hand",
    progress: bool = True,
) -> RunSummary:
    """Synthesise a capture into `out/capture` and run the pipeline into `out/run`."""
    out = Path(out)
    capture = make_demo_capture(out / "capture", clip, views, frames, size)
    cfg = PipelineConfig(query=query)
    return Pipeline(cfg).run(capture, out / "run", progress=progress)

"""`openhuman demo`: the whole system on a fresh machine, offline.

Synthesises a small multi-view capture from pybullet's bundled motion capture (exact ground
truth), runs the pipeline on the embedded default backend for one query (all body14 parts are
labelled too), writes every output, and scores 2D mIoU, 3D mIoU and flip rates against the
ground truth. Re-running into the same folder reuses the capture and resumes the run; a capture
or run made with other settings (or by another version) is made again.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from openhuman.config import PipelineConfig
from openhuman.outputs import read_state
from openhuman.pipeline import Pipeline, RunSummary, config_fingerprint
from openhuman.synth import SynthConfig

log = logging.getLogger(__name__)


def make_demo_capture(path: Path, clip: str, views: int, frames: int, size: str) -> Path:
    """Generate the demo capture at `path` unless a valid one made with the same settings is
    already there (one made with other settings is replaced: the demo owns its folder)."""
    from openhuman.capture import check_capture
    from openhuman.synth import generate_capture
    from openhuman.synth.generate import parse_size

    width, height = parse_size(size)
    cfg = SynthConfig(clips=(clip,), views=views, frames=frames, width=width, height=height)
    if path.is_dir() and not check_capture(path):
        if _synth_settings(path) == _synth_settings(cfg):
            log.info("reusing the synthetic capture in %s", path)
            return path
        log.info("the capture in %s was made with other settings: making it again", path)
        shutil.rmtree(path)
    log.info("synthesising %d views x %d frames of '%s' at %dx%d", views, frames, clip, width, height)
    return generate_capture(path, cfg)


def _synth_settings(src: Path | SynthConfig) -> tuple:
    """(clips, views, frames, width, height, format) of a SynthConfig (this version's format) or of
    the synth record in a capture's capture.json (None fields when it has none)."""
    from openhuman.synth.generate import SYNTH_FORMAT

    if isinstance(src, SynthConfig):
        d, fmt = asdict(src), SYNTH_FORMAT
    else:
        synth = json.loads((src / "capture.json").read_text()).get("extra", {}).get("synth", {})
        d, fmt = synth.get("config", {}), synth.get("format", 1)
    keys = ("clips", "views", "frames", "width", "height")
    return (*(d.get(k) if k != "clips" else list(d.get(k) or []) for k in keys), fmt)


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
    run = out / "run"
    state = read_state(run)
    if state is not None and state.get("fingerprint") != config_fingerprint(cfg, capture):
        # the demo owns its run folder: a run of another query, capture or version starts afresh
        log.info("%s holds a demo run with other settings: starting it afresh", run)
        shutil.rmtree(run)
    return Pipeline(cfg).run(capture, run, progress=progress)

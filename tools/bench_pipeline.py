"""Pipeline benchmark: per-stage and end-to-end throughput, and peak memory vs clip length.

Targets (issue "End to end"): end-to-end throughput >= 70% of the parse stage alone (the
pipeline is model-bound, not glue-bound) and peak memory for 600 frames within 15% of 60 frames
(streaming). Throughput is counted in view-frames per second.

    .venv/bin/python tools/bench_pipeline.py                 # demo-sized capture + memory test
    .venv/bin/python tools/bench_pipeline.py --frames 20 --skip-memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")

MEMORY_CHILD = """
import resource, sys, json
from openhuman.config import PipelineConfig
from openhuman.pipeline import Pipeline
cfg = PipelineConfig(query="left hand")
cfg.export.formats = {formats}
s = Pipeline(cfg).run(sys.argv[1], sys.argv[2], progress=False)
print(json.dumps({{"frames": s.frames, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def make_capture(root: Path, frames: int, views: int, size: tuple[int, int], clip: str) -> Path:
    from openhuman.synth import SynthConfig, generate_capture

    path = root / f"{clip}_{views}v_{frames}f_{size[0]}x{size[1]}"
    if not path.exists():
        generate_capture(path, SynthConfig(clips=(clip,), views=views, frames=frames, width=size[0], height=size[1]))
    return path


def parse_only(capture: Path) -> tuple[float, int]:
    """Seconds to decode + parse every view-frame with the default parser, and the count."""
    from openhuman.capture import Capture
    from openhuman.parsing import Parser
    from openhuman.parsing.config import ParserConfig

    parser = Parser.from_config(ParserConfig())
    cap = Capture.open(capture)
    n = 0
    t0 = time.perf_counter()
    for frames in cap.synced():
        for f in frames:
            parser(f)
            n += 1
    return time.perf_counter() - t0, n


def end_to_end(capture: Path, out: Path, keyframe_interval: int) -> tuple[float, object]:
    from openhuman.config import PipelineConfig
    from openhuman.pipeline import Pipeline

    cfg = PipelineConfig(query="left hand")
    cfg.tracking.keyframe_interval = keyframe_interval
    pipe = Pipeline(cfg)  # model loading is not part of the throughput
    t0 = time.perf_counter()
    summary = pipe.run(capture, out, progress=False)
    return time.perf_counter() - t0, summary


def peak_memory(capture: Path, out: Path, formats: list[str]) -> dict:
    code = MEMORY_CHILD.format(formats=formats)
    res = subprocess.run([sys.executable, "-c", code, str(capture), str(out)], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--clip", default="walk")
    ap.add_argument("--memory-frames", default="60,600", help="Clip lengths compared for peak memory.")
    ap.add_argument("--memory-size", default="320x240")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--workdir", default=None, help="Keep captures here (default: a temp dir).")
    ap.add_argument("--out", default="bench_out/pipeline.json")
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    from openhuman.synth.generate import parse_size

    size = parse_size(args.size)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pipeline_"))
    capture = make_capture(work, args.frames, args.views, size, args.clip)
    t_parse, n = parse_only(capture)
    result: dict = {"capture": {"frames": args.frames, "views": args.views, "size": args.size, "clip": args.clip}}
    result["parse_only"] = {"seconds": round(t_parse, 3), "view_frames_per_s": round(n / t_parse, 2)}
    table = Table(title="openhuman pipeline benchmark")
    for col in ("run", "seconds", "view-frames/s", "vs parse-only", "per-stage seconds", "mIoU 2D / 3D"):
        table.add_column(col)
    table.add_row("parse only", f"{t_parse:.1f}", f"{n / t_parse:.1f}", "1.00", "", "")
    result["end_to_end"] = {}
    for k in (1, 4):
        wall, s = end_to_end(capture, work / f"run_k{k}_{time.time_ns()}", k)
        fps = n / wall
        stages = {k2: v for k2, v in s.stage_seconds.items() if v > 0.01}  # type: ignore[attr-defined]
        m = s.metrics  # type: ignore[attr-defined]
        result["end_to_end"][f"k={k}"] = {"seconds": round(wall, 3), "view_frames_per_s": round(fps, 2),
                                          "ratio_to_parse_only": round(fps / (n / t_parse), 3),
                                          "stage_seconds": stages, "metrics": m}  # fmt: skip
        table.add_row(f"end to end, keyframe k={k}", f"{wall:.1f}", f"{fps:.1f}", f"{fps / (n / t_parse):.2f}",
                      ", ".join(f"{a} {b:.1f}" for a, b in stages.items()),
                      f"{m.get('miou_2d', float('nan')):.3f} / {m.get('miou_3d', float('nan')):.3f}")  # fmt: skip
    console = Console()
    console.print(table)
    if not args.skip_memory:
        mem_table = Table(title="peak memory (fresh process, all outputs written)")
        for col in ("frames", "peak RSS MB"):
            mem_table.add_column(col)
        msize = parse_size(args.memory_size)
        result["memory"] = {}
        for frames in [int(x) for x in args.memory_frames.split(",")]:
            cap = make_capture(work, frames, 2, msize, args.clip)
            mem = peak_memory(cap, work / f"mem_{frames}_{time.time_ns()}", ["ply", "npz", "png", "rle", "overlay"])
            result["memory"][str(frames)] = mem
            mem_table.add_row(str(frames), f"{mem['peak_rss_mb']:.0f}")
        lens = sorted(result["memory"], key=int)
        growth = result["memory"][lens[-1]]["peak_rss_mb"] / result["memory"][lens[0]]["peak_rss_mb"] - 1
        result["memory_growth"] = round(growth, 4)
        console.print(mem_table)
        console.print(f"peak memory growth {lens[0]} -> {lens[-1]} frames: {growth:+.1%} (target within 15%)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

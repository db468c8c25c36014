"""Pipeline benchmark: per-stage and end-to-end throughput, and peak memory vs clip length.

Targets (issue "End to end"): end-to-end throughput >= 70% of the parse stage alone (the
pipeline is model-bound, not glue-bound) and peak memory for 600 frames within 15% of 60 frames
(streaming). Throughput is counted in view-frames per second, steady state (the first time step,
which holds the model start-up, left out on both sides) and including start-up. A user's run
does not score against ground truth; the scored runs show what scoring adds, and the
stream-only rows (`Pipeline.stream`, no files written) what writing the files costs. A second
table splits the CPU time of the parse-only and unscored end-to-end runs by thread (main, view
workers, export thread, the parser's own threads, other native threads), in CPU milliseconds per
view-frame: what the glue around the model costs, and how many cores the run kept busy.

    .venv/bin/python tools/bench_pipeline.py                 # demo-sized capture + memory test
    .venv/bin/python tools/bench_pipeline.py --frames 20 --skip-memory
    .venv/bin/python tools/bench_pipeline.py --skip-memory --ratio-pairs 5    # k=1 ratio: median of 5 pairs
    .venv/bin/python tools/bench_pipeline.py --frames 20 --skip-memory --backend schnet --checkpoint runs/schnet_gpu_mix/best.pt
    .venv/bin/python tools/bench_pipeline.py --skip-throughput --memory-repeats 3   # memory only, three pairs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")

MEMORY_FORMATS = ["ply", "npz", "png", "rle", "overlay"]
MEMORY_CHILD = """
import sys, json, threading, time
from openhuman.config import PipelineConfig
from openhuman.pipeline import Pipeline

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) / 1024

samples, done = [], threading.Event()
def sample():  # VmRSS twice a second: does memory keep growing once the run is under way?
    t0 = time.perf_counter()
    while not done.wait(0.5):
        samples.append((time.perf_counter() - t0, status("VmRSS:")))
threading.Thread(target=sample, daemon=True).start()
cfg = PipelineConfig(query="left hand")
cfg.export.formats = {formats}
cfg.video.max_frames = int(sys.argv[3])
s = Pipeline(cfg).run(sys.argv[1], sys.argv[2], progress=False)
done.set()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) benchmark process
at = lambda f: samples[min(int(f * len(samples)), len(samples) - 1)][1] if samples else None
last = max((r for t, r in samples if t >= 0.75 * samples[-1][0]), default=None)
print(json.dumps({{"frames": s.frames, "peak_rss_mb": status("VmHWM:"), "seconds": samples[-1][0] if samples else 0,
                  "rss_mb_at": {{"25%": at(0.25), "50%": at(0.5), "75%": at(0.75), "last quarter max": last}}}}))
"""


def make_capture(root: Path, frames: int, views: int, size: tuple[int, int], clip: str) -> Path:
    """A synthetic capture (walking on the spot, so long clips stay inside the camera ring)."""
    from openhuman.synth import SynthConfig, generate_capture

    path = root / f"{clip}_{views}v_{frames}f_{size[0]}x{size[1]}"
    if not path.exists():
        cfg = SynthConfig(
            clips=(clip,), views=views, frames=frames, width=size[0], height=size[1], root_motion="in_place"
        )
        generate_capture(path, cfg)
    return path


def parser_config(args: argparse.Namespace) -> Any:
    """The benchmarked parser: the default (mediapipe) or `--backend schnet --checkpoint PATH`."""
    from openhuman.parsing.config import ParserConfig
    from openhuman.parsing.schnet.config import SchnetConfig

    return ParserConfig(backend=args.backend, schnet=SchnetConfig(checkpoint=args.checkpoint))


class ThreadCpu:
    """CPU seconds of this process by thread role while the block runs. Roles: the main thread,
    the pipeline's view workers and export thread, the parser's own native threads (mediapipe
    names its threads after itself) and other native threads (OpenCV, BLAS).

    Linux only (elsewhere nothing is recorded): each thread's CPU time is read from
    /proc/self/task every 0.25 s, so a thread that ends inside the block loses up to 0.25 s, the
    time after its last reading."""

    def __init__(self) -> None:
        self._samples: list[tuple[float, dict[str, tuple[str, float]]]] = []
        self._names: dict[str, str] = {}
        self._done = threading.Event()
        self._t0 = 0.0

    def _role(self, tid: str, comm: str) -> str:
        name = self._names.get(tid)
        if name is None:
            return "parser threads" if comm.startswith("mediapipe") else "other native threads"
        if name.startswith("openhuman-view"):
            return "view workers"
        if name.startswith("openhuman-export"):
            return "export thread"
        return "main" if name == "MainThread" else "other python threads"

    def _sample(self) -> None:
        self._names.update({str(t.native_id): t.name for t in threading.enumerate()})
        snap = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            except OSError:
                continue
            comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            snap[tid] = (comm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        self._samples.append((time.perf_counter() - self._t0, snap))

    def __enter__(self) -> ThreadCpu:
        self._t0 = time.perf_counter()
        if Path("/proc/self/task").is_dir():
            self._sample()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._done.wait(0.25):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "_thread"):
            self._done.set()
            self._thread.join()
            self._sample()

    def last(self, seconds: float) -> dict[str, float]:
        """CPU seconds by role in the block's last `seconds` (from the last sample before them; a
        thread that ended meanwhile counts up to its last sample)."""
        if not self._samples:
            return {}
        begin = max(self._samples[-1][0] - seconds, self._samples[0][0])
        base: dict[str, float] = {}  # each thread's CPU at the window's start (0 if it began later)
        last: dict[str, tuple[str, float]] = {}
        for t, snap in self._samples:
            for tid, (comm, cpu) in snap.items():
                if t <= begin:
                    base[tid] = cpu
                last[tid] = (comm, cpu)
        out: dict[str, float] = {}
        for tid, (comm, cpu) in last.items():
            if tid != str(self._thread.native_id):
                role = self._role(tid, comm)
                out[role] = out.get(role, 0.0) + cpu - base.get(tid, 0.0)
        return out


def parse_only(capture: Path, parser_cfg: Any) -> tuple[float, float, int, int]:
    """Decode + parse every view-frame with the benchmarked parser, one view after another:
    (seconds in all, seconds for the first time step (model start-up), view-frames, views).
    Under the pipeline's thread switch interval, as the end-to-end runs."""
    from openhuman.capture import Capture
    from openhuman.config import PipelineConfig
    from openhuman.parsing import Parser
    from openhuman.pipeline import switch_interval

    parser = Parser.from_config(parser_cfg)
    cap = Capture.open(capture)
    n, first = 0, 0.0
    with switch_interval(PipelineConfig().switch_interval_ms):
        t0 = time.perf_counter()
        for frames in cap.synced():
            for f in frames:
                parser(f)
                n += 1
            first = first or time.perf_counter() - t0
        return time.perf_counter() - t0, first, n, len(cap.view_ids)


def _pipeline(keyframe_interval: int, parser_cfg: Any) -> Any:
    """The benchmarked pipeline: default config, query "left hand", keyframe interval k."""
    from openhuman.config import PipelineConfig
    from openhuman.pipeline import Pipeline

    cfg = PipelineConfig(query="left hand", parser=parser_cfg)
    cfg.tracking.keyframe_interval = keyframe_interval
    return Pipeline(cfg)


def end_to_end(
    capture: Path, out: Path, keyframe_interval: int, evaluate: bool, parser_cfg: Any
) -> tuple[float, object]:
    pipe = _pipeline(keyframe_interval, parser_cfg)
    t0 = time.perf_counter()
    summary = pipe.run(capture, out, progress=False, evaluate=evaluate)
    return time.perf_counter() - t0, summary


def stream_only(capture: Path, keyframe_interval: int, parser_cfg: Any) -> tuple[float, float]:
    """`Pipeline.stream` (parse, track, lift, 4D smoothing; no files written, no scoring):
    (seconds in all, seconds until the first time step was done)."""
    pipe = _pipeline(keyframe_interval, parser_cfg)
    t0, first = time.perf_counter(), 0.0
    for _ in pipe.stream(capture):
        first = first or time.perf_counter() - t0
    return time.perf_counter() - t0, first


def peak_memory(capture: Path, out: Path, formats: list[str], frames: int) -> dict:
    """Run the first `frames` frames of `capture` in a fresh process: its frame count, peak RSS,
    run time, and RSS at 25 / 50 / 75 % of that time and its largest value in the last quarter."""
    code = MEMORY_CHILD.format(formats=formats)
    cmd = [sys.executable, "-c", code, str(capture), str(out), str(frames)]
    res = subprocess.run(cmd, capture_output=True, text=True)
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
    ap.add_argument("--memory-repeats", type=int, default=1, help="Pairs of memory runs (peak RSS varies by a few %%).")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--workdir", default=None, help="Keep captures here (default: a temp dir).")
    ap.add_argument(
        "--backend",
        choices=["mediapipe", "schnet"],
        default="mediapipe",
        help="parser backend (throughput only; the memory test uses the default)",
    )
    ap.add_argument("--checkpoint", default=None, help="SCHNet checkpoint (with --backend schnet)")
    ap.add_argument(
        "--ratio-pairs",
        type=int,
        default=1,
        help="Alternating (parse only, end to end k=1) pairs behind the k=1 ratio; above 1 the median and range are reported.",
    )
    ap.add_argument("--out", default="bench_out/pipeline.json")
    args = ap.parse_args()
    from openhuman.synth.generate import parse_size

    size = parse_size(args.size)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pipeline_"))
    out = Path(args.out)
    result: dict = json.loads(out.read_text()) if out.is_file() else {}
    console = Console(width=160)
    if not args.skip_throughput:
        result.update(throughput(work, args, size, console))
    if not args.skip_memory:
        result.update(memory(work, args, console))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out}")


def throughput(work: Path, args: argparse.Namespace, size: tuple[int, int], console: Console) -> dict:
    """Parse-only vs end-to-end view-frames/s. "Steady" leaves out the first time step (model
    and library start-up: mediapipe builds its graphs on a view's first frame, ~0.5 s each) on
    both sides; "incl. start-up" counts everything."""
    from rich.table import Table

    capture = make_capture(work, args.frames, args.views, size, args.clip)
    parser_cfg = parser_config(args)
    with ThreadCpu() as cpu:
        t_parse, t_first, n, views = parse_only(capture, parser_cfg)
    cpu_rows = {"parse only": cpu.last(t_parse - t_first)}
    steady_parse = (n - views) / (t_parse - t_first)
    from openhuman.config import PipelineConfig

    result: dict = {"capture": {"frames": args.frames, "views": args.views, "size": args.size, "clip": args.clip},
                    "backend": args.backend, "checkpoint": args.checkpoint, "cpus": os.cpu_count(),
                    "switch_interval_ms": PipelineConfig().switch_interval_ms}  # fmt: skip
    result["parse_only"] = {"seconds": round(t_parse, 3), "startup_seconds": round(t_first, 3),
                            "view_frames_per_s": round(n / t_parse, 2),
                            "steady_view_frames_per_s": round(steady_parse, 2)}  # fmt: skip
    table = Table(title="openhuman pipeline benchmark (view-frames/s; steady = first time step left out)")
    cols = ("run", "seconds", "steady vf/s", "steady vs parse-only", "vs parse-only incl. start-up",
            "per-stage seconds", "mIoU 2D / 3D")  # fmt: skip
    for col in cols:
        table.add_column(col)
    table.add_row("parse only", f"{t_parse:.1f}", f"{steady_parse:.1f}", "1.00", "1.00", "", "")
    result["end_to_end"] = {}
    for k in (1, 4):
        for scored in (False, True):
            with ThreadCpu() as cpu:
                wall, s = end_to_end(capture, work / f"run_k{k}_{time.time_ns()}", k, scored, parser_cfg)
            if not scored:
                cpu_rows[f"end to end, k={k}"] = cpu.last(wall - s.startup_seconds)  # type: ignore[attr-defined]
            startup = s.startup_seconds  # type: ignore[attr-defined]
            steady = (n - views) / (wall - startup)
            stages = {k2: v for k2, v in s.stage_seconds.items() if v > 0.01}  # type: ignore[attr-defined]
            m = s.metrics  # type: ignore[attr-defined]
            name = f"k={k}" + (" scored" if scored else "")
            result["end_to_end"][name] = {"seconds": round(wall, 3), "startup_seconds": startup,
                                          "view_frames_per_s": round(n / wall, 2),
                                          "steady_view_frames_per_s": round(steady, 2),
                                          "steady_ratio_to_parse_only": round(steady / steady_parse, 3),
                                          "ratio_to_parse_only": round((n / wall) / (n / t_parse), 3),
                                          "stage_seconds": stages, "metrics": m}  # fmt: skip
            label = f"end to end, keyframe k={k}" + (", scored against GT" if scored else "")
            miou = f"{m.get('miou_2d', float('nan')):.3f} / {m.get('miou_3d', float('nan')):.3f}" if m else ""
            table.add_row(label, f"{wall:.1f}", f"{steady:.1f}", f"{steady / steady_parse:.2f}",
                          f"{t_parse / wall:.2f}", ", ".join(f"{a} {b:.1f}" for a, b in stages.items()), miou)  # fmt: skip
    for k in (1, 4):  # what writing the files costs: the same stages without the export thread
        wall, startup = stream_only(capture, k, parser_cfg)
        steady = (n - views) / (wall - startup)
        result["end_to_end"][f"k={k} stream"] = {"seconds": round(wall, 3), "startup_seconds": round(startup, 3),
                                                 "steady_view_frames_per_s": round(steady, 2),
                                                 "steady_ratio_to_parse_only": round(steady / steady_parse, 3),
                                                 "ratio_to_parse_only": round((n / wall) / (n / t_parse), 3)}  # fmt: skip
        table.add_row(f"stream only (no files written), k={k}", f"{wall:.1f}", f"{steady:.1f}",
                      f"{steady / steady_parse:.2f}", f"{t_parse / wall:.2f}", "", "")  # fmt: skip
    console.print(table)
    result["steady_cpu_ms_per_view_frame"] = cpu_table(cpu_rows, n - views, console)
    if args.ratio_pairs > 1:
        result["k1_ratio_pairs"] = ratio_pairs(capture, work, parser_cfg, args.ratio_pairs, result, console)
    return result


def ratio_pairs(capture: Path, work: Path, parser_cfg: Any, pairs: int, first: dict, console: Console) -> dict:
    """The k=1 steady ratio (end to end / parse alone) over `pairs` alternating runs of both, the
    main table's pair first: on a shared machine one pair moves by several hundredths."""
    ratios = [first["end_to_end"]["k=1"]["steady_ratio_to_parse_only"]]
    for _ in range(pairs - 1):
        t_parse, t_first, n, views = parse_only(capture, parser_cfg)
        wall, s = end_to_end(capture, work / f"run_k1_{time.time_ns()}", 1, False, parser_cfg)
        steady = (n - views) / (wall - s.startup_seconds)  # type: ignore[attr-defined]
        ratios.append(round(steady / ((n - views) / (t_parse - t_first)), 3))
    ordered = sorted(ratios)
    median = (ordered[(pairs - 1) // 2] + ordered[pairs // 2]) / 2
    console.print(f"k=1 end to end / parse alone over {pairs} alternating pairs: median {median:.2f} "
                  f"(range {ordered[0]:.2f}-{ordered[-1]:.2f}): {', '.join(f'{r:.2f}' for r in ratios)}")  # fmt: skip
    return {"ratios": ratios, "median": round(median, 3), "min": ordered[0], "max": ordered[-1]}


def cpu_table(rows: dict[str, dict[str, float]], view_frames: int, console: Console) -> dict:
    """Print and return CPU milliseconds per view-frame by thread role, steady state (from the end
    of the first time step; `view_frames` counted from there)."""
    from rich.table import Table

    roles = sorted({r for cpu in rows.values() for r in cpu}, key=lambda r: -max(c.get(r, 0.0) for c in rows.values()))
    table = Table(title="steady CPU ms per view-frame by thread (first time step left out; Linux only)")
    for col in ("run", "all", *roles):
        table.add_column(col)
    out = {}
    for name, cpu in rows.items():
        ms = {r: round(1000 * c / view_frames, 1) for r, c in cpu.items()}
        out[name] = {"all": round(sum(ms.values()), 1), **ms}
        table.add_row(name, f"{out[name]['all']:.1f}", *(f"{ms.get(r, 0.0):.1f}" for r in roles))
    console.print(table)
    return out


def memory(work: Path, args: argparse.Namespace, console: Console) -> dict:
    """Peak RSS of a fresh process running the first N frames of one long capture (2 views), for
    each N (the same content, so only the clip length differs), `--memory-repeats` times; and
    the RSS over the longest run (sampled twice a second) at 25 %, 50 %, 75 % of its time and its
    largest value in the last quarter: a streaming run stops growing once it is under way."""
    from statistics import median

    from rich.table import Table

    from openhuman.synth.generate import parse_size

    table = Table(title="peak memory (fresh process, all outputs written)")
    for col in ("repeat", "frames", "seconds", "peak RSS MB", "RSS MB at 25 / 50 / 75 % / max of last quarter"):
        table.add_column(col)
    lengths = sorted(int(x) for x in args.memory_frames.split(","))
    cap = make_capture(work, lengths[-1], 2, parse_size(args.memory_size), args.clip)
    runs: dict[str, list[dict]] = {str(n): [] for n in lengths}
    growth = []
    for rep in range(args.memory_repeats):
        for frames in lengths:
            r = peak_memory(cap, work / f"mem_{frames}_{time.time_ns()}", MEMORY_FORMATS, frames)
            runs[str(frames)].append(r)
            at = " / ".join(f"{v:.0f}" for v in r["rss_mb_at"].values() if v is not None)
            table.add_row(str(rep), str(frames), f"{r['seconds']:.0f}", f"{r['peak_rss_mb']:.0f}", at)
        growth.append(runs[str(lengths[-1])][-1]["peak_rss_mb"] / runs[str(lengths[0])][-1]["peak_rss_mb"] - 1)
    long = [r["rss_mb_at"] for r in runs[str(lengths[-1])] if r["rss_mb_at"]["25%"] is not None]
    late = [a["last quarter max"] / a["25%"] - 1 for a in long]
    console.print(table)
    console.print(
        f"peak memory growth {lengths[0]} -> {lengths[-1]} frames: "
        + ", ".join(f"{g:+.1%}" for g in growth)
        + f" (median {median(growth):+.1%}; target within 15%)"
    )
    if late:
        console.print(
            f"RSS growth of the {lengths[-1]}-frame run, from 25 % of its time to the last quarter's largest: "
            + ", ".join(f"{g:+.1%}" for g in late)
        )
    return {
        "memory": runs,
        "memory_growth": [round(g, 4) for g in growth],
        "memory_growth_median": round(median(growth), 4),
        "memory_late_growth": [round(g, 4) for g in late],
    }


if __name__ == "__main__":
    from openhuman.native_log import filter_native_stderr

    filter_native_stderr()  # mediapipe's start-up chatter off the table
    main()

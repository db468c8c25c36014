"""The `openhuman` command line: thin wrappers over library calls.

Exit codes: 0 success, 2 bad input (one-line message saying what to fix), 1 internal error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from openhuman.errors import InputError

# Offline by design, and quiet third-party libraries: the CLI's own messages and errors stay readable.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "GLOG_minloglevel": "2",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}.items():
    os.environ.setdefault(_key, _value)

app = typer.Typer(
    name="openhuman",
    help="Video/4D open-vocabulary human parsing: ask for a body part in words, get masks, tracks "
    "and labelled 3D point clouds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

# options that several commands share
_BACKEND = typer.Option(None, "--backend", help="Parser backend: mediapipe (default), schnet, clipsam.")
_CHECKPOINT = typer.Option(
    None, "--checkpoint", help="SCHNet checkpoint (.pt from `openhuman train`); implies --backend schnet."
)
_MAX_SIDE = typer.Option(
    None,
    "--max-side",
    help="Shrink frames longer than this many pixels (e.g. 1280 for 4K clips); outputs at that size.",
)
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")

F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
        force=True,
    )
    for ours in ("openhuman", "tracking", "lifting"):
        logging.getLogger(ours).setLevel(logging.DEBUG if verbose else logging.INFO)


_INTERRUPTED = {
    "parse": "interrupted; what this parse wrote was removed",
    "run": "interrupted; finished outputs are kept, re-run to resume",
    "demo": "interrupted; finished outputs are kept, re-run to resume",
    "train": "interrupted; the checkpoints written so far are kept (out_dir/last.pt), re-run to resume",
    "synth": "interrupted; nothing was written (a capture is put in place only once complete)",
    "export": "interrupted; nothing was written (an export is put in place only once complete)",
    "eval": "interrupted; no scores were written",
}
"""What Ctrl-C leaves behind, per command (the function's name)."""


def command(func: F | None = None, *, name: str | None = None) -> Any:
    """Register a CLI command with the project's error handling (InputError -> exit 2)."""

    def register(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except InputError as exc:
                console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                said = _INTERRUPTED.get(fn.__name__, "interrupted")
                console.print(f"[yellow]{said}[/]")
                raise typer.Exit(130) from None

        return app.command(name=name)(wrapper)  # type: ignore[return-value]

    return register(func) if func is not None else register


@app.callback()
def _main(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Debug logging; native libraries' (mediapipe, TFLite) info and warning lines are shown too.",
    ),
) -> None:
    _setup_logging(verbose)


# --- commands -------------------------------------------------------------------------------
# Each command is a thin wrapper over a library call; keep argument parsing here and work there.


@command
def train(
    config: str = typer.Argument(..., help="Training config YAML (a TrainConfig; see configs/schnet_*.yaml)."),
    steps: int = typer.Option(None, "--steps", help="Override the config's number of steps."),
    out: str = typer.Option(None, "--out", "-o", help="Override the config's out_dir."),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda (overrides the config)."),
) -> None:
    """Train SCHNet (SAM + CLIP human parser); resumable checkpoints go to out_dir/last.pt, best.pt."""
    from openhuman.config import load_config
    from openhuman.parsing.schnet.config import TrainConfig
    from openhuman.parsing.schnet.train import train as run_training

    cfg = load_config(config, TrainConfig)
    if steps is not None:
        if steps < 1:
            raise InputError("--steps must be >= 1")
        cfg.steps = steps
    if out is not None:
        cfg.out_dir = out
    if device is not None:
        cfg.device = device
    from openhuman.parsing.backbones import torch_device

    torch_device(cfg.device, "--device" if device is not None else "device", auto=True)
    _check_out(cfg.out_dir, folder=True, option="--out" if out is not None else "out_dir")
    result = run_training(cfg)
    Console().print(
        f"[bold]trained[/] {result['step']} steps; best validation mIoU {result['best_miou']:.4f}; "
        f"checkpoints {result['last']} and {result['best']}"
    )


@command
def synth(
    out: str = typer.Argument(..., help="Capture directory to create."),
    clip: list[str] = typer.Option(
        ["walk"], "--clip", "-c", help="Clip name; repeat or comma-separate to play clips one after another."
    ),
    views: int = typer.Option(4, help="Cameras on the ring."),
    frames: int = typer.Option(60, help="Frames per clip (0 = each clip's own length)."),
    size: str = typer.Option("640x480", help="Image size WIDTHxHEIGHT."),
    fps: float = typer.Option(30.0, help="Capture frame rate."),
    radius: float = typer.Option(3.0, help="Ring radius in metres."),
    height: float | None = typer.Option(None, help="Camera height above the ground in metres (default: elevation)."),
    elevation: float | None = typer.Option(None, help="Camera elevation above the body centre, degrees (default 10)."),
    fov: float | None = typer.Option(None, help="Vertical field of view in degrees (default: fit the motion)."),
    root_motion: str = typer.Option("centre", help="centre | keep | in_place (walk on the spot)."),
    seed: int = typer.Option(0, help="Seeds the ring's azimuth and the 3D GT samples."),
    depth: bool = typer.Option(True, "--depth/--no-depth", help="Write depth maps."),
    gt: bool = typer.Option(True, "--gt/--no-gt", help="Write 2D and 3D ground truth."),
    lossy: bool = typer.Option(False, help="Lossy yuv420p videos (smaller) instead of lossless RGB."),
    limb_mix: float = typer.Option(
        0.0, help="Training data: chance that a limb group of each 12-frame stretch moves as in another clip."
    ),
    limb_mix_clip: list[str] = typer.Option(
        [], "--limb-mix-clip", help="Clips the mixed limbs come from (repeat or comma-separate; default --clip)."
    ),
    people: int = typer.Option(
        1, help="People (1-4): each next one plays the clips 17 frames later, 1.2 m to the side."
    ),
    overwrite: bool = typer.Option(False, help="Replace OUT if it exists."),
    list_clips: bool = typer.Option(False, "--list-clips", help="Print the available clip names and exit."),
) -> None:
    """Generate a synthetic multi-view 4D capture of a mocap-driven humanoid with exact ground truth."""
    from openhuman.synth import SynthConfig, generate_capture
    from openhuman.synth import list_clips as _clips
    from openhuman.synth.generate import parse_size

    if list_clips:
        typer.echo("\n".join(_clips()))
        return
    if height is not None and elevation is not None:
        raise InputError("give --height or --elevation, not both (the cameras look at the body centre)")
    if not overwrite and os.path.lexists(out):
        raise InputError(f"{out}: already exists; choose a new folder or pass --overwrite")
    _check_out(out, folder=True, option="")
    names = _name_list(clip)
    width, img_height = parse_size(size)
    cfg = SynthConfig(
        clips=names, views=views, frames=frames or None, fps=fps, width=width, height=img_height, radius=radius,
        camera_height=height, elevation_deg=10.0 if elevation is None else elevation, fov_deg=fov,
        root_motion=root_motion, seed=seed, depth=depth, gt=gt, lossless=not lossy, limb_mix=limb_mix,  # type: ignore[arg-type]
        limb_mix_clips=_name_list(limb_mix_clip), people=people,
    )  # fmt: skip
    path = generate_capture(out, cfg, overwrite=overwrite)
    console.print(f"wrote {path}")


def _name_list(values: list[str]) -> tuple[str, ...]:
    """Names from a repeatable option whose values may also be comma-separated."""
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


def _check_out(out: str, folder: bool, option: str = "--out") -> None:
    """Refuse an output path that cannot be written, before any work: a file where a folder goes
    (or a folder where a file goes), a path under a file, or a place that cannot be written to.
    Creates nothing."""
    import tempfile
    from pathlib import Path

    path, who = Path(out), f"{option} {out}".strip()
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{who} exists and is not a folder")
    if not folder and (path.is_dir() or out.endswith(("/", os.sep))):
        raise InputError(f"{who} names a folder; give a file name")
    start = path if folder else path.parent
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"{who}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):  # a probe: permissions, read-only or virtual file systems
            pass
    except OSError as exc:
        raise InputError(f"{who}: cannot write in {existing} ({exc.strerror})") from None


def _parser_config_for_cli(
    backend: str | None, static: bool, config: str | None = None, checkpoint: str | None = None
) -> Any:
    """The parser section of `_pipeline_config`, with --static on top."""
    cfg = _pipeline_config(config, None, backend, checkpoint=checkpoint).parser
    cfg.mediapipe.static_image_mode = static or cfg.mediapipe.static_image_mode
    return cfg


@command
def parse(
    source: str = typer.Argument(..., help="Video file, image folder or single image."),
    query: str = typer.Option(None, "--query", "-q", help="Body part in words, e.g. 'left hand'; default all parts."),
    out: str = typer.Option("parse_out", "--out", "-o", help="Output directory."),
    backend: str = _BACKEND,
    checkpoint: str = _CHECKPOINT,
    config: str = typer.Option(None, "--config", "-c", help="PipelineConfig YAML; its parser section is used."),
    stride: int = typer.Option(1, "--stride", help="Use every n-th frame."),
    max_frames: int = typer.Option(None, "--max-frames", help="Stop after this many frames."),
    static: bool = typer.Option(False, "--static", help="Treat frames as unrelated photos (no smoothing)."),
    max_side: int = _MAX_SIDE,
    progress: bool = _PROGRESS,
) -> None:
    """Per-frame part masks for a query: PNG label maps, COCO RLE JSON, overlay video, summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from openhuman.parse2d import count_frames, parse_to_dir
    from openhuman.sources import open_source

    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise InputError("--stride and --max-frames must be >= 1")
    _check_max_side(max_side)
    if query is not None and not query.strip():
        raise InputError("--query is empty; ask for a part such as 'left hand', or leave it out for all parts")
    _check_out(out, folder=True)
    cfg = _parser_config_for_cli(backend, static, config, checkpoint)
    src = open_source(source, max_side or 0)
    total = count_frames(src, stride, max_frames)
    columns = (TextColumn("parsing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=console, disable=not progress or (total is not None and total < 10))
    task = bar.add_task("parse", total=total)

    def on_frame(n: int) -> None:
        if not bar.live.is_started:  # shown from the first parsed frame: set-up errors print alone
            bar.start()
        bar.update(task, completed=n)

    try:
        summary = parse_to_dir(
            src, out, query=query, parser_cfg=cfg, stride=stride, max_frames=max_frames, on_frame=on_frame
        )
    finally:
        if bar.live.is_started:
            bar.stop()
    if query is not None:  # what the words were taken to mean, as `run`'s summary shows it
        from rich.markup import escape

        from openhuman.ontology import BODY14

        Console().print(f"[bold]query[/] {escape(repr(query))} -> {', '.join(BODY14[i] for i in summary.part_ids)}")
    Console().print(
        f"[bold]parsed[/] {summary.frames} frame(s) at {summary.parse_fps:.1f} frames/s; queried parts found in "
        f"{summary.frames_with_parts}/{summary.frames}; outputs in {summary.out_dir}"
    )


@command
def eval(  # noqa: A001 - the command's name
    capture: str = typer.Argument(..., help="Capture directory with gt/2d ground truth."),
    backend: str = _BACKEND,
    checkpoint: str = _CHECKPOINT,
    config: str = typer.Option(None, "--config", "-c", help="PipelineConfig YAML; its parser section is used."),
    max_frames: int = typer.Option(None, "--max-frames", help="Frames per view (default all)."),
    out: str = typer.Option(None, "--out", "-o", help="Write the scores as JSON here (e.g. results.json)."),
    static: bool = typer.Option(False, "--static", help="Parse frames as unrelated photos."),
) -> None:
    """Per-class IoU and mIoU of a parser against a capture's 2D ground truth (body14 and PPP)."""
    from rich.progress import Progress

    from openhuman.evaluate import evaluate_capture, results_table
    from openhuman.io import write_json_atomic

    if max_frames is not None and max_frames < 1:
        raise InputError("--max-frames must be >= 1")
    if out:
        _check_out(out, folder=False)
    cfg = _parser_config_for_cli(backend, static, config, checkpoint)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:  # none in a log
        task = bar.add_task("evaluating", total=None)
        result = evaluate_capture(capture, cfg, max_frames=max_frames, on_frame=lambda n: bar.update(task, completed=n))
    Console().print(results_table(result))
    if out:
        write_json_atomic(out, result.to_dict())
        Console().print(f"scores written to {out}")


@command
def check_capture(path: str = typer.Argument(..., help="Capture directory or video file.")) -> None:
    """Validate a capture directory (or a video) and list every problem found; every frame is decoded."""
    from openhuman.capture import Capture
    from openhuman.capture import check_capture as _check

    problems = _check(path, decode=True)
    for problem in problems[1:]:
        console.print(f"[red]problem:[/] {problem}")
    if problems:
        raise InputError(f"{problems[0]} ({len(problems)} problem(s) in total)")
    cap = Capture.open(path)
    console.print(
        f"ok: {len(cap.view_ids)} view(s) {list(cap.view_ids)}, {cap.frame_count} frames at {cap.fps:g} fps, "
        f"cameras={'yes' if cap.cameras else 'no'} depth={cap.has_depth} gt_2d={cap.has_gt_2d} gt_3d={cap.has_gt_3d}"
    )


def _check_max_side(max_side: int | None) -> None:
    """InputError for a `--max-side` below 1 (0, the native size, is what leaving it out means)."""
    if max_side is not None and max_side < 1:
        raise InputError("--max-side must be >= 1 (pixels of the longer side); leave it out for the native size")


def _pipeline_config(
    config: str | None,
    query: str | None,
    backend: str | None = None,
    keyframe_interval: int | None = None,
    max_frames: int | None = None,
    stride: int | None = None,
    max_side: int | None = None,
    checkpoint: str | None = None,
) -> Any:
    """A PipelineConfig from an optional YAML file, with command-line options on top."""
    import dataclasses

    from openhuman.config import PipelineConfig, load_config

    cfg = load_config(config, PipelineConfig) if config else PipelineConfig()
    if query is not None:
        if not query.strip():
            raise InputError("--query is empty; ask for a part such as 'left hand', or leave it out for all parts")
        cfg = dataclasses.replace(cfg, query=query)
    if backend is not None:
        from openhuman.parsing.base import BACKENDS

        if backend not in BACKENDS:
            raise InputError(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        cfg.parser.backend = backend  # type: ignore[assignment]
    if checkpoint is not None:
        if backend not in (None, "schnet"):
            raise InputError(
                f"--checkpoint is a SCHNet checkpoint, not for --backend {backend}; the clipsam backend "
                "takes parser.clipsam.sam_checkpoint and clip_checkpoint from --config"
            )
        cfg.parser.backend = "schnet"
        cfg.parser.schnet = dataclasses.replace(cfg.parser.schnet, checkpoint=checkpoint)
    if keyframe_interval is not None:
        if keyframe_interval < 1:
            raise InputError("--keyframe-interval must be >= 1 (1 parses every frame)")
        cfg.tracking.keyframe_interval = keyframe_interval
    if max_frames is not None:
        if max_frames < 1:
            raise InputError("--max-frames must be >= 1")
        cfg.video.max_frames = max_frames
    if stride is not None:
        if stride < 1:
            raise InputError("--stride must be >= 1 (1 uses every frame)")
        cfg.video.stride = stride
    if max_side is not None:
        _check_max_side(max_side)
        cfg.video.max_side = max_side  # a negative one from YAML: open_source refuses it before any output
    if cfg.parser.backend != "mediapipe":  # the model backends put their torch models on this device
        from openhuman.parsing.backbones import torch_device

        torch_device(cfg.parser.device, "parser.device")
    return cfg


def print_summary(summary: Any) -> None:
    """A rich table of a RunSummary: frames, parts found, time per stage, metrics."""
    from rich.table import Table

    out = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=f"openhuman: {summary.source}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "frames", f"{summary.frames} processed, {summary.frames_skipped} already done, {summary.views} view(s)"
    )
    if summary.query:
        table.add_row("query", f"{summary.query!r} -> {', '.join(summary.query_parts)}")
    found = ", ".join(f"{k} ({v})" for k, v in sorted(summary.parts_found.items())) or "none"
    table.add_row("parts found", f"{found}  [dim](view-frames)[/]")
    if summary.points_per_frame:
        table.add_row("points", f"{summary.points_per_frame:,.0f} per frame")
    if summary.frames:
        ids = ", ".join(map(str, summary.people[:12])) + (", ..." if len(summary.people) > 12 else "")
        table.add_row("people", f"{len(summary.people)}" + (f" (track ids {ids})" if ids else ""))
    total = summary.wall_seconds or 1e-9
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in summary.stage_seconds.items() if v > 0.0005)
    table.add_row("time", f"{total:.1f}s wall ({summary.frames / total:.2f} frames/s); per stage: {stages}; "
                  f"export thread {summary.export_thread_seconds:.1f}s")  # fmt: skip
    table.add_row("parser calls", str(summary.parser_calls))
    for key, value in summary.metrics.items():  # 3 significant digits: flip rates are small
        table.add_row(key, f"{value:.3g}")
    if summary.out_dir:
        table.add_row("outputs", summary.out_dir)
    out.print(table)


@command
def run(
    source: str = typer.Argument(..., help="Capture directory (multi-view), video file, image folder or image."),
    query: str = typer.Option(None, "--query", "-q", help="Body part in words, e.g. 'left hand'; default all parts."),
    out: str = typer.Option("out", "--out", "-o", help="Output directory (re-running into it resumes)."),
    config: str = typer.Option(None, "--config", "-c", help="PipelineConfig YAML (see configs/default.yaml)."),
    backend: str = _BACKEND,
    checkpoint: str = _CHECKPOINT,
    keyframe_interval: int = typer.Option(None, "--keyframe-interval", "-k", help="Parse every k-th frame."),
    max_frames: int = typer.Option(None, "--max-frames", help="Stop after this many frames."),
    stride: int = typer.Option(None, "--stride", help="Use every n-th frame."),
    max_side: int = _MAX_SIDE,
    progress: bool = _PROGRESS,
) -> None:
    """Parse, track, lift and export a capture (or a video) for a query."""
    from openhuman.pipeline import Pipeline

    _check_out(out, folder=True)
    cfg = _pipeline_config(config, query, backend, keyframe_interval, max_frames, stride, max_side, checkpoint)
    print_summary(Pipeline(cfg).run(source, out, progress=progress))


@command
def demo(
    out: str = typer.Option("demo_out", "--out", "-o", help="Where the capture and all outputs go."),
    clip: str = typer.Option("walk", "--clip", help="Motion-capture clip for the synthetic capture."),
    views: int = typer.Option(4, "--views", help="Number of cameras."),
    frames: int = typer.Option(40, "--frames", help="Number of frames."),
    size: str = typer.Option("640x480", "--size", help="Image size WxH."),
    query: str = typer.Option("left hand", "--query", "-q", help="Part to ask for."),
) -> None:
    """The whole system offline: synthesise a 4-view capture, parse, track, lift, export, score."""
    from openhuman.demo import run_demo

    summary = run_demo(out, clip=clip, views=views, frames=frames, size=size, query=query)
    print_summary(summary)


@command
def export(
    run_dir: str = typer.Argument(..., help="Output directory of `openhuman run` (holds points/sequence.json)."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write the exported sequence."),
    query: str = typer.Option(None, "--query", "-q", help="Keep only the points of these parts."),
    formats: str = typer.Option("ply,npz", "--format", "-f", help="Comma list of ply, npz."),
    preview: bool = typer.Option(True, "--preview/--no-preview", help="Also render preview images."),
    person: list[str] = typer.Option(
        [], "--person", "-p", help="Keep only these person (track) ids; repeat or comma-separate."
    ),
) -> None:
    """Re-export a labelled point-cloud sequence: other formats, or only the queried parts or people."""
    from openhuman.outputs import export_sequence

    if query is not None and not query.strip():
        raise InputError("--query is empty; ask for a part such as 'left hand', or leave it out for every part")
    _check_out(out, folder=True)
    try:
        people = [int(n) for n in _name_list(person)]
    except ValueError:
        raise InputError(f"--person takes person ids (whole numbers, as in the run summary), got {person}") from None
    fmts = [f.strip() for f in formats.split(",")]
    n = export_sequence(run_dir, out, query=query, formats=fmts, preview=preview, people=people or None)
    Console().print(f"exported {n} frame(s) to {out}")


@command(name="config")
def config_cmd(
    out: str = typer.Option(None, "--out", "-o", help="Write to this file instead of printing."),
    base: str = typer.Option(None, "--from", help="Start from this YAML instead of the defaults."),
) -> None:
    """Print the pipeline configuration as YAML, every key commented (edit it, pass it with --config)."""
    from openhuman.config import PipelineConfig, commented_yaml, load_config
    from openhuman.io import write_text_atomic

    if out:
        _check_out(out, folder=False)
    cfg = load_config(base, PipelineConfig) if base else PipelineConfig()
    text = commented_yaml(cfg)
    if out:
        write_text_atomic(out, text)
    else:
        sys.stdout.write(text)


def main() -> None:
    if not {"-v", "--verbose"} & set(sys.argv[1:]):
        from openhuman.native_log import filter_native_stderr

        filter_native_stderr()  # mediapipe/TFLite start-up chatter off the terminal
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # internal error: exit 1 with the reason
        console.print_exception(show_locals=False)
        console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()

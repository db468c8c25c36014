"""The streaming pipeline: source -> parse -> track -> query masks -> lift -> 4D smoothing -> export.

This is the only module that knows the order of the stages. Every stage works frame by frame, so
memory stays flat however long the clip is. Three lines run it::

    cfg = load_config("configs/default.yaml", PipelineConfig)   # or PipelineConfig(query="left hand")
    summary = Pipeline(cfg).run("capture_dir", "out_dir")
    print(summary.metrics)

`Pipeline.stream(source)` yields `FrameResult`s without writing anything, for use as a library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openhuman.arrays import present_ids
from openhuman.config import PipelineConfig, to_dict
from openhuman.errors import InputError
from openhuman.io import write_json_atomic
from openhuman.ontology import BODY14, NUM_CLASSES
from openhuman.parsing.base import Parser
from openhuman.sources import Source, open_source
from openhuman.types import Frame, LabeledPointCloud, PartMasks, PartParse
from openhuman.video import check_range

log = logging.getLogger(__name__)
STAGES = ("decode", "parse", "track", "masks", "lift", "smooth4d", "export", "eval")


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline knows about one time step (all views)."""

    frame_index: int
    timestamp_s: float
    frames: tuple[Frame, ...]
    """One frame per view, in `Source.view_ids` order."""
    parses: tuple[PartParse, ...]
    """Tracked, smoothed parse per view (person_ids are stable track ids); when a cloud was
    lifted, its part labels come from that cloud (`LiftingConfig.relabel_views`) and `probs`
    is None."""
    masks: tuple[PartMasks, ...]
    """Masks of the queried parts per view."""
    cloud: LabeledPointCloud | None
    """Labelled point cloud (None without cameras or when lifting is off)."""
    point_source: str = ""
    """Where the cloud's points came from: "depth", "mesh", "hull" or "none" ("" = no lifting)."""


@dataclass
class RunSummary:
    source: str
    out_dir: str | None
    views: int
    frames: int = 0
    frames_skipped: int = 0
    """Frames already finished by an earlier run into the same directory (resume)."""
    query: str | None = None
    query_parts: list[str] = field(default_factory=list)
    query_explanation: str = ""
    parts_found: dict[str, int] = field(default_factory=dict)
    """Queried part name -> number of view-frames where it was found (in the whole run directory)."""
    points_per_frame: float = 0.0
    people: list[int] = field(default_factory=list)
    """Person (track) ids seen in the frames this run processed (shared by all views of a
    multi-view capture, see `lifting.people`)."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per stage; parse and track are summed over the views, which run concurrently, and
    export is the time spent waiting for the export thread."""
    wall_seconds: float = 0.0
    startup_seconds: float = 0.0
    """Seconds until the first time step was done (model and library start-up + one step); the
    steady-state rate is (frames - 1) / (wall_seconds - startup_seconds)."""
    export_thread_seconds: float = 0.0
    """Seconds the background export thread spent writing (overlaps the other stages)."""
    parser_calls: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    """2D/3D mIoU and flip rates against ground truth, when the source has it, over every frame of
    the run directory: a resumed run scores the saved label maps and point clouds of all its
    frames (3D only when the clouds were saved, as ply or npz)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Timer:
    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t0

        return timed

    def timed_iter(self, stage: str, it: Iterator[Any]) -> Iterator[Any]:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.seconds[stage] += time.perf_counter() - t0
            yield item


class _ViewStepper:
    """One view's tracker around the parser, timing the parser calls inside it."""

    def __init__(self, parser: Parser, cfg: Any) -> None:
        from tracking import ViewTracker

        self.parser = parser
        self.parse_seconds = 0.0
        self.calls = 0
        self.tracker = ViewTracker(self._parse, cfg)

    def _parse(self, frame: Frame) -> PartParse:
        t0 = time.perf_counter()
        try:
            return self.parser(frame)
        finally:
            self.parse_seconds += time.perf_counter() - t0
            self.calls += 1

    def step(self, frame: Frame | None) -> tuple[list[PartParse], float, float, int]:
        """(tracked parses that became ready, in frame order; seconds in the parser; seconds in
        tracking; parser calls) of one frame, or of the end of the stream (frame None)."""
        p0, c0, t0 = self.parse_seconds, self.calls, time.perf_counter()
        out = self.tracker.push(frame) if frame is not None else self.tracker.flush()
        parse_s = self.parse_seconds - p0
        return out, parse_s, time.perf_counter() - t0 - parse_s, self.calls - c0


class Pipeline:
    """Holds the expensive state (parsers, query embedding); `run`/`stream` process a source."""

    def __init__(self, cfg: PipelineConfig) -> None:
        from openhuman.query import resolve

        if cfg.switch_interval_ms < 0:
            raise InputError(f"switch_interval_ms must be >= 0 (0 = leave Python's), got {cfg.switch_interval_ms}")
        if cfg.workers < 0:
            raise InputError(f"workers must be >= 0 (0 = one per CPU core), got {cfg.workers}")
        if cfg.query is not None and not cfg.query.strip():
            raise InputError("query is empty; ask for a part such as 'left hand', or null for all parts")
        self.cfg = cfg
        self.query = resolve(cfg.query) if cfg.query else None
        self.part_ids: tuple[int, ...] = self.query.part_ids if self.query else tuple(range(1, NUM_CLASSES))
        self._shared_parser: Parser | None = None
        self.timer = _Timer()
        self.parser_calls = 0

    # --- stages ---------------------------------------------------------------------------

    def _parser_for_view(self) -> Parser:
        """A parser per view when the backend keeps temporal state (mediapipe video mode)."""
        if self._shared_parser is not None and not self._shared_parser.stateful:
            return self._shared_parser
        parser = Parser.from_config(self.cfg.parser)
        if self._shared_parser is None:
            self._shared_parser = parser
        return parser

    def _trackers(self, view_ids: tuple[str, ...]) -> list[_ViewStepper]:
        return [_ViewStepper(self._parser_for_view(), self.cfg.tracking) for _ in view_ids]

    def _workers(self, views: int) -> int:
        n = self.cfg.workers or (os.cpu_count() or 1)
        return max(1, min(n, views))

    def _lifting(self, source: Source) -> tuple[Any, Any] | None:
        if source.cameras is None:
            return None
        if len(source.view_ids) < 2 and not source.has_depth:
            log.info("one view without depth: lifting to 3D needs depth or at least two calibrated views")
            return None
        from lifting.lifter import Lifter
        from lifting.temporal import TemporalLabelSmoother

        cams = {v: source.cameras[v] for v in source.view_ids}
        return Lifter(cams, self.cfg.lifting), TemporalLabelSmoother(self.cfg.lifting)

    def stream(self, source: str | Path | Source, skip: Callable[[int], bool] | None = None) -> Iterator[FrameResult]:
        """Process a source frame by frame. `skip(index)` -> True skips a frame entirely (resume).

        The views of time step t+1 are parsed in the worker threads while this thread lifts,
        exports and scores time step t (one time step in flight: memory stays flat). With
        bidirectional keyframes a time step is finished once every view's tracker has returned it,
        up to `keyframe_interval - 1` steps later. While it runs, CPython's thread switch interval
        is `cfg.switch_interval_ms` (restored after).
        """
        with switch_interval(self.cfg.switch_interval_ms):
            yield from self._stream(source, skip)

    def _stream(self, source: str | Path | Source, skip: Callable[[int], bool] | None) -> Iterator[FrameResult]:
        src = source if isinstance(source, Source) else open_source(source, self.cfg.video.max_side)
        trackers = self._trackers(src.view_ids)
        lifting = self._lifting(src)
        v = self.cfg.video
        groups = self.timer.timed_iter("decode", src.synced(v.start, v.stride, v.max_frames))
        gap = False
        queue = _StepQueue(len(src.view_ids))
        futures: list[Future[Any]] | None = None
        try:
            with ThreadPoolExecutor(self._workers(len(src.view_ids)), thread_name_prefix="openhuman-view") as pool:
                for frames in groups:
                    if skip is not None and skip(frames[0].index):
                        gap = True
                        continue
                    if gap:  # after skipped frames the temporal state is stale: start the trackers afresh
                        yield from self._drain(src, lifting, queue, futures, trackers, pool)
                        futures = None
                        _release(trackers)
                        trackers, gap = self._trackers(src.view_ids), False
                        if lifting is not None:
                            lifting = self._lifting(src)
                    # a view's tracker must finish step t before it starts step t + 1
                    done = [f.result() for f in futures] if futures is not None else None
                    futures = [pool.submit(_ViewStepper.step, t, f) for t, f in zip(trackers, frames, strict=True)]
                    queue.frames.append(list(frames))
                    if done is not None:
                        yield from self._finish_ready(src, lifting, queue, done)
                yield from self._drain(src, lifting, queue, futures, trackers, pool)
        finally:  # the pool has finished every step here
            _release(trackers)

    def _drain(
        self,
        src: Source,
        lifting: tuple[Any, Any] | None,
        queue: _StepQueue,
        futures: list[Future[Any]] | None,
        trackers: list[_ViewStepper],
        pool: ThreadPoolExecutor,
    ) -> Iterator[FrameResult]:
        """Finish every time step still in flight or waiting (end of the stream, or a gap)."""
        if futures is not None:
            yield from self._finish_ready(src, lifting, queue, [f.result() for f in futures])
        flushed = [f.result() for f in [pool.submit(_ViewStepper.step, t, None) for t in trackers]]
        yield from self._finish_ready(src, lifting, queue, flushed)
        if queue.frames:
            raise RuntimeError(f"{len(queue.frames)} time steps were never returned by the trackers")

    def _finish_ready(
        self, src: Source, lifting: tuple[Any, Any] | None, queue: _StepQueue, results: list[Any]
    ) -> Iterator[FrameResult]:
        """Take one step's `_ViewStepper.step` results (one per view) and finish every time step
        that all views have now returned."""
        for view, (parses, parse_s, track_s, calls) in enumerate(results):
            self.timer.seconds["parse"] += parse_s
            self.timer.seconds["track"] += track_s
            self.parser_calls += calls
            queue.parses[view].extend(parses)
        while queue.frames and all(queue.parses):
            frames = queue.frames.popleft()
            parses = [q.popleft() for q in queue.parses]
            if any(p.frame_index != f.index for p, f in zip(parses, frames, strict=True)):
                raise RuntimeError("a tracker returned frames out of order")
            yield self._finish(src, lifting, frames, parses)

    def _finish(
        self, src: Source, lifting: tuple[Any, Any] | None, frames: list[Frame], tracked: list[PartParse]
    ) -> FrameResult:
        """One time step's masks and (smoothed) point cloud from its tracked parses (one per view)."""
        from openhuman.masks import masks_for_query

        index = frames[0].index
        parses = tuple(tracked)
        cloud, point_source = None, ""
        if lifting is not None:
            depths = self.timer.wrap("decode", src.depths)(index) if src.has_depth else None
            lifter, smoother = lifting
            cloud = self.timer.wrap("lift", lifter.lift)(index, frames[0].timestamp_s, frames, list(parses), depths)
            point_source = lifter.last_source
            cloud = self.timer.wrap("smooth4d", smoother.step)(cloud)
            parses = tuple(self.timer.wrap("lift", lifter.relabel)(list(parses), cloud, depths))
            parses = tuple(lifter.shared_ids(list(parses)))
        masks = tuple(self.timer.wrap("masks", masks_for_query)(p, self.part_ids) for p in parses)
        return FrameResult(index, frames[0].timestamp_s, tuple(frames), parses, masks, cloud, point_source)

    # --- running into a directory -----------------------------------------------------------

    def _check_settings(self) -> None:
        """InputError for settings out of range and checkpoint paths that are unset or not torch
        files (their contents are checked as they load)."""
        v, p = self.cfg.video, self.cfg.parser
        check_range(v.start, v.stride, v.max_frames, "config video")
        self.cfg.tracking.check()
        self.cfg.lifting.check()
        if p.backend == "mediapipe":
            p.mediapipe.check()
        elif p.backend == "clipsam":
            from openhuman.parsing.clipsam.models import check_checkpoint_paths

            p.clipsam.validate()
            check_checkpoint_paths(p.clipsam)
        else:
            from openhuman.parsing.schnet.checkpoint import check_checkpoint_path

            check_checkpoint_path(p.schnet.checkpoint)

    def run(
        self,
        source: str | Path,
        out_dir: str | Path,
        progress: bool = True,
        evaluate: bool = True,
    ) -> RunSummary:
        """Process `source` and write all outputs into `out_dir` (resumable; see module docs)."""
        from openhuman.outputs import RunWriter, count_parts, preload_exporters

        v = self.cfg.video
        self._check_settings()  # before anything is written
        src = open_source(source, v.max_side)
        out = Path(out_dir)
        writer = RunWriter(out, src, self.cfg, self.part_ids, self.query)
        done = writer.finished_frames(config_fingerprint(self.cfg, source))
        summary = RunSummary(source=str(source), out_dir=str(out), views=len(src.view_ids))
        if self.query:
            summary.query = self.query.text
            summary.query_parts = [BODY14[i] for i in self.query.part_ids]
            summary.query_explanation = self.query.explanation
        scored = evaluate and src.has_gt_2d
        evaluator = _Evaluator(src) if scored and not done else None  # resumed: scored from the files at the end
        t_start = time.perf_counter()
        preload_exporters(self.cfg.export.formats)
        total = _expected_frames(src, self.cfg)
        bar = _progress(total, progress, desc="frames")
        points, people = 0, set[int]()
        try:
            for result in self.stream(src, skip=done.__contains__):
                self.timer.wrap("export", writer.submit)(result)
                if evaluator is not None:
                    self.timer.wrap("eval", evaluator.add)(result)
                count_parts(summary.parts_found, (p.labels for p in result.parses), self.part_ids)
                people.update(i for p in result.parses for i in present_ids(np.asarray(p.person_ids)))
                points += len(result.cloud) if result.cloud is not None else 0
                summary.frames += 1
                if summary.frames == 1:
                    summary.startup_seconds = round(time.perf_counter() - t_start, 3)
                bar.update(1)
            summary.frames_skipped = len(done)
            bar.update(len(done))
            self.timer.wrap("export", writer.close)(summary)
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        summary.points_per_frame = points / max(summary.frames, 1)
        summary.people = sorted(people)
        if done:  # frames finished by an earlier session: the summary covers the whole run, read back
            evaluator = _Evaluator(src) if scored else None
            summary.parts_found, clouds = {}, []
            for index, labels, cloud in self.timer.wrap("eval", writer.saved_frames)():
                count_parts(summary.parts_found, labels.values(), self.part_ids)
                if evaluator is not None:
                    self.timer.wrap("eval", evaluator.add_views)(index, labels, cloud)
                clouds += [len(cloud)] if cloud is not None else []
            summary.points_per_frame = float(np.mean(clouds)) if clouds else summary.points_per_frame
        summary.parser_calls = self.parser_calls
        summary.wall_seconds = round(time.perf_counter() - t_start, 3)
        summary.export_thread_seconds = round(writer.busy_seconds, 3)
        summary.stage_seconds = {k: round(s, 4) for k, s in self.timer.seconds.items()}
        if evaluator is not None:
            summary.metrics = evaluator.result()
        write_json_atomic(out / "summary.json", summary.to_json())
        return summary


@contextmanager
def switch_interval(ms: float) -> Iterator[None]:
    """Shorten CPython's thread switch interval to `ms` milliseconds for the block (0 = leave it;
    never lengthened), then restore it."""
    old = sys.getswitchinterval()
    if ms > 0:
        sys.setswitchinterval(min(old, ms / 1000))
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class _StepQueue:
    """Time steps whose frames went to the trackers, and each view's returned parses, in order."""

    def __init__(self, views: int) -> None:
        self.frames: deque[list[Frame]] = deque()
        self.parses: list[deque[PartParse]] = [deque() for _ in range(views)]


def _release(steppers: list[_ViewStepper]) -> None:
    """Free the per-view temporal state (mediapipe graphs, ~200 MB a view) of stateful parsers
    once their stream ends; a stateless parser keeps its (costly) model for the next stream."""
    for st in steppers:
        if st.parser.stateful:
            st.parser.close()


def _expected_frames(src: Source, cfg: PipelineConfig) -> int | None:
    n = src.frame_count
    if n is None:
        return None
    count = max(0, -(-(n - cfg.video.start) // cfg.video.stride))
    return min(count, cfg.video.max_frames) if cfg.video.max_frames is not None else count


def _progress(total: int | None, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="frame", leave=False)


def config_fingerprint(cfg: PipelineConfig, source: str | Path) -> str:
    """Identity of a run, kept in state.json: a run directory resumes only a run with the same
    fingerprint. It covers the whole config, the absolute source path and the size and
    modification time of the source's files (a video; a folder's own files, such as its images
    or capture.json, and its videos/), so a source replaced at the same path is refused instead
    of resumed."""
    src = Path(source).resolve()
    files = [src] if src.is_file() else [f for d in (src, src / "videos") if d.is_dir() for f in sorted(d.iterdir())]
    stamps = []
    for f in files:
        if f.is_file():
            st = f.stat()
            stamps.append((f.name, st.st_size, st.st_mtime_ns))
    settings = to_dict(cfg)
    if settings.get("query"):  # queries are read case- and space-insensitively: "Left Hand" is "left hand"
        settings["query"] = " ".join(settings["query"].lower().split())
    blob = json.dumps({"cfg": settings, "source": str(src), "files": stamps}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _Evaluator:
    """2D/3D mIoU and temporal flip rates against the source's ground truth, accumulated per frame."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.conf2d = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        self.conf3d = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        self.flips2d = [0, 0]
        self.flips3d = [0, 0]
        self.body_flips = [0, 0]
        self.prev2d: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.prev3d: Any = None

    def add(self, r: FrameResult) -> None:
        self.add_views(r.frame_index, {f.view_id: p.labels for f, p in zip(r.frames, r.parses, strict=True)}, r.cloud)

    def add_views(self, index: int, labels: dict[str, np.ndarray], cloud: LabeledPointCloud | None) -> None:
        """Score one time step: its label map per view and its point cloud (if any); time steps
        come in order (flip rates compare each with the one before)."""
        from openhuman.metrics import confusion_matrix, flip_rate

        for view_id, lab in labels.items():
            gt = self.src.gt_2d(view_id, index)
            self.conf2d += confusion_matrix(lab, gt, NUM_CLASSES)
            prev = self.prev2d.get(view_id)
            if prev is not None:
                f, s = flip_rate(prev[0], lab, prev[1], gt)
                self.flips2d[0] += f
                self.flips2d[1] += s
            self.prev2d[view_id] = (lab, gt)
        if cloud is not None and self.src.has_gt_3d:
            self._add_3d(index, cloud)

    def _add_3d(self, index: int, cloud: LabeledPointCloud) -> None:
        from lifting.metrics import body_flips, flip_rate_3d, match_confusion, match_frame

        gt_xyz, gt_labels, ids = self.src.gt_3d_with_ids(index)
        m = match_frame(cloud.xyz, cloud.labels, gt_xyz, gt_labels)  # the searches the metrics share
        self.conf3d += match_confusion(m)
        if self.prev3d is not None:
            prev, prev_ids = self.prev3d
            f, s = flip_rate_3d(prev.xyz, prev.labels, m.xyz, m.labels, prev_gt=prev.gt_of_point, gt=m.gt_of_point,
                                prev_tree=prev.tree)  # fmt: skip
            self.flips3d[0] += f
            self.flips3d[1] += s
            if prev_ids is not None and ids is not None:
                f, s = body_flips(prev.label_at_gt, prev_ids, m.label_at_gt, ids)
                self.body_flips[0] += f
                self.body_flips[1] += s
        self.prev3d = (m, ids)

    def result(self) -> dict[str, float]:
        from openhuman.metrics import mean_iou

        out = {"miou_2d": mean_iou(self.conf2d)} if self.conf2d.sum() else {}
        if self.flips2d[1]:
            out["flip_rate_2d"] = self.flips2d[0] / self.flips2d[1]
        if self.conf3d.sum():
            out["miou_3d"] = mean_iou(self.conf3d)
        if self.flips3d[1]:
            out["flip_rate_3d"] = self.flips3d[0] / self.flips3d[1]
        if self.body_flips[1]:
            out["flip_rate_3d_body"] = self.body_flips[0] / self.body_flips[1]
        return {k: round(float(v), 4) for k, v in out.items()}


__all__ = ["FrameResult", "Pipeline", "RunSummary", "switch_interval"]

"""Writing a pipeline run into a directory, resumably, and re-exporting a run's point clouds.

Layout of a run directory::

    run.yaml                      the PipelineConfig used
    state.json                    finished frame indices (resume) and a config fingerprint
    summary.json                  the RunSummary (written last)
    labels/<view>/<frame>.png     tracked body14 label map of every view/frame
    masks/<view>/<frame>.png      queried parts only (body14 ids, 0 elsewhere)
    masks.json                    COCO-style RLE of the queried parts (track ids, scores)
    overlays/<view>.mp4           overlay video per view
    points/                       labelled point-cloud sequence: frames/<frame>.ply|.npz, query/<frame>.ply
                                  (only the queried parts' points, with a query), sequence.json
    previews/                     overlay and point-cloud PNGs a person can look at

Every file is written atomically. `state.json` lists a frame only after all of its files exist,
so an interrupted run (crash, Ctrl-C) leaves a consistent directory and re-running the same
command into it skips the finished frames. state.json and points/sequence.json list every frame
so far, so their rewrites are paced (`openhuman.io.Throttle`: after every frame while they are
small, less often as they grow) and done once more at the end or on an error or Ctrl-C; after a
hard kill the last few finished frames may be missing from them and are simply redone.
state.json is written before the first frame, so a run that stops before it (a bad setting,
Ctrl-C while the models load) leaves a run directory with no finished frame, where a corrected
command may start over.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from openhuman.config import save_config
from openhuman.errors import InputError
from openhuman.io import TEMP_NAME, Throttle, write_json_atomic, write_png_atomic
from openhuman.ontology import BODY14

if TYPE_CHECKING:
    from openhuman.config import PipelineConfig
    from openhuman.pipeline import FrameResult, RunSummary
    from openhuman.query import QueryResult
    from openhuman.sources import Source
    from openhuman.types import LabeledPointCloud

log = logging.getLogger(__name__)
STATE = "state.json"
ANNOTATIONS = "masks_annotations.jsonl"
FOLDERS = ("labels", "masks", "overlays", "points", "previews")
"""The folders a run writes (see the module docstring)."""


def remove_temp_files(root: Path, folders: Iterable[str]) -> None:
    """Delete the temporary files a hard kill (SIGKILL, power loss) left in `root` and anywhere
    under its `folders`: the writers' own names only, so nobody else's files go."""
    found = [*root.glob(".*"), *(p for f in folders for p in (root / f).rglob(".*"))]
    stale = [p for p in found if TEMP_NAME.fullmatch(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", root, len(stale))


def _read_json(path: Path, fix: str) -> Any:
    """The JSON in `path`; an InputError ending in `fix` when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({' '.join(str(exc).split())}); {fix}") from None


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """A run directory's state.json (finished frames and the run's fingerprint), or None;
    InputError when it cannot be read (it is written atomically, so only a damaged disk or an
    edit makes it so)."""
    path = run_dir / STATE
    if not path.is_file():
        return None
    fix = f"delete {run_dir} (or choose a new --out) and run again"
    state = _read_json(path, fix)
    done = state.get("done", []) if isinstance(state, dict) else None
    if not isinstance(done, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in done):
        raise InputError(f"{path}: not a run's state (a fingerprint and a list of finished frames); {fix}")
    return state


def count_parts(found: dict[str, int], label_maps: Iterable[np.ndarray], part_ids: Iterable[int]) -> None:
    """Count in `found` (part name -> view-frames) each label map that shows each of `part_ids`."""
    wanted = list(part_ids)
    for labels in label_maps:
        counts = np.bincount(np.asarray(labels).ravel(), minlength=len(BODY14))  # 0.3 ms; np.unique sorts: 10+
        for i in wanted:
            if counts[i]:
                found[BODY14[i]] = found.get(BODY14[i], 0) + 1


def preload_exporters(formats: Iterable[str]) -> None:
    """Import the heavy libraries the export formats need (open3d takes ~1 s) now, as part of
    start-up, rather than stalling the export thread on the first frame."""
    if "ply" in formats:
        import open3d  # noqa: F401
    if "overlay" in formats:
        import av  # noqa: F401


class RunWriter:
    """Streams FrameResults into a run directory (see module docs).

    `submit(result)` hands a frame to one background thread, so encoding PNGs, PLYs and video
    overlaps with parsing the next frames; at most `max_pending` frames wait (memory stays flat),
    and frames are written in order, each listed in state.json only once all its files exist.
    """

    max_pending = 3

    def __init__(
        self,
        out_dir: Path,
        source: Source,
        cfg: PipelineConfig,
        part_ids: tuple[int, ...],
        query: QueryResult | None,
    ) -> None:
        self.out = out_dir
        self.src = source
        self.cfg = cfg
        self.part_ids = part_ids
        self.query = query
        self.formats = set(cfg.export.formats)
        self.done: list[int] = []
        self.fingerprint = ""
        self.resuming = False
        """True when an earlier run finished some frames: overlay videos are rebuilt at close."""
        self._videos: dict[str, Any] = {}
        self._best_overlay: dict[str, tuple[int, np.ndarray]] = {}
        """view id -> (query pixels, overlay) of its frame that shows the most of the query so far;
        saved as previews/overlay_<view>.png once, at the end, rather than at each new best (29 PNG
        writes in a 4-view, 40-frame walk run)."""
        self._points: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openhuman-export")
        self._pending: deque[Future[None]] = deque()
        self.busy_seconds = 0.0
        """Time the export thread spent writing."""
        self._last_cloud: Any = None
        self._state = Throttle(self._write_state)

    # --- resume ---------------------------------------------------------------------------

    def finished_frames(self, fingerprint: str) -> set[int]:
        """Frame indices an earlier identical run finished; refuses a directory of another run."""
        self.fingerprint = fingerprint
        state = read_state(self.out)
        if state is not None and state.get("fingerprint") != fingerprint and not state.get("done"):
            # a run that stopped before its first frame (a bad setting, Ctrl-C while the models
            # loaded): nothing to keep, so a corrected command may start over here
            log.info("%s: an earlier run with other settings finished no frame; starting over", self.out)
            self._clear()
        elif state is not None:
            if state.get("fingerprint") != fingerprint:
                raise InputError(
                    f"{self.out} holds a run with another source or config (or its source files changed since); "
                    "choose a new --out or delete it"
                )
            self.done = [int(i) for i in state.get("done", [])]
            self.resuming = bool(self.done)
        elif self.out.is_dir() and any(self.out.iterdir()):
            raise InputError(f"{self.out} exists and is not an openhuman run directory; choose a new --out")
        if state is not None:
            remove_temp_files(self.out, FOLDERS)
        self.out.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.out / "run.yaml")
        if not self.done:  # from now on the folder is recognisably this run's, even if it stops at once
            self._write_state()
        self._open_point_writers()
        return set(self.done)

    def _clear(self) -> None:
        """Remove what a run writes here (see the module docstring), nothing else."""
        import shutil

        for name in FOLDERS:
            shutil.rmtree(self.out / name, ignore_errors=True)
        for name in (ANNOTATIONS, "masks.json", "summary.json", "run.yaml", STATE):
            (self.out / name).unlink(missing_ok=True)

    def _open_point_writers(self) -> None:
        if self.src.cameras is None or not ({"ply", "npz"} & self.formats):
            return
        from lifting.export import SequenceWriter

        self._points = SequenceWriter(
            self.out / "points",
            query=self.query.text if self.query else None,
            source=self.cfg.lifting.source,
            formats=tuple(f for f in ("ply", "npz") if f in self.formats),
            query_part_ids=self.part_ids if self.query else None,
        )

    # --- per frame ------------------------------------------------------------------------

    def submit(self, r: FrameResult) -> None:
        """Queue a frame for writing (raises here the error of an earlier frame's write)."""
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.max_pending):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._timed_write, r))

    def flush(self) -> None:
        """Wait until every queued frame is written."""
        while self._pending:
            self._pending.popleft().result()

    def _timed_write(self, r: FrameResult) -> None:
        t0 = time.perf_counter()
        try:
            self.write(r)
        finally:
            self.busy_seconds += time.perf_counter() - t0

    def write(self, r: FrameResult) -> None:
        """Write one frame's files now, then list it as done (state.json, paced)."""
        records: list[dict[str, Any]] = []
        for frame, parse, masks in zip(r.frames, r.parses, r.masks, strict=True):
            v = frame.view_id
            write_png_atomic(self.out / "labels" / v / f"{r.frame_index:06d}.png", parse.labels.astype(np.uint8))
            if "png" in self.formats or "rle" in self.formats:
                records.append(self._mask_record(masks, frame.height, frame.width))
            if "overlay" in self.formats or "preview" in self.formats:
                self._overlay(frame, parse.labels, masks)
        if r.cloud is not None:
            self._write_cloud(r)
        if records:
            with open(self.out / ANNOTATIONS, "a", encoding="utf-8") as f:
                f.write(json.dumps({"frame": r.frame_index, "records": records}) + "\n")
        self.done.append(r.frame_index)
        self._state.request()

    def _write_state(self) -> None:
        """state.json: the run's fingerprint and its finished frames (paced like sequence.json)."""
        write_json_atomic(self.out / STATE, {"fingerprint": self.fingerprint, "done": self.done}, rows=True)

    def _mask_record(self, masks: Any, height: int, width: int) -> dict[str, Any]:
        from openhuman.masks import coco_annotations, label_map

        if "png" in self.formats:
            path = self.out / "masks" / masks.view_id / f"{masks.frame_index:06d}.png"
            write_png_atomic(path, label_map(masks, height, width))
        return {"view_id": masks.view_id, "frame_index": masks.frame_index, "width": width, "height": height,
                "annotations": coco_annotations(masks)}  # fmt: skip

    def _overlay(self, frame: Any, labels: np.ndarray, masks: Any) -> None:
        from openhuman.masks import draw_overlay

        img = draw_overlay(frame.rgb, labels, highlight_ids=self.part_ids if self.query else None)
        if "overlay" in self.formats and not self.src.is_single_image and not self.resuming:
            writer = self._videos.get(frame.view_id)
            if writer is None:
                from openhuman.video import VideoWriter

                writer = VideoWriter(self.out / "overlays" / f"{frame.view_id}.mp4", fps=self._overlay_fps())
                self._videos[frame.view_id] = writer
            writer.write(img)
        if "preview" in self.formats:
            found = int(np.count_nonzero(masks.masks))
            if found > self._best_overlay.get(frame.view_id, (-1,))[0]:
                self._best_overlay[frame.view_id] = (found, img)

    def _overlay_fps(self) -> float:
        """The overlay videos play in real time: one frame in `video.stride` of the source is used."""
        return self.src.fps / self.cfg.video.stride

    def _write_overlay_previews(self) -> None:
        for view_id, (_, img) in self._best_overlay.items():
            write_png_atomic(self.out / "previews" / f"overlay_{view_id}.png", img)

    def _write_cloud(self, r: FrameResult) -> None:
        cloud = r.cloud
        assert cloud is not None
        if self._points is not None:
            self._points.write(cloud, source=r.point_source or None)
        if len(cloud):
            self._last_cloud = cloud

    # --- finish ---------------------------------------------------------------------------

    def close(self, summary: RunSummary) -> None:
        """Finish videos, the COCO JSON, point sequences and previews."""
        self.flush()
        self._pool.shutdown()
        self._state.flush()
        self._write_overlay_previews()
        for writer in self._videos.values():
            writer.close()
        if self.resuming and "overlay" in self.formats and not self.src.is_single_image:
            self._rebuild_overlays()
        if "rle" in self.formats and (self.out / ANNOTATIONS).is_file():
            self._write_coco()
        if self._points is not None:
            self._points.close()
        if "preview" in self.formats and self._last_cloud is not None and self.src.cameras:
            from lifting.render import render_preview

            cam = self.src.cameras[self.src.view_ids[0]]
            render_preview(self._last_cloud, cam, self.out / "previews" / "points.png")
            render_preview(self._last_cloud, None, self.out / "previews" / "points_turntable.png")

    def abort(self) -> None:
        """After an error or Ctrl-C: drop unfinished videos; finished frames stay listed in state.json."""
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)
        self._state.flush()
        self._write_overlay_previews()  # of finished frames
        if self._points is not None:
            self._points.abort()
        for writer in self._videos.values():
            writer.abort()
        self._videos.clear()

    def _rebuild_overlays(self) -> None:
        """After a resume: overlay videos of all finished frames from the saved label maps."""
        from openhuman.io import read_png
        from openhuman.masks import draw_overlay
        from openhuman.video import VideoWriter

        done = set(self.done)
        v = self.cfg.video
        writers = {
            view: VideoWriter(self.out / "overlays" / f"{view}.mp4", fps=self._overlay_fps())
            for view in self.src.view_ids
        }
        try:
            for frames in self.src.synced(v.start, v.stride, v.max_frames):
                if frames[0].index not in done:
                    continue
                for frame in frames:
                    labels = read_png(self.out / "labels" / frame.view_id / f"{frame.index:06d}.png")
                    hl = self.part_ids if self.query else None
                    writers[frame.view_id].write(draw_overlay(frame.rgb, labels, highlight_ids=hl))
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        for w in writers.values():
            w.close()

    def saved_frames(self) -> Iterator[tuple[int, dict[str, np.ndarray], LabeledPointCloud | None]]:
        """(frame index, label map per view, point cloud or None where none was saved) of every
        finished frame, in index order, read back from the run directory."""
        from lifting.export import read_npz, read_ply
        from openhuman.io import read_png

        for i in sorted(set(self.done)):
            labels = {v: read_png(self.out / "labels" / v / f"{i:06d}.png") for v in self.src.view_ids}
            stem = self.out / "points" / "frames" / f"{i:06d}"
            npz, ply = stem.with_suffix(".npz"), stem.with_suffix(".ply")
            cloud = read_npz(npz) if npz.is_file() else read_ply(ply, i) if ply.is_file() else None
            yield i, labels, cloud

    def _write_coco(self) -> None:
        """masks.json (COCO RLE) from the per-frame records of every finished frame."""
        done = set(self.done)
        latest: dict[int, list[dict[str, Any]]] = {}
        for line in (self.out / ANNOTATIONS).read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption; that frame is not in `done`
            if entry["frame"] in done:  # a frame redone after an interruption: its last records
                latest[entry["frame"]] = entry["records"]
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for frame in sorted(latest):
            for rec in latest[frame]:
                image_id = len(images) + 1
                images.append({"id": image_id, "file_name": f"masks/{rec['view_id']}/{rec['frame_index']:06d}.png",
                               "width": rec["width"], "height": rec["height"], "frame_index": rec["frame_index"],
                               "view_id": rec["view_id"]})  # fmt: skip
                for ann in rec["annotations"]:
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
        cats = [{"id": i, "name": BODY14[i], "supercategory": "person"} for i in self.part_ids]
        write_json_atomic(
            self.out / "masks.json", {"images": images, "annotations": annotations, "categories": cats}, rows=True
        )


def _export_manifest(src: Path) -> list[dict[str, Any]]:
    """The frames of a run's points/sequence.json; InputError when it cannot be read."""
    path = src / "sequence.json"
    fix = "re-run the `openhuman run` command that made it (resuming rebuilds it from the frame files)"
    manifest = _read_json(path, fix)
    frames = manifest.get("frames") if isinstance(manifest, dict) else None
    if not isinstance(frames, list) or not all(
        isinstance(f, dict) and isinstance(f.get("index"), int) and isinstance(f.get("files"), dict) for f in frames
    ):
        raise InputError(f"{path}: not a sequence manifest (no valid 'frames' list); {fix}")
    return frames


def _read_run_cloud(src: Path, entry: dict[str, Any]) -> LabeledPointCloud:
    """One frame's cloud of a run; InputError naming the file when it is missing or damaged."""
    import zipfile

    from lifting.export import read_npz, read_ply

    files = entry["files"]
    name = files.get("npz") or files.get("ply")
    if not isinstance(name, str):
        raise InputError(f"{src / 'sequence.json'}: frame {entry['index']} lists no ply or npz file")
    path = src / name
    damaged = "the run is damaged: run it again into a new --out"
    if not path.is_file():
        raise InputError(f"{path}: missing; {damaged}")
    try:
        if "npz" in files:
            cloud = read_npz(path)
        else:
            cloud = read_ply(path, entry["index"], float(entry.get("timestamp_s", 0.0)))
    except InputError as exc:
        raise InputError(f"{exc}; {damaged}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"{path}: not a readable point cloud ({type(exc).__name__}: {exc}); {damaged}") from None
    points = entry.get("points")
    if isinstance(points, int) and points != len(cloud):  # a damaged PLY reads back empty
        raise InputError(f"{path}: holds {len(cloud)} points, sequence.json says {points}; {damaged}")
    return cloud


def export_sequence(
    run_dir: str | Path,
    out_dir: str | Path,
    query: str | None,
    formats: list[str],
    preview: bool = True,
    people: list[int] | None = None,
) -> int:
    """Re-export a run's point clouds (optionally only a query's parts, and only the points of
    the person ids in `people`: the clouds' track ids) as PLY and/or NPZ.

    Reads `run_dir/points/sequence.json` (or `run_dir/sequence.json`); returns the frame count.
    `out_dir` must lie outside the run; an earlier export there is replaced if it had the same
    query, formats and source, and refused otherwise, as is a folder holding anything else.
    The export is written into a temporary sibling folder and moved onto `out_dir` only once it
    is complete, so a failed or interrupted export leaves `out_dir` as it was.
    """
    import shutil
    import tempfile

    from lifting.export import SequenceWriter
    from lifting.render import render_preview
    from openhuman.io import NEW_DIR_MODE

    root = Path(run_dir)
    src = root / "points" if (root / "points" / "sequence.json").is_file() else root
    if not (src / "sequence.json").is_file():
        raise InputError(f"{run_dir}: no sequence.json found (expected a run directory or its points/ folder)")
    out = Path(out_dir)
    a, b = root.resolve(), out.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise InputError(f"--out {out_dir} overlaps the run {run_dir} (same folder, inside or around it); "
                         "choose a folder outside it")  # fmt: skip
    if out.is_dir() and any(out.iterdir()) and not (out / "sequence.json").is_file():
        raise InputError(f"--out {out_dir} exists and is not an exported sequence; choose a new --out")
    frames = _export_manifest(src)
    if people:  # the run's summary lists its people: refuse an id it lacks before reading any frame
        listed = _summary_people(root)
        if listed is not None and not set(people) <= set(listed):
            raise _absent_people(set(people) - set(listed), set(listed))
    part_ids: tuple[int, ...] | None = None
    if query:
        from openhuman.query import resolve

        part_ids = resolve(query).part_ids
    source = f"export of {src.resolve()}" + (f", people {sorted(set(people))}" if people else "")
    settings = dict(query=query, source=source, formats=tuple(formats), query_part_ids=part_ids, query_files=False)
    if (out / "sequence.json").is_file():  # refuses an export of another query, format or source; writes nothing
        SequenceWriter(out, resume=False, **settings)  # type: ignore[arg-type]
    made = [p for p in (out, *out.parents) if not p.exists()]  # folders this export creates, removed on failure
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(NEW_DIR_MODE)  # mkdtemp makes it 0700; an export is an ordinary folder
        writer = SequenceWriter(tmp, resume=False, **settings)  # type: ignore[arg-type]
        last, held = None, set()
        for entry in frames:
            cloud = _read_run_cloud(src, entry)
            if people:
                held.update(np.unique(cloud.track_ids).tolist())
                cloud = cloud.subset(np.isin(cloud.track_ids, people))
            if part_ids:
                cloud = cloud.subset(np.isin(cloud.labels, part_ids))
            writer.write(cloud)
            last = cloud if len(cloud) else last
        writer.close()
        if people and not set(people) <= held:
            raise _absent_people(set(people) - held, held)
        if preview and last is not None:
            render_preview(last, None, tmp / "preview_turntable.png")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made[1:]:  # parents only: `out` itself was never created
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return len(frames)


def _summary_people(run_dir: Path) -> list[int] | None:
    """The person ids a run's summary.json lists (None when it has no usable list)."""
    try:
        people = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("people")
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(people, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in people)
    return people if ok else None


def _absent_people(absent: set[int], held: set[int]) -> InputError:
    return InputError(f"--person {','.join(map(str, sorted(absent)))}: no point of this run carries that id; "
                      f"its people are {sorted(held - {-1}) or 'none'}")  # fmt: skip


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Move the finished export `tmp` onto `out`: an earlier export there is replaced, and
    anything else its folder held (the user's own files) is kept."""
    import os
    import shutil

    if not out.exists():
        os.replace(tmp, out)
        return
    ours = {"frames", "query", "previews", "sequence.json", "preview_turntable.png"}
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(tmp, out)
    for entry in old.iterdir():
        if entry.name not in ours and not TEMP_NAME.fullmatch(entry.name) and not (out / entry.name).exists():
            os.replace(entry, out / entry.name)
    shutil.rmtree(old, ignore_errors=True)

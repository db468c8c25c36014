"""Export of labelled clouds: PLY (open3d tensor API, custom attributes), NPZ, and sequences.

PLY vertex properties: x y z (float), red green blue (uchar), label (int), confidence (float),
track_id (int). open3d's PLY writer has no int16, so labels are stored as int32 and read back
as int16 into `LabeledPointCloud`. Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lifting.lifter import empty_cloud
from lifting.render import render_preview
from openhuman.errors import InputError
from openhuman.io import FinishingWriter, Throttle, atomic_path, write_json_atomic
from openhuman.ontology import BODY14, NUM_CLASSES
from openhuman.types import CameraView, LabeledPointCloud

log = logging.getLogger(__name__)

__all__ = ["SequenceWriter", "read_npz", "read_ply", "render_preview", "write_npz", "write_ply"]

_EMPTY_PLY = (
    "ply\nformat binary_little_endian 1.0\ncomment Created by openhuman4d (no points)\nelement vertex 0\n"
    "property float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\n"
    "property uchar blue\nproperty int label\nproperty float confidence\nproperty int track_id\nend_header\n"
)


def write_ply(cloud: LabeledPointCloud, path: str | os.PathLike[str]) -> Path:
    """Write a labelled cloud as binary PLY with label/confidence/track_id attributes (atomic)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        if len(cloud) == 0:
            tmp.write_text(_EMPTY_PLY, encoding="ascii")
        else:
            import open3d as o3d

            t = o3d.core.Tensor.from_numpy
            pcd = o3d.t.geometry.PointCloud()
            pcd.point.positions = t(np.ascontiguousarray(cloud.xyz, np.float32))
            pcd.point.colors = t(np.ascontiguousarray(cloud.rgb, np.uint8))
            pcd.point.label = t(np.ascontiguousarray(np.reshape(cloud.labels, (-1, 1)), np.int32))
            pcd.point.confidence = t(np.ascontiguousarray(np.reshape(cloud.confidence, (-1, 1)), np.float32))
            pcd.point.track_id = t(np.ascontiguousarray(np.reshape(cloud.track_ids, (-1, 1)), np.int32))
            if not o3d.t.io.write_point_cloud(tmp, pcd):
                raise OSError(f"open3d could not write {target}")
    return target


def _frame_from_name(path: Path) -> int:
    return int(path.stem) if path.stem.isdigit() else -1


def read_ply(
    path: str | os.PathLike[str], frame_index: int | None = None, timestamp_s: float = 0.0
) -> LabeledPointCloud:
    """Read a PLY written by `write_ply` (or any point PLY; missing attributes get defaults).

    frame_index defaults to the file name's number (`000012.ply` -> 12), else -1.
    """
    import open3d as o3d

    p = Path(path)
    if not p.is_file():
        raise InputError(f"point cloud file {p} does not exist")
    fi = _frame_from_name(p) if frame_index is None else frame_index
    pcd = o3d.t.io.read_point_cloud(p)
    if "positions" not in pcd.point or pcd.point.positions.shape[0] == 0:
        return empty_cloud(fi, timestamp_s)
    attrs = {k: pcd.point[k].numpy() for k in pcd.point}
    n = len(attrs["positions"])
    rgb = attrs.get("colors", np.full((n, 3), 255, np.uint8))
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb * 255 if rgb.max() <= 1.0 else rgb), 0, 255).astype(np.uint8)
    return LabeledPointCloud(
        attrs["positions"].astype(np.float32),
        rgb,
        attrs.get("label", np.zeros((n, 1))).reshape(-1).astype(np.int16),
        attrs.get("confidence", np.zeros((n, 1))).reshape(-1).astype(np.float32),
        attrs.get("track_id", np.full((n, 1), -1)).reshape(-1).astype(np.int32),
        fi,
        float(timestamp_s),
    )


def write_npz(cloud: LabeledPointCloud, path: str | os.PathLike[str]) -> Path:
    """Write a labelled cloud as NPZ (xyz, rgb, labels, confidence, track_ids, frame_index, timestamp_s)."""
    import io
    import zipfile

    arrays = {
        "xyz": np.asarray(cloud.xyz, np.float32),
        "rgb": np.asarray(cloud.rgb, np.uint8),
        "labels": np.asarray(cloud.labels, np.int16),
        "confidence": np.asarray(cloud.confidence, np.float32),
        "track_ids": np.asarray(cloud.track_ids, np.int32),
        "frame_index": np.int64(cloud.frame_index),
        "timestamp_s": np.float64(cloud.timestamp_s),
    }
    target = Path(path)
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w") as z:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            # coordinates barely compress (8 %) and took most of the time; the rest shrinks 3-300x
            how = zipfile.ZIP_STORED if name == "xyz" else zipfile.ZIP_DEFLATED
            z.writestr(name + ".npy", buf.getvalue(), compress_type=how)
    return target


def read_npz(path: str | os.PathLike[str]) -> LabeledPointCloud:
    """Read a cloud written by `write_npz`."""
    p = Path(path)
    try:
        with np.load(p) as d:
            return LabeledPointCloud(
                d["xyz"].astype(np.float32), d["rgb"].astype(np.uint8), d["labels"].astype(np.int16),
                d["confidence"].astype(np.float32), d["track_ids"].astype(np.int32),
                int(d["frame_index"]), float(d["timestamp_s"]),
            )  # fmt: skip
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{p} is not a labelled point cloud NPZ written by openhuman4d: {exc}") from None


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """Points per body14 class name (classes with at least one point)."""
    counts = np.bincount(np.clip(np.asarray(labels, np.int64), 0, NUM_CLASSES - 1), minlength=NUM_CLASSES)
    return {BODY14[i]: int(c) for i, c in enumerate(counts) if c}


class SequenceWriter(FinishingWriter):
    """Write a sequence of labelled clouds: frames/<frame:06d>.ply/.npz as they come, optional
    query/<frame:06d>.ply (only the queried parts' points, unless `query_files=False`: clouds that
    hold only those already), optional previews/<frame:06d>.png, and sequence.json (frames,
    timestamps, class names, query, point source, counts).

    sequence.json is rewritten atomically with "complete": false as frames come, and once more at
    `close()` with "complete": true (at `abort()`, after an error or Ctrl-C, with every frame
    written and "complete": false), so an interrupted run leaves a valid manifest. The rewrites
    are paced (`openhuman.io.Throttle`): after every frame while the manifest is small, less often
    as it grows, so a long sequence does not spend its time rewriting it. Opening a folder that
    already holds a sequence resumes it: its frames are kept, and frame files that the manifest
    missed (a crash before its next rewrite) are added; with `resume=False` they are dropped and
    the sequence starts over. Either way a folder whose sequence has another query, formats or
    source is refused (InputError) rather than mixed.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        ontology: str = "body14",
        query: str | None = None,
        source: str = "unknown",
        formats: tuple[str, ...] = ("ply", "npz"),
        query_part_ids: tuple[int, ...] | None = None,
        preview_camera: CameraView | None = None,
        resume: bool = True,
        query_files: bool = True,
    ):
        unknown = set(formats) - {"ply", "npz"}
        if unknown or not formats:
            raise InputError(f"SequenceWriter formats must be a non-empty subset of ply, npz; got {list(formats)}")
        self.root = Path(out_dir)
        self.ontology, self.query, self.source = ontology, query, source
        self.formats: tuple[str, ...] = tuple(f for f in ("ply", "npz") if f in formats)
        self.query_part_ids = None if query_part_ids is None else tuple(int(i) for i in query_part_ids)
        self.query_files = query_files and self.query_part_ids is not None
        self.preview_camera = preview_camera
        self._frames: dict[int, dict[str, Any]] = {}
        self._empty = 0
        """Empty clouds written by this writer (the first is warned about, the count at `close`)."""
        self._complete = False
        self._manifest = Throttle(self._write_manifest)
        self.root.mkdir(parents=True, exist_ok=True)
        self._resume(resume)

    def _settings(self) -> dict[str, Any]:
        """What a folder's sequence must share with this writer to be resumed (also in sequence.json)."""
        ids = None if self.query_part_ids is None else list(self.query_part_ids)
        return {"query": self.query, "query_part_ids": ids, "source": self.source, "formats": list(self.formats)}

    def _resume(self, keep: bool) -> None:
        manifest = self.root / "sequence.json"
        data: dict[str, Any] = {}
        frames: dict[int, dict[str, Any]] = {}
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                frames = {int(f["index"]): f for f in data.get("frames", [])}
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("%s is unreadable; rebuilding it from the frame files", manifest)
                data, frames = {}, {}
        for key, mine in self._settings().items():
            theirs = data.get(key, mine)  # (manifests before "formats" was written: not compared)
            if theirs != mine:
                raise InputError(
                    f"{self.root} holds a sequence with {key} {theirs!r}, not {mine!r}; choose another folder or delete it"
                )
        if not keep:
            return
        self._frames = frames
        for npz in sorted((self.root / "frames").glob("*.npz")):
            if not npz.stem.isdigit() or int(npz.stem) in self._frames:
                continue
            try:
                cloud = read_npz(npz)
            except InputError as exc:
                log.warning("resume: skipping unreadable %s (%s)", npz, exc)
                continue
            self._frames[cloud.frame_index] = self._entry(cloud, self.source)
        if self._frames:
            log.info("resuming sequence in %s with %d frames", self.root, len(self._frames))

    def _entry(self, cloud: LabeledPointCloud, source: str) -> dict[str, Any]:
        stem = f"{cloud.frame_index:06d}"
        files = {fmt: f"frames/{stem}.{fmt}" for fmt in self.formats}
        if self.query_files:
            files["query_ply"] = f"query/{stem}.ply"
        if self.preview_camera is not None:
            files["preview"] = f"previews/{stem}.png"
        return {
            "index": int(cloud.frame_index),
            "timestamp_s": float(cloud.timestamp_s),
            "points": len(cloud),
            "empty": len(cloud) == 0,
            "source": source,
            "counts": class_counts(cloud.labels),
            "unseen_points": int(np.sum(np.asarray(cloud.confidence) == 0)),
            "files": files,
        }

    def write(self, cloud: LabeledPointCloud, source: str | None = None) -> None:
        """Write one frame's files, then the manifest (a frame written twice is replaced)."""
        stem = f"{cloud.frame_index:06d}"
        if "ply" in self.formats:
            write_ply(cloud, self.root / "frames" / f"{stem}.ply")
        if "npz" in self.formats:
            write_npz(cloud, self.root / "frames" / f"{stem}.npz")
        if self.query_files and self.query_part_ids is not None:
            keep = np.isin(cloud.labels, self.query_part_ids)
            write_ply(cloud.subset(keep), self.root / "query" / f"{stem}.ply")
        if self.preview_camera is not None:
            render_preview(cloud, self.preview_camera, self.root / "previews" / f"{stem}.png")
        if len(cloud) == 0:
            self._empty += 1
            log.log(
                logging.WARNING if self._empty == 1 else logging.DEBUG,
                "frame %d: empty cloud written (flagged empty in sequence.json; later ones are counted at the end)",
                cloud.frame_index,
            )
        self._frames[int(cloud.frame_index)] = self._entry(cloud, source or self.source)
        self._manifest.request()

    def _write_manifest(self) -> None:
        frames = [self._frames[i] for i in sorted(self._frames)]
        manifest = {
            "format": "openhuman4d-sequence/1",
            "complete": self._complete,
            "ontology": self.ontology,
            "classes": list(BODY14),
            **self._settings(),
            "frame_count": len(frames),
            "empty_frames": [f["index"] for f in frames if f["empty"]],
            "total_points": int(sum(f["points"] for f in frames)),
            "frames": frames,
        }
        write_json_atomic(self.root / "sequence.json", manifest, rows=True)

    def close(self) -> None:
        """Mark the sequence complete (rewrites sequence.json)."""
        self._complete = True
        self._manifest.now()
        if self._empty > 1:
            log.warning(
                "%s: %d empty clouds written (of %d frames in the sequence)", self.root, self._empty, len(self._frames)
            )

    def abort(self) -> None:
        """After an error or Ctrl-C: list every frame written so far (still "complete": false)."""
        self._manifest.flush()

"""The capture directory: the project's multi-view format (also written by the synthetic generator).

```
capture.json                 {"fps", "frame_count", "view_ids", "units": "metres", "ontology": "body14"}
cameras.json                 {view_id: {"K" 3x3, "world_from_cam" 4x4, "width", "height", ["dist"]}}
videos/<view>.mp4            RGB, one per view, frame-synchronised
depth/<view>/<frame:06d>.png optional, uint16 millimetres, 0 = no reading
gt/2d/<view>/<frame:06d>.png optional ground truth, uint8 body14 ids
gt/3d/<frame:06d>.npz        optional ground truth: xyz float32[M,3], labels uint8[M], [ids int32[M]]
```
Cameras use OpenCV axes (x right, y down, z forward); the world frame is Z-up, metres. gt/3d
`ids` (optional) name the body point of each 3D sample: the same id is the same point in every
frame (correspondences), while each frame lists only the points on its outer surface.
A single plain video opens as a capture with one view "video", no cameras, depth or ground truth.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openhuman.errors import InputError
from openhuman.io import NEW_DIR_MODE, FinishingWriter, read_png, write_json_atomic, write_png_atomic
from openhuman.types import CameraView, Frame
from openhuman.video import VideoInfo, VideoWriter, probe_video, read_video

log = logging.getLogger(__name__)

CAPTURE_JSON = "capture.json"
CAMERAS_JSON = "cameras.json"
_MM_MAX = 65535
_VIEW_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
"""View ids name files and folders: letters, digits, '_', '.', '-' (not starting with '.' or '-')."""


@dataclass(frozen=True)
class CaptureMeta:
    fps: float
    frame_count: int
    view_ids: tuple[str, ...]
    units: str = "metres"
    ontology: str = "body14"
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Free-form JSON metadata from the producer (e.g. the synthetic clip name and seed)."""

    def to_json(self) -> dict[str, Any]:
        out = {
            "fps": self.fps,
            "frame_count": self.frame_count,
            "view_ids": list(self.view_ids),
            "units": self.units,
            "ontology": self.ontology,
        }
        if self.extra:
            out["extra"] = self.extra
        return out


# --- cameras.json ---------------------------------------------------------------------------


def camera_to_json(cam: CameraView) -> dict[str, Any]:
    """One camera as plain JSON lists (float64 values round-trip exactly through json)."""
    out: dict[str, Any] = {
        "K": np.asarray(cam.K, dtype=np.float64).tolist(),
        "world_from_cam": np.asarray(cam.world_from_cam, dtype=np.float64).tolist(),
        "width": int(cam.width),
        "height": int(cam.height),
    }
    if cam.dist is not None:
        out["dist"] = np.asarray(cam.dist, dtype=np.float64).ravel().tolist()
    return out


def write_cameras(path: str | os.PathLike[str], cameras: list[CameraView]) -> None:
    """Write cameras.json atomically: {view_id: camera}, in the given order."""
    write_json_atomic(path, {cam.view_id: camera_to_json(cam) for cam in cameras})


def _camera_problems(view_id: str, entry: Any, where: str) -> list[str]:
    """Problems of one cameras.json entry (empty when valid)."""
    at = f"{where}: camera '{view_id}'"
    if not isinstance(entry, dict):
        return [f"{at} must be an object with K, world_from_cam, width, height"]
    missing = [k for k in ("K", "world_from_cam", "width", "height") if k not in entry]
    if missing:
        return [f"{at} is missing {', '.join(missing)}"]
    probs: list[str] = []
    try:
        K = np.asarray(entry["K"], dtype=np.float64)
        T = np.asarray(entry["world_from_cam"], dtype=np.float64)
    except (TypeError, ValueError):
        return [f"{at}: K and world_from_cam must be numeric nested lists"]
    if K.shape != (3, 3):
        probs.append(f"{at}: K must be 3x3, got shape {list(K.shape)}")
    elif not np.all(np.isfinite(K)):
        probs.append(f"{at}: K contains NaN or inf")
    elif K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]):
        probs.append(f"{at}: K must have fx, fy > 0 and last row [0, 0, 1]")
    if T.shape != (4, 4):
        probs.append(f"{at}: world_from_cam must be 4x4, got shape {list(T.shape)}")
    elif not np.all(np.isfinite(T)):
        probs.append(f"{at}: world_from_cam contains NaN or inf")
    else:
        R = T[:3, :3]
        if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
            probs.append(f"{at}: world_from_cam last row must be [0, 0, 0, 1]")
        if not np.allclose(R.T @ R, np.eye(3), atol=1e-5):
            probs.append(f"{at}: world_from_cam rotation is not orthonormal (R^T R != I)")
        elif np.linalg.det(R) < 0:
            probs.append(f"{at}: world_from_cam rotation has det -1 (a reflection); it must be +1")
    for key in ("width", "height"):
        v = entry[key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            probs.append(f"{at}: {key} must be a positive integer, got {v!r}")
    if entry.get("dist") is not None:
        try:
            d = np.asarray(entry["dist"], dtype=np.float64).ravel()
        except (TypeError, ValueError):  # strings, nested lists of different lengths, objects
            d = np.array([np.nan])
        if d.size not in (4, 5, 8, 12, 14) or not np.all(np.isfinite(d)):
            probs.append(f"{at}: dist must be 4, 5, 8, 12 or 14 finite OpenCV coefficients")
    return probs


def _camera_from_json(view_id: str, entry: dict[str, Any]) -> CameraView:
    dist = entry.get("dist")
    return CameraView(
        view_id=view_id,
        K=np.asarray(entry["K"], dtype=np.float64),
        world_from_cam=np.asarray(entry["world_from_cam"], dtype=np.float64),
        width=int(entry["width"]),
        height=int(entry["height"]),
        dist=None if dist is None else np.asarray(dist, dtype=np.float64).ravel(),
    )


def read_cameras(path: str | os.PathLike[str]) -> dict[str, CameraView]:
    """Read and validate cameras.json; InputError with the first problem."""
    p = Path(path)
    data = _load_json(p)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{p}: must be a non-empty object {{view_id: camera}}")
    for view_id, entry in data.items():
        probs = _camera_problems(view_id, entry, str(p))
        if probs:
            raise InputError(probs[0])
    return {view_id: _camera_from_json(view_id, entry) for view_id, entry in data.items()}


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: missing; a capture directory needs {path.name}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); fix or regenerate it") from None


# --- capture.json ---------------------------------------------------------------------------


def _check_view_id_chars(where: str | os.PathLike[str], ids: list[str]) -> None:
    bad = [v for v in ids if not _VIEW_ID.fullmatch(v)]
    if bad:
        raise InputError(f"{where}: view ids {bad} may only use letters, digits, '_', '.', '-'")


def _meta_from_json(path: Path) -> CaptureMeta:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: must be a JSON object with fps, frame_count, view_ids")
    missing = [k for k in ("fps", "frame_count", "view_ids") if k not in data]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}")
    fps, count, views = data["fps"], data["frame_count"], data["view_ids"]
    if not isinstance(fps, int | float) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
        raise InputError(f"{path}: fps must be a positive number, got {fps!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InputError(f"{path}: frame_count must be a non-negative integer, got {count!r}")
    if not isinstance(views, list) or not views or not all(isinstance(v, str) and v for v in views):
        raise InputError(f"{path}: view_ids must be a non-empty list of names")
    _check_view_id_chars(path, views)
    if len(set(views)) != len(views):
        raise InputError(f"{path}: view_ids has duplicates: {views}")
    units = data.get("units", "metres")
    if units != "metres":
        raise InputError(f'{path}: units must be "metres", got {units!r}')
    ontology = data.get("ontology", "body14")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise InputError(f"{path}: extra must be a JSON object, got {type(extra).__name__}")
    return CaptureMeta(
        fps=float(fps), frame_count=count, view_ids=tuple(views), units=units, ontology=str(ontology), extra=extra
    )


# --- validation -----------------------------------------------------------------------------


def check_capture(root: str | os.PathLike[str], decode: bool = False) -> list[str]:
    """Problems that make `root` unusable as a capture directory or video (empty list when valid).

    Checks capture.json, cameras.json (shapes, finiteness, rigid rotations), that view ids agree
    across capture.json, cameras.json and videos/, and each video's size/frame count/fps against
    its camera and capture.json. Depth and ground-truth images are checked when read. A video
    file is probed. `decode`: also decode every frame of every video, which finds truncated or
    corrupt files whose header still declares every frame (a 4-view capture of 40 frames at
    640x480 from `openhuman synth`: 0.09 instead of 0.05 s).
    """
    r = Path(root)
    if r.is_file():
        try:
            info = probe_video(r)
        except InputError as exc:
            return [str(exc)]
        return _decode_problems(info) if decode else []
    if not r.exists():
        return [f"{r}: not found; give a capture directory or a video file"]
    if not r.is_dir():
        return [f"{r}: not a directory; give a capture directory or a video file"]
    try:
        meta = _meta_from_json(r / CAPTURE_JSON)
    except InputError as exc:
        return [str(exc)]
    problems: list[str] = []
    cams_path = r / CAMERAS_JSON
    cams: dict[str, Any] = {}
    try:
        data = _load_json(cams_path)
        if isinstance(data, dict) and data:
            cams = data
        else:
            problems.append(f"{cams_path}: must be a non-empty object {{view_id: camera}}")
    except InputError as exc:
        problems.append(str(exc))
    for view_id, entry in cams.items():
        problems += _camera_problems(view_id, entry, str(cams_path))
    problems += _view_id_problems(r, meta, cams)
    for view_id in meta.view_ids:
        problems += _video_problems(r, view_id, meta, cams.get(view_id), decode)
    return problems


def _view_id_problems(r: Path, meta: CaptureMeta, cams: dict[str, Any]) -> list[str]:
    videos_dir = r / "videos"
    if not videos_dir.is_dir():
        return [f"{videos_dir}: missing; a capture needs videos/<view>.mp4 for each view"]
    want = list(meta.view_ids)
    probs: list[str] = []
    for where, have in ((r / CAMERAS_JSON, list(cams)), (videos_dir, sorted(p.stem for p in videos_dir.glob("*.mp4")))):
        if where.name == CAMERAS_JSON and not cams:
            continue  # cameras.json itself is broken; reported already
        missing = [v for v in want if v not in have]
        extra = [v for v in have if v not in want]
        what = "cameras" if where.name == CAMERAS_JSON else "videos"
        if missing:
            probs.append(f"{where}: no {what} for view ids {missing} listed in {CAPTURE_JSON} view_ids {want}")
        if extra:
            probs.append(f"{where}: {what} for view ids {extra} that {CAPTURE_JSON} view_ids {want} does not list")
    return probs


def _video_problems(r: Path, view_id: str, meta: CaptureMeta, cam: Any, decode: bool) -> list[str]:
    path = r / "videos" / f"{view_id}.mp4"
    if not path.is_file():
        return []  # reported by _view_id_problems
    try:
        info = probe_video(path)
    except InputError as exc:
        return [str(exc)]
    probs = _decode_problems(info) if decode else []
    if info.frame_count != meta.frame_count:
        probs.append(f"{path}: has {info.frame_count} frames but {CAPTURE_JSON} frame_count is {meta.frame_count}")
    if abs(info.fps - meta.fps) > 1e-3 * meta.fps:
        probs.append(f"{path}: fps {info.fps:g} differs from {CAPTURE_JSON} fps {meta.fps:g}")
    if isinstance(cam, dict) and (info.width, info.height) != (cam.get("width"), cam.get("height")):
        probs.append(
            f"{path}: video size {info.width}x{info.height} differs from camera '{view_id}' "
            f"width x height {cam.get('width')}x{cam.get('height')} in {CAMERAS_JSON}"
        )
    return probs


def _decode_problems(info: VideoInfo) -> list[str]:
    """Decode every frame of a video: a problem unless all the frames its header declares decode."""
    import av

    decoded = 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in container.decode(stream):
                decoded += 1
    except (av.error.FFmpegError, OSError) as exc:
        log.debug("%s: decoding stopped: %s", info.path, exc)
    if decoded >= info.frame_count:
        return []
    return [
        f"{info.path}: only {decoded} of its {info.frame_count} frames decode (truncated or corrupt); "
        "re-export or re-copy the video"
    ]


# --- reading --------------------------------------------------------------------------------


@dataclass
class Capture:
    """An opened capture (directory or plain video). Use `Capture.open(path)`."""

    root: Path
    meta: CaptureMeta
    cameras: dict[str, CameraView] | None
    videos: dict[str, Path] = field(default_factory=dict)
    is_plain_video: bool = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Capture:
        """Open a capture directory (validated with `check_capture`) or a single video file."""
        p = Path(path)
        if p.is_file():
            info: VideoInfo = probe_video(p)
            meta = CaptureMeta(fps=info.fps, frame_count=info.frame_count, view_ids=("video",))
            return cls(root=p, meta=meta, cameras=None, videos={"video": p}, is_plain_video=True)
        if not p.exists():
            raise InputError(f"{p}: not found; give a capture directory or a video file")
        problems = check_capture(p)
        if problems:
            raise InputError(problems[0])
        meta = _meta_from_json(p / CAPTURE_JSON)
        cams = read_cameras(p / CAMERAS_JSON)
        cameras = {v: cams[v] for v in meta.view_ids}
        videos = {v: p / "videos" / f"{v}.mp4" for v in meta.view_ids}
        return cls(root=p, meta=meta, cameras=cameras, videos=videos)

    @property
    def view_ids(self) -> tuple[str, ...]:
        return self.meta.view_ids

    @property
    def frame_count(self) -> int:
        return self.meta.frame_count

    @property
    def fps(self) -> float:
        return self.meta.fps

    def _check_view(self, view_id: str) -> None:
        if view_id not in self.meta.view_ids:
            raise InputError(f"{self.root}: no view '{view_id}'; views are {list(self.meta.view_ids)}")

    def frames(self, view_id: str, start: int = 0, stride: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
        """Stream one view's frames (see `openhuman.video.read_video`)."""
        self._check_view(view_id)
        return read_video(self.videos[view_id], view_id, start=start, stride=stride, max_frames=max_frames)

    def synced(self, start: int = 0, stride: int = 1, max_frames: int | None = None) -> Iterator[list[Frame]]:
        """Stream lists of one Frame per view (in `view_ids` order) with the same index."""
        readers = [self.frames(v, start, stride, max_frames) for v in self.view_ids]
        for group in zip(*readers, strict=False):
            idx = {f.index for f in group}
            if len(idx) != 1:
                raise InputError(
                    f"{self.root}: views decoded different frame indices {sorted(idx)}; a video is corrupt"
                )
            yield list(group)

    def _frame_file(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def _expected_size(self, view_id: str) -> tuple[int, int] | None:
        if self.cameras is None:
            return None
        cam = self.cameras[view_id]
        return (cam.height, cam.width)

    def _no_plain_video(self, what: str) -> None:
        if self.is_plain_video:
            raise InputError(f"{self.root}: a plain video has no {what}; use a capture directory")

    def _read_sized(self, path: Path, view_id: str, dtype: type, what: str) -> np.ndarray:
        self._no_plain_video(what)
        if not path.is_file():
            raise InputError(f"{path}: missing {what} image")
        img = read_png(path)
        want = self._expected_size(view_id)
        if img.ndim != 2 or img.dtype != dtype:
            raise InputError(
                f"{path}: {what} must be a single-channel {np.dtype(dtype).name} PNG, got {img.dtype}{list(img.shape)}"
            )
        if want is not None and img.shape != want:
            raise InputError(
                f"{path}: {what} image is {img.shape[1]}x{img.shape[0]} but camera '{view_id}' is {want[1]}x{want[0]}"
            )
        return img

    @property
    def has_depth(self) -> bool:
        return not self.is_plain_video and (self.root / "depth").is_dir()

    def depth(self, view_id: str, index: int) -> np.ndarray:
        """float32[H,W] depth in metres along the camera z axis; NaN where there is no reading."""
        self._check_view(view_id)
        path = self._frame_file("depth", view_id, f"{index:06d}.png")
        mm = self._read_sized(path, view_id, np.uint16, "depth")
        out = mm.astype(np.float32) / np.float32(1000.0)
        out[mm == 0] = np.nan
        return out

    @property
    def has_gt_2d(self) -> bool:
        return not self.is_plain_video and (self.root / "gt" / "2d").is_dir()

    def gt_2d(self, view_id: str, index: int) -> np.ndarray:
        """uint8[H,W] ground-truth body14 ids."""
        self._check_view(view_id)
        return self._read_sized(self._frame_file("gt", "2d", view_id, f"{index:06d}.png"), view_id, np.uint8, "gt_2d")

    @property
    def has_gt_3d(self) -> bool:
        return not self.is_plain_video and (self.root / "gt" / "3d").is_dir()

    def gt_3d(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(xyz float32[M,3] world metres, labels uint8[M] body14 ids) of frame `index`."""
        xyz, labels, _ = self.gt_3d_with_ids(index)
        return xyz, labels

    def gt_3d_with_ids(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """`gt_3d` of frame `index` and the body-point id of each point, int32 [M] (the same id is
        the same point in every frame), or None when the file has none: (xyz, labels, ids)."""
        self._no_plain_video("3D ground truth")
        path = self._frame_file("gt", "3d", f"{index:06d}.npz")
        if not path.is_file():
            raise InputError(f"{path}: missing 3D ground truth")
        try:
            with np.load(path) as data:
                xyz, labels = data["xyz"], data["labels"]
                ids = data.get("ids")
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: unreadable 3D ground truth ({exc}); needs arrays xyz and labels") from None
        if xyz.ndim != 2 or xyz.shape[1] != 3 or labels.shape != (xyz.shape[0],):
            raise InputError(
                f"{path}: xyz must be [M,3] and labels [M], got {list(xyz.shape)} and {list(labels.shape)}"
            )
        if ids is not None and ids.shape != labels.shape:
            raise InputError(f"{path}: gt/3d ids must be [M] like labels, got {list(ids.shape)}")
        return (
            xyz.astype(np.float32, copy=False),
            labels.astype(np.uint8, copy=False),
            None if ids is None else ids.astype(np.int32, copy=False),
        )


# --- writing --------------------------------------------------------------------------------


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """float[H,W] metres (NaN/<=0/too far = no reading) -> uint16[H,W] millimetres, 0 = no reading."""
    d = np.asarray(depth_m, dtype=np.float64)
    mm = np.rint(d * 1000.0)
    bad = ~np.isfinite(mm) | (mm <= 0) | (mm > _MM_MAX)
    return np.where(bad, 0, mm).astype(np.uint16)


class CaptureWriter(FinishingWriter):
    """Write a capture directory; atomic: a temporary sibling folder is renamed onto `root` on success.

    `write_frame(view_id, index, rgb, depth_m=None, gt_2d=None)` takes each view's frames in index
    order 0, 1, 2, ...; one VideoWriter per view stays open. `extra` (JSON-serialisable) is
    stored in capture.json as producer metadata. `lossless=True` (default) stores RGB
    with libx264rgb crf 0, which decord reads back bit-exactly. If the with-block raises, nothing
    appears at `root`. An existing `root` is refused unless `overwrite=True`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        fps: float,
        cameras: list[CameraView],
        overwrite: bool = False,
        lossless: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        if self.root.exists() and not overwrite:
            raise InputError(f"{self.root}: already exists; choose a new folder or pass overwrite=True")
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise InputError(f"{self.root}: fps must be a positive number, got {fps}")
        ids = [c.view_id for c in cameras]
        if not ids or len(set(ids)) != len(ids):
            raise InputError(f"{self.root}: cameras must be non-empty with unique view ids, got {ids}")
        _check_view_id_chars(self.root, ids)
        for cam in cameras:
            probs = _camera_problems(cam.view_id, camera_to_json(cam), str(self.root))
            if probs:
                raise InputError(probs[0])
        self.fps = float(fps)
        self.cameras = {c.view_id: c for c in cameras}
        self.lossless = lossless
        self.extra = dict(extra or {})
        json.dumps(self.extra)  # fail now, not at close, if it is not JSON-serialisable
        self._done = False
        self._counts = dict.fromkeys(ids, 0)
        self._writers: dict[str, VideoWriter] = {}
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.", suffix=".tmp", dir=self.root.parent))
        self._tmp.chmod(NEW_DIR_MODE)  # mkdtemp makes it 0700; a capture is an ordinary folder

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"{self.root}: the capture writer is already closed")

    def write_frame(
        self,
        view_id: str,
        index: int,
        rgb: np.ndarray,
        depth_m: np.ndarray | None = None,
        gt_2d: np.ndarray | None = None,
    ) -> None:
        """Add frame `index` of `view_id`: rgb uint8[H,W,3], depth float[H,W] metres, gt_2d uint8[H,W]."""
        self._check_open()
        if view_id not in self.cameras:
            raise ValueError(f"unknown view '{view_id}'; cameras are {list(self.cameras)}")
        if index != self._counts[view_id]:
            raise ValueError(f"view '{view_id}': expected frame {self._counts[view_id]} next, got {index}")
        cam = self.cameras[view_id]
        size = (cam.height, cam.width)
        rgb = np.asarray(rgb)
        if rgb.shape != (*size, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"view '{view_id}': rgb must be uint8{[*size, 3]}, got {rgb.dtype}{list(rgb.shape)}")
        if view_id not in self._writers:
            self._writers[view_id] = VideoWriter(self._tmp / "videos" / f"{view_id}.mp4", self.fps, self.lossless)
        self._writers[view_id].write(rgb)
        name = f"{index:06d}.png"
        if depth_m is not None:
            if np.shape(depth_m) != size:
                raise ValueError(f"view '{view_id}': depth must be {list(size)}, got {list(np.shape(depth_m))}")
            write_png_atomic(self._tmp / "depth" / view_id / name, depth_to_mm(depth_m))
        if gt_2d is not None:
            gt = np.asarray(gt_2d)
            if gt.shape != size or not (np.issubdtype(gt.dtype, np.integer) and gt.min() >= 0 and gt.max() <= 255):
                raise ValueError(f"view '{view_id}': gt_2d must be integer ids 0..255 of shape {list(size)}")
            write_png_atomic(self._tmp / "gt" / "2d" / view_id / name, gt.astype(np.uint8))
        self._counts[view_id] += 1

    def write_gt_3d(self, index: int, xyz: np.ndarray, labels: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Store 3D ground truth of frame `index`: xyz float[M,3] world metres, labels int[M] body14,
        optional ids int[M] (the same id is the same body point in every frame)."""
        self._check_open()
        xyz = np.asarray(xyz, dtype=np.float32)
        labels = np.asarray(labels)
        if xyz.ndim != 2 or xyz.shape[1] != 3 or labels.shape != (xyz.shape[0],):
            raise ValueError(f"gt_3d: xyz must be [M,3] and labels [M], got {list(xyz.shape)} and {list(labels.shape)}")
        arrays = {"xyz": xyz, "labels": labels.astype(np.uint8)}
        if ids is not None:
            if np.shape(ids) != labels.shape:
                raise ValueError(f"gt_3d: ids must be [M] like labels, got {list(np.shape(ids))}")
            arrays["ids"] = np.asarray(ids, np.int32)
        path = self._tmp / "gt" / "3d" / f"{index:06d}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)

    def close(self) -> Path:
        """Finish the videos, write capture.json/cameras.json and move the folder onto `root`."""
        if self._done:
            return self.root
        counts = set(self._counts.values())
        if len(counts) != 1 or 0 in counts:
            self.abort()
            raise ValueError(f"{self.root}: every view needs the same, non-zero number of frames; got {self._counts}")
        try:
            for w in self._writers.values():
                w.close()
            meta = CaptureMeta(fps=self.fps, frame_count=counts.pop(), view_ids=tuple(self.cameras), extra=self.extra)
            write_json_atomic(self._tmp / CAPTURE_JSON, meta.to_json())
            write_cameras(self._tmp / CAMERAS_JSON, list(self.cameras.values()))
            self._swap_into_place()
            self._done = True
        except BaseException:
            self.abort()
            raise
        return self.root

    def _swap_into_place(self) -> None:
        old = None
        if self.root.exists():
            old = self.root.with_name(f".{self.root.name}.old-{os.getpid()}")
            os.replace(self.root, old)
        os.replace(self._tmp, self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Discard everything written so far (a no-op once `close` has succeeded)."""
        if self._done:
            return
        for w in self._writers.values():
            w.abort()
        self._writers.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)

"""Video and image input/output: streamed decoding (decord), probing and atomic writing (PyAV).

Reading never holds the whole clip in memory: frames are decoded in small batches on demand.
Every file is probed with PyAV first, so a missing, empty, truncated or non-video file gives a
one-line `InputError` naming the file instead of a crash inside a decoder.

Orientation: frames come out as a player shows them. A video's display rotation (the matrix
phones write for portrait clips instead of turning the pixels) and a JPEG's EXIF orientation are
applied, and `VideoInfo.width`/`height` are the displayed size.

Truncated files: a file whose index (MP4 `moov` atom) is missing cannot be opened and raises
`InputError`. A file that opens but whose data ends early (e.g. a "faststart" MP4 cut short) is
read as far as it decodes, with a warning saying how many frames were read; decoding falls back
from decord to PyAV for such files.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from openhuman.errors import InputError
from openhuman.io import FinishingWriter, publish, temporary_file
from openhuman.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_BATCH = 8  # frames decoded per decord call: bounded memory, few calls


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int
    """Number of frames the container declares (or counted packets when it declares none)."""
    fps: float
    """Average frame rate in frames per second."""
    width: int
    height: int
    """Size of the frames as displayed (after `rotation`)."""
    rotation: int = 0
    """Degrees (0, 90, 180 or 270) a player turns the stored frames counter-clockwise by: the
    stream's display matrix (phones record portrait video as landscape frames plus this)."""


def _import_decord() -> Any:
    """Import decord, loading OpenCV first.

    decord's bundled libraries clash with OpenCV's zlib/libpng when decord is loaded first:
    every later `cv2.imread`/`cv2.imdecode` of a PNG then fails ("libpng error: bad parameters
    to zlib"). Loading cv2 first avoids it (checked with decord 0.6.0, opencv-contrib 4.11).
    """
    import cv2  # noqa: F401  (must precede decord, see above)
    import decord

    if not log.isEnabledFor(logging.DEBUG):
        # decord's FFmpeg logs every decoding error of a truncated or corrupt file to the terminal
        # ("[h264 @ 0x...] Invalid NAL unit size", ...), and PyAV decodes through the same library
        # once decord is loaded; what matters reaches the user as one warning or InputError
        decord.logging.set_level(decord.logging.QUIET)
    return decord


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; give a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes); re-export or re-copy the video")


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read container metadata (frame count, fps, size) without decoding the clip.

    Raises InputError naming the file when it is missing, empty, not a video, or unreadable.
    """
    import av

    p = Path(path)
    _check_file(p)
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p}: no readable video stream (not a video, or truncated); give a video file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            count = int(stream.frames or 0)
            if count <= 0:
                count = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        msg = getattr(exc, "strerror", None) or str(exc).splitlines()[0] or type(exc).__name__
        raise InputError(f"{p}: not a readable video (truncated, corrupt or not a video): {msg}") from None
    if width <= 0 or height <= 0 or fps <= 0:
        raise InputError(f"{p}: video stream has no valid size or frame rate; re-encode the file")
    if count <= 0:
        raise InputError(f"{p}: video has no frames; re-export the video")
    rotation = _display_rotation(p)
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(path=p, frame_count=count, fps=fps, width=width, height=height, rotation=rotation)


def _display_rotation(path: Path) -> int:
    """The display rotation of a video's first frame in degrees counter-clockwise, as 0, 90, 180
    or 270 (PyAV's `VideoFrame.rotation`; 0 when the first frame does not decode)."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0), None)
    except (av.error.FFmpegError, OSError, ValueError):
        return 0
    return 0 if frame is None else int(round(frame.rotation / 90)) % 4 * 90


def check_range(start: int, stride: int, max_frames: int | None, where: object) -> None:
    """InputError unless start >= 0, stride >= 1 and max_frames is None or >= 0 (`where` names the source)."""
    if start < 0:
        raise InputError(f"{where}: start must be >= 0, got {start}")
    if stride < 1:
        raise InputError(f"{where}: stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 0:
        raise InputError(f"{where}: max_frames must be >= 0 or None, got {max_frames}")


def _select(n: int, start: int, stride: int, max_frames: int | None) -> range:
    idx = range(start, n, stride)
    return idx if max_frames is None else idx[:max_frames]


def read_video(
    path: str | os.PathLike[str],
    view_id: str = "video",
    start: int = 0,
    stride: int = 1,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Stream frames `start, start+stride, ...` (at most `max_frames`) of a video file.

    Yields Frame(view_id, index, timestamp_s=index/fps, rgb uint8[H,W,3]), turned upright by the
    stream's display rotation (`VideoInfo.rotation`; decord 0.6 applies it itself, the PyAV path
    here). Decodes with decord in batches of a few frames; falls back to PyAV (with a warning)
    when decord cannot decode a truncated file. Raises InputError for unreadable files (before
    yielding anything).
    """
    p = Path(path)
    check_range(start, stride, max_frames, p)
    info = probe_video(p)
    return _read_video_iter(info, view_id, start, stride, max_frames)


def _read_video_iter(info: VideoInfo, view_id: str, start: int, stride: int, max_frames: int | None) -> Iterator[Frame]:
    decord = _import_decord()
    requested = _select(info.frame_count, start, stride, max_frames)
    wanted = requested
    if len(wanted) == 0:
        return
    try:
        reader = decord.VideoReader(str(info.path), ctx=decord.cpu(0), num_threads=1)
        n = len(reader)
    except (decord.DECORDError, RuntimeError) as exc:
        # PyAV decides: it reads what it can, or the caller raises a one-line error
        log.debug("%s: decord cannot open it (%s); decoding with PyAV", info.path, exc)
        yield from _read_with_pyav(info, view_id, wanted)
        return
    if n < info.frame_count:  # reported once, at the end, with the count that was read
        log.debug("%s: decord finds %d of the %d frames the header declares", info.path, n, info.frame_count)
        wanted = _select(n, start, stride, max_frames)
    pos = 0
    while pos < len(wanted):
        chunk = list(wanted[pos : pos + _BATCH])
        try:
            batch = reader.get_batch(chunk).asnumpy()
            if batch.shape[1:] != (info.height, info.width, 3):  # a display rotation it got wrong
                raise RuntimeError(f"decord gave frames of {batch.shape[1:]}")
        except (decord.DECORDError, RuntimeError) as exc:
            # also happens on intact files: decord 0.6.0 fails on some small widths (8, 16, 24, 48 px);
            # PyAV warns if frames are then missing
            why = str(exc).splitlines()[0][-120:]
            log.debug("%s: decord cannot decode frame %d (%s); decoding with PyAV instead", info.path, chunk[0], why)
            del reader
            yield from _read_with_pyav(info, view_id, requested[pos:], already=pos)
            return
        for i, rgb in zip(chunk, batch, strict=True):
            yield Frame(view_id=view_id, index=i, timestamp_s=i / info.fps, rgb=np.ascontiguousarray(rgb))
        pos += len(chunk)
    if len(wanted) < len(requested):
        _warn_short(info, len(wanted), len(requested))


def _warn_short(info: VideoInfo, got: int, requested: int) -> None:
    log.warning(
        "%s: only %d of %d requested frames could be decoded (the header declares %d); the file looks "
        "truncated or corrupt",
        info.path,
        got,
        requested,
        info.frame_count,
    )


def _read_with_pyav(info: VideoInfo, view_id: str, wanted: range, already: int = 0) -> Iterator[Frame]:
    """Decode sequentially with PyAV, yielding the wanted indices that decode; warn if some don't.

    `already` = frames of this request yielded before (by decord); InputError only when no frame
    of the whole request decodes.
    """
    import av

    todo = set(wanted)
    last = wanted[-1]
    got = 0
    try:
        with av.open(str(info.path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in todo:
                    rgb: np.ndarray = frame.to_ndarray(format="rgb24")
                    if info.rotation:  # as decord gives it (and players show it)
                        rgb = np.ascontiguousarray(np.rot90(rgb, info.rotation // 90))
                    got += 1
                    yield Frame(view_id=view_id, index=i, timestamp_s=i / info.fps, rgb=rgb)
                if i >= last:
                    break
    except (av.error.FFmpegError, OSError) as exc:
        log.debug("%s: PyAV stopped: %s", info.path, exc)
    if got == 0 and already == 0:
        raise InputError(f"{info.path}: no frame could be decoded (truncated or corrupt); re-export the video")
    if got < len(wanted):
        _warn_short(info, already + got, already + len(wanted))


def _image_files(path: Path) -> list[Path]:
    if path.is_dir() and (path / "capture.json").is_file():
        raise InputError(f"{path}: is a capture directory; open it with openhuman.capture.Capture.open")
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path}: folder has no .png/.jpg images; give a video, an image or an image folder")
        return files
    _check_file(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: not a .png/.jpg image")
    return [path]


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one image file as RGB uint8[H,W,3], upright by its EXIF orientation (phone photos are
    stored turned and tagged); gray is expanded, alpha dropped."""
    import cv2

    # IMREAD_COLOR applies the EXIF orientation (IMREAD_UNCHANGED would not); ANYDEPTH keeps a
    # 16-bit image 16-bit, so it is refused below instead of scaled down
    img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise InputError(f"cannot read image {path}: missing or not a valid image file")
    if img.dtype != np.uint8:
        raise InputError(f"{path}: image is {img.dtype}, expected 8-bit; convert it to 8-bit RGB")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def read_images(
    folder_or_file: str | os.PathLike[str],
    view_id: str = "images",
    fps: float = 30.0,
    start: int = 0,
    stride: int = 1,
    max_frames: int | None = None,
    same_size: bool = False,
) -> Iterator[Frame]:
    """Stream a sorted folder of .png/.jpg images (or one image) as Frames, one file at a time.

    Frame index = position in the sorted file list; timestamp_s = index / fps. `same_size`: the
    images are frames of one video; InputError at the first whose size differs from the first's,
    before it is yielded.
    """
    p = Path(folder_or_file)
    check_range(start, stride, max_frames, p)
    if not p.exists():
        raise InputError(f"{p}: not found; give a video file, an image or an image folder")
    if not math.isfinite(fps) or fps <= 0:
        raise InputError(f"{p}: fps must be a positive number, got {fps}")
    files = _image_files(p)
    wanted = _select(len(files), start, stride, max_frames)
    return _read_images_iter(p, files, wanted, view_id, fps, same_size)


def _read_images_iter(
    folder: Path, files: list[Path], wanted: range, view_id: str, fps: float, same_size: bool
) -> Iterator[Frame]:
    first: tuple[Path, tuple[int, ...]] | None = None
    for i in wanted:
        rgb = load_image(files[i])
        if same_size and first is None:
            first = (files[i], rgb.shape[:2])
        elif same_size and first is not None and rgb.shape[:2] != first[1]:
            (h, w), (h0, w0) = rgb.shape[:2], first[1]
            raise InputError(
                f"{files[i]}: image is {w}x{h} but {first[0].name} is {w0}x{h0}; the frames of a video must share "
                f"one size: resize the images, or parse unrelated photos with `openhuman parse {folder} --static`"
            )
        yield Frame(view_id=view_id, index=i, timestamp_s=i / fps, rgb=rgb)


def open_frames(
    path: str | os.PathLike[str],
    view_id: str | None = None,
    start: int = 0,
    stride: int = 1,
    max_frames: int | None = None,
    same_size: bool = False,
) -> Iterator[Frame]:
    """Stream frames from a video file, an image folder or a single image (chosen by the path).

    `view_id` defaults to "video" for videos and "images" for images; `same_size`: see `read_images`.
    """
    p = Path(path)
    if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES:
        return read_images(
            p, view_id or "images", start=start, stride=stride, max_frames=max_frames, same_size=same_size
        )
    return read_video(p, view_id or "video", start=start, stride=stride, max_frames=max_frames)


class VideoWriter(FinishingWriter):
    """Write RGB frames to an H.264 MP4 with PyAV, atomically.

    Frames go to a temporary file next to `path`, renamed onto `path` by `close()`; if the
    with-block raises, the temporary file is removed and no output file appears.

    lossless=False: libx264, yuv420p, crf `crf`; odd widths/heights are padded by one edge
    pixel column/row (yuv420p needs even sizes), with a warning.
    lossless=True: libx264rgb with crf 0 (RGB, no chroma subsampling, any size). decord decodes
    such files back bit-exactly (checked in tests/test_video.py), so captures round-trip RGB
    exactly; the files are larger (~compressed PNG size).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, lossless: bool = False, crf: int = 18) -> None:
        if not math.isfinite(fps) or fps <= 0:
            raise InputError(f"{path}: fps must be a positive number, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.lossless = lossless
        self.crf = crf
        self.frame_count = 0
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None  # (height, width) of the input frames
        self._tmp: Path | None = None

    def _open(self, height: int, width: int) -> None:
        import av

        self._tmp = temporary_file(self.path)
        self._container = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
        rate = Fraction(self.fps).limit_denominator(1001)
        if self.lossless:
            stream = self._container.add_stream("libx264rgb", rate=rate)
            stream.pix_fmt = "rgb24"
            stream.options = {"crf": "0", "preset": "ultrafast"}
            stream.width, stream.height = width, height
        else:
            stream = self._container.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            # one encoder thread: x264's frame threads cost a third more CPU per frame (640x480:
            # 5.3 -> 3.5 ms) and the writer runs beside the parsers, which use every core
            stream.options = {"crf": str(self.crf), "preset": "veryfast", "threads": "1"}
            stream.width, stream.height = width + width % 2, height + height % 2
            if width % 2 or height % 2:
                log.warning("%s: %dx%d is odd; padding to even size for H.264 yuv420p", self.path, width, height)
        self._stream = stream
        self._size = (height, width)

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame, uint8[H,W,3] RGB; every frame must have the first frame's size."""
        import av
        import cv2

        arr = np.asarray(rgb)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"{self.path}: frames must be uint8[H,W,3] RGB, got {arr.dtype}{list(arr.shape)}")
        if self._container is None:
            self._open(arr.shape[0], arr.shape[1])
        if arr.shape[:2] != self._size:
            raise ValueError(f"{self.path}: frame {self.frame_count} is {arr.shape[:2]}, expected {self._size}")
        if not self.lossless and (arr.shape[0] % 2 or arr.shape[1] % 2):
            arr = np.pad(arr, ((0, arr.shape[0] % 2), (0, arr.shape[1] % 2), (0, 0)), mode="edge")
        if self.lossless:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        else:  # OpenCV's BT.601 (video range) conversion, as libswscale's, at a sixth of its CPU
            yuv = np.asarray(cv2.cvtColor(arr, cv2.COLOR_RGB2YUV_I420), np.uint8)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frame_count += 1

    def close(self) -> None:
        """Flush the encoder and rename the temporary file onto `path`."""
        if self._container is None:
            if self.frame_count == 0 and self._tmp is None:
                raise ValueError(f"{self.path}: no frames were written; refusing to write an empty video")
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            assert self._tmp is not None
            publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the output: close the container and delete the temporary file."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # best effort while discarding
                log.debug("%s: error while discarding the temporary video", self.path, exc_info=True)
            self._container = None
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()

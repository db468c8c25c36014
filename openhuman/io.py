"""Atomic file output: write to a temporary name next to the target, then rename.

A crash or Ctrl-C never leaves a partial file under the final name.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self


class FinishingWriter:
    """Base of writers that finish with `close()` and discard unfinished work with `abort()`.

    As a context manager: `close()` when the block succeeds, `abort()` when it raises.
    """

    def close(self) -> Any:
        raise NotImplementedError

    def abort(self) -> None:
        """Discard unfinished output (default: nothing to discard)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Throttle:
    """Paces a rewrite whose cost grows with the run, such as a manifest listing every frame so far.

    Call `request()` after each change: it rewrites now when due and otherwise owes the rewrite,
    which `flush()` (at the end, on an error or Ctrl-C) makes; `now()` rewrites at once. A rewrite
    is due once `ratio` times the last one's duration has passed since it ended. Rewrites then
    take at most about 1 / (ratio + 1) of the time however long the run gets (rewriting after
    every change would grow with the square of its length), while a cheap rewrite early on still
    happens after every change.
    """

    def __init__(
        self, rewrite: Callable[[], None], ratio: float = 20.0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.rewrite = rewrite
        self.ratio = float(ratio)
        self.clock = clock
        self.owed = False
        """Changes were made since the last rewrite."""
        self._next = -math.inf

    def due(self) -> bool:
        return self.clock() >= self._next

    def request(self) -> None:
        self.owed = True
        if self.due():
            self.now()

    def flush(self) -> None:
        if self.owed:
            self.now()

    def now(self) -> None:
        t0 = self.clock()
        self.rewrite()
        t1 = self.clock()
        self._next = t1 + self.ratio * (t1 - t0)
        self.owed = False


def _umask() -> int:
    """The process umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import
NEW_FILE_MODE = 0o666 & ~_UMASK
"""The mode `open()` gives a new file: 0o666 less the umask."""
NEW_DIR_MODE = 0o777 & ~_UMASK
"""The mode `mkdir` gives a new folder: 0o777 less the umask."""


def publish(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename a finished temporary file onto `target` with the mode a plainly created file would
    have (`tempfile.mkstemp` makes files only their owner can read)."""
    os.chmod(tmp, NEW_FILE_MODE)
    os.replace(tmp, target)


TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?")
"""Names of `temporary_file`'s files: `.<stem>.<8 random>.tmp<suffix>` (what a hard kill leaves)."""


def temporary_file(target: str | os.PathLike[str]) -> Path:
    """A new empty file next to `target` (its folder created) to write `target` under, then
    `publish`. The name keeps the target's suffix so libraries that pick a format by extension
    (open3d, PyAV, OpenCV) still work, and matches `TEMP_NAME`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder (`temporary_file`); rename it onto `path` on
    success."""
    target = Path(path)
    tmp_path = temporary_file(target)
    try:
        yield tmp_path
        publish(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, rows: bool = False) -> None:
    """Write `obj` as JSON indented by 2, or with `rows` (for files that grow with the run) as
    `json_rows` text."""
    write_text_atomic(path, json_rows(obj) if rows else json.dumps(obj, indent=2) + "\n")


def json_rows(obj: dict[str, Any]) -> str:
    """JSON text of a dict with each key on a line of its own, and each item of a list value that
    holds objects (frames, images, annotations) on a line of its own.

    `json.dumps(indent=...)` runs Python's encoder; this runs the C one on every value: 5 instead
    of 17 ms for the manifest of a 600-frame sequence, and the text still reads line by line.
    """

    def value(v: Any) -> str:
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return "[\n    " + ",\n    ".join(json.dumps(x) for x in v) + "\n  ]"
        return json.dumps(v)

    return "{\n" + ",\n".join(f"  {json.dumps(k)}: {value(v)}" for k, v in obj.items()) + "\n}\n"


def write_png_atomic(path: str | os.PathLike[str], image: Any) -> None:
    """Write a uint8 gray/RGB or uint16 gray image as PNG (RGB in, not BGR)."""
    import cv2
    import numpy as np

    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    write_bytes_atomic(path, buf.tobytes())


def read_png(path: str | os.PathLike[str]) -> Any:
    """Read a PNG as stored (uint8/uint16 gray, or RGB). Raises InputError if unreadable."""
    import cv2

    from openhuman.errors import InputError

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"cannot read image {path}: missing or not a valid image file")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
    return arr

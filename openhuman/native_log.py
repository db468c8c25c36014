"""Keep native libraries' start-up chatter off the terminal.

mediapipe's C++ graphs and TFLite log through absl straight to file descriptor 2, so neither
Python's logging nor `GLOG_minloglevel` / `TF_CPP_MIN_LOG_LEVEL` silences them: every view's
parser prints "Feedback manager requires a model with a single signature inference", "Created
TensorFlow Lite XNNPACK delegate" and the like, about twenty lines that bury the progress bar.
`filter_native_stderr()` routes descriptor 2 through a pipe and a thread that drops absl's
info/warning lines and TFLite's info lines and passes everything else on (absl errors, fatal
messages, anything else a library prints); Python's own `sys.stderr` writes to the terminal
directly, so rich and tqdm still see a terminal. The `openhuman` CLI installs it unless run with
`--verbose`.

Limit: a native crash (abort) right after a message can kill the process before the thread has
passed that message on; `--verbose` leaves descriptor 2 alone.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [\w.+-]+:\d+\]"  # absl INFO/WARNING: I0000 00:00:1795.. 11021 file.cc:114]
    rb"|INFO: Created TensorFlow Lite"  # TFLite's delegate notice
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
"""Lines dropped from descriptor 2 (absl E/F lines and everything else pass)."""

_state: dict[str, object] = {}


def filter_native_stderr() -> bool:
    """Install the filter once per process (False if it was already installed or descriptor 2
    cannot be duplicated)."""
    if _state:
        return False
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
    except (OSError, ValueError, AttributeError):
        return False
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = open(terminal, "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False)  # noqa: SIM115
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, terminal), name="openhuman-stderr", daemon=True)
    pump.start()
    _state.update(terminal=terminal, pump=pump)
    atexit.register(_restore)
    return True


def _pump(read_end: int, terminal: int) -> None:
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            if not NOISE.match(line):
                os.write(terminal, line)


def _restore() -> None:
    """Point descriptor 2 back at the terminal and let the thread pass on what is left."""
    terminal, pump = _state["terminal"], _state["pump"]
    assert isinstance(terminal, int) and isinstance(pump, threading.Thread)
    os.dup2(terminal, 2)  # closes the pipe's last write end: the thread reads to the end and stops
    pump.join(timeout=1.0)

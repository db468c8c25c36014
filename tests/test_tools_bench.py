"""tools/bench_pipeline.py: CPU time is split by thread role."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest


def _spin(seconds: float, then: threading.Event | None = None, done: threading.Event | None = None) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    if done is not None and then is not None:
        done.set()
        then.wait()  # stay alive (idle) until told: a thread's CPU is read while it lives


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread CPU needs Linux /proc")
def test_thread_cpu_by_role(load_tool):
    bench = load_tool("bench_pipeline")
    release, spun = threading.Event(), threading.Event()
    with bench.ThreadCpu() as cpu:
        worker = threading.Thread(target=_spin, args=(0.6, release, spun), name="openhuman-view_0")
        worker.start()
        spun.wait()  # the main thread waits: it uses almost no CPU meanwhile
        _spin(0.3)
    release.set()
    worker.join()
    roles = cpu.last(60.0)
    assert roles["view workers"] == pytest.approx(0.6, abs=0.15)
    assert roles["main"] == pytest.approx(0.3, abs=0.15)
    assert "export thread" not in roles
    # only the block's last part: the worker had finished by then
    tail = cpu.last(0.2)
    assert tail.get("view workers", 0.0) < 0.05
    assert tail["main"] > 0.1

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
        # longer than the tail window (0.2 s) plus the sampling interval (0.25 s), so the sample
        # the tail starts from is always taken after the worker finished
        _spin(0.6)
    release.set()
    worker.join()
    roles = cpu.last(60.0)
    assert roles["view workers"] == pytest.approx(0.6, abs=0.15)
    assert roles["main"] == pytest.approx(0.6, abs=0.15)
    assert "export thread" not in roles
    # only the block's last part: the worker had finished by then
    tail = cpu.last(0.2)
    assert tail.get("view workers", 0.0) < 0.05
    assert tail["main"] > 0.1


def test_ratio_pairs_reports_the_median_of_alternating_pairs(load_tool, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from rich.console import Console

    bench = load_tool("bench_pipeline")
    walls = iter([11.0, 15.0, 9.0])  # 10 steady view-frames a pair; parse alone takes 5 s of them
    monkeypatch.setattr(bench, "parse_only", lambda *a: (6.0, 1.0, 14, 4))
    monkeypatch.setattr(bench, "end_to_end", lambda *a: (next(walls), SimpleNamespace(startup_seconds=1.0)))
    first = {"end_to_end": {"k=1": {"steady_ratio_to_parse_only": 0.6}}}
    out = bench.ratio_pairs(tmp_path, tmp_path, None, 4, first, Console(file=None, quiet=True))
    assert out["ratios"] == [0.6, 0.5, round(5 / 14, 3), 0.625]
    assert out["median"] == pytest.approx((0.5 + 0.6) / 2)
    assert (out["min"], out["max"]) == (round(5 / 14, 3), 0.625)

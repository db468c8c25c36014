"""End-to-end: the streaming pipeline, its run directory, resume, and the CLI (subprocess)."""

import json
import operator
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openhuman.config import PipelineConfig
from openhuman.errors import InputError
from openhuman.io import read_png
from openhuman.ontology import PART_ID
from openhuman.outputs import RunWriter
from openhuman.pipeline import Pipeline

LEFT_HAND = PART_ID["left hand"]


@pytest.fixture(scope="module")
def run_dir(synth_capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    summary = Pipeline(PipelineConfig(query="left hand")).run(synth_capture, out, progress=False)
    return out, summary


def _no_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_run_writes_every_output(run_dir, synth_capture):
    from pycocotools import mask as mask_utils

    from lifting.export import read_ply
    from openhuman.video import probe_video

    out, summary = run_dir
    views = json.loads((synth_capture / "capture.json").read_text())["view_ids"]
    assert summary.frames == 8 and summary.views == len(views) == 4
    assert 0 < summary.startup_seconds <= summary.wall_seconds
    assert summary.query_parts == ["left hand"]
    for v in views:
        assert len(list((out / "labels" / v).glob("*.png"))) == 8
        assert len(list((out / "masks" / v).glob("*.png"))) == 8
        assert probe_video(out / "overlays" / f"{v}.mp4").frame_count == 8
        assert (out / "previews" / f"overlay_{v}.png").is_file()
    # the query masks hold only the left hand, and the COCO RLE decodes to the PNG masks
    coco = json.loads((out / "masks.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["left hand"]
    assert coco["annotations"], "the left hand was never found"
    ann = coco["annotations"][0]
    image = next(i for i in coco["images"] if i["id"] == ann["image_id"])
    png = read_png(out / image["file_name"])
    assert set(np.unique(png)) <= {0, LEFT_HAND}
    np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), png == LEFT_HAND)
    # labelled point clouds: one per frame, read back with labels
    seq = json.loads((out / "points" / "sequence.json").read_text())
    assert len(seq["frames"]) == 8 and {f["source"] for f in seq["frames"]} == {"depth"}
    cloud = read_ply(out / "points" / seq["frames"][0]["files"]["ply"])
    assert len(cloud) > 1000 and cloud.labels.max() > 0
    q = read_ply(out / "points" / seq["frames"][-1]["files"]["query_ply"])
    assert set(np.unique(q.labels)) <= {LEFT_HAND}
    assert (out / "previews" / "points.png").is_file()
    assert _no_temp_files(out) == []


def test_overlay_preview_is_the_frame_showing_most_of_the_query(run_dir, synth_capture):
    from openhuman.capture import Capture
    from openhuman.masks import draw_overlay

    out, _ = run_dir
    labels = {p.stem: read_png(p) for p in sorted((out / "labels" / "cam0").glob("*.png"))}
    best = max(labels, key=lambda k: (int((labels[k] == LEFT_HAND).sum()), -int(k)))  # the first of equals
    assert (labels[best] == LEFT_HAND).any()
    frame = next(f for f in Capture.open(synth_capture).frames("cam0") if f.index == int(best))
    want = draw_overlay(frame.rgb, labels[best], highlight_ids=[LEFT_HAND])
    np.testing.assert_array_equal(read_png(out / "previews" / "overlay_cam0.png"), want)


def test_run_scores_against_ground_truth(run_dir):
    _, summary = run_dir
    m = summary.metrics
    assert {"miou_2d", "miou_3d", "flip_rate_2d", "flip_rate_3d", "flip_rate_3d_body"} <= set(m)
    # measured on this capture: 2D/3D mIoU 0.906 / 0.912, flip rates 0.0011 (2D) / 0.019 (3D body);
    # the parser alone (views not relabelled from the cloud) scores 0.627 in 2D, no left/right
    # correction 0.824 / 0.823 and 0.035
    assert 0 <= m["flip_rate_3d_body"] < 0.05
    assert m["miou_2d"] > 0.86
    assert m["miou_3d"] > 0.86
    assert 0 <= m["flip_rate_2d"] < 0.01
    saved = json.loads((run_dir[0] / "summary.json").read_text())
    assert saved["metrics"] == m
    assert summary.people == saved["people"] == [0]  # one person, one id shared by every view


@pytest.mark.parametrize("paced", [False, True], ids=["rewrite-each-frame", "rewrite-at-end"])
def test_interrupted_run_resumes_and_skips_finished_frames(synth_capture, tmp_path, monkeypatch, request, paced):
    if paced:  # as if rewriting state.json and sequence.json were slow: only the end or abort rewrite them
        request.getfixturevalue("never_due")
    out = tmp_path / "out"
    cfg = PipelineConfig(query="right foot")
    cfg.video.max_frames = 5
    original = RunWriter.write
    calls = {"n": 0}

    def interrupt_after_two(self, result):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        original(self, result)

    monkeypatch.setattr(RunWriter, "write", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        Pipeline(cfg).run(synth_capture, out, progress=False)
    monkeypatch.setattr(RunWriter, "write", original)
    assert json.loads((out / "state.json").read_text())["done"] == [0, 1]
    assert [f["index"] for f in json.loads((out / "points" / "sequence.json").read_text())["frames"]] == [0, 1]
    assert not (out / "summary.json").exists()
    assert (out / "previews" / "overlay_cam0.png").is_file()  # from the finished frames
    assert _no_temp_files(out) == []
    # what a hard kill (SIGKILL) leaves: the writers' temporary files, which the resume removes
    stale = ["overlays/.cam0.oezgmz9w.tmp.mp4", ".state.k2j4h5g6.tmp.json", "labels/cam1/.000002.a_c1234x.tmp.png",
             "points/frames/.000002.zzzzzzzz.tmp.npz"]  # fmt: skip
    for name in stale:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"cut short")
    (out / ".notes.tmp.txt").write_text("the user's own hidden file")

    summary = Pipeline(cfg).run(synth_capture, out, progress=False)
    assert _no_temp_files(out) == [out / ".notes.tmp.txt"]
    assert (summary.frames_skipped, summary.frames) == (2, 3)
    coco = json.loads((out / "masks.json").read_text())
    assert sorted({i["frame_index"] for i in coco["images"]}) == [0, 1, 2, 3, 4]
    seq = json.loads((out / "points" / "sequence.json").read_text())
    assert [f["index"] for f in seq["frames"]] == [0, 1, 2, 3, 4]
    from openhuman.video import probe_video

    assert probe_video(out / "overlays" / "cam0.mp4").frame_count == 5
    # the summary describes all 5 frames of the folder, not only the 3 of this session
    from openhuman.capture import Capture
    from openhuman.metrics import confusion_matrix, mean_iou
    from openhuman.ontology import BODY14, NUM_CLASSES

    cap = Capture.open(synth_capture)
    labels = {(v, i): read_png(out / "labels" / v / f"{i:06d}.png") for v in cap.view_ids for i in range(5)}
    conf = sum(confusion_matrix(lab, cap.gt_2d(v, i), NUM_CLASSES) for (v, i), lab in labels.items())
    assert summary.metrics["miou_2d"] == round(float(mean_iou(conf)), 4)
    assert {"miou_3d", "flip_rate_2d", "flip_rate_3d"} <= set(summary.metrics)
    foot = PART_ID["right foot"]
    assert summary.parts_found == {BODY14[foot]: sum(int((lab == foot).any()) for lab in labels.values())}
    # a finished run re-run does nothing, and its summary still describes the whole run
    again = Pipeline(cfg).run(synth_capture, out, progress=False)
    assert (again.frames, again.frames_skipped) == (0, 5)
    assert (again.metrics, again.parts_found) == (summary.metrics, summary.parts_found)
    assert json.loads((out / "summary.json").read_text())["metrics"] == summary.metrics


def test_rerun_of_a_finished_run_reports_what_the_run_reported(run_dir, synth_capture, tmp_path):
    """A re-run reads the run's label maps and clouds back and scores them: the same figures as
    the run that scored them as it went."""
    import shutil

    out = shutil.copytree(run_dir[0], tmp_path / "out")
    first = run_dir[1]
    again = Pipeline(PipelineConfig(query="left hand")).run(synth_capture, out, progress=False)
    assert (again.frames, again.frames_skipped) == (0, 8)
    assert again.metrics == first.metrics and again.parts_found == first.parts_found
    assert again.points_per_frame == pytest.approx(first.points_per_frame)


@pytest.mark.parametrize("k", [1, 3])
def test_each_view_steps_in_order_and_never_concurrently(synth_capture, monkeypatch, k):
    """Views run concurrently and time step t + 1 overlaps the lifting of t, but one view's
    tracker (stateful parser) must see its frames one at a time, in order, then the end of the
    stream (None). With keyframes (k=3) the trackers return frames late; every time step still
    comes out once, in order."""
    import threading
    import time

    from openhuman import pipeline

    real_step = pipeline._ViewStepper.step
    busy: set[int] = set()
    seen: dict[int, list[int]] = {}
    lock = threading.Lock()

    def checked_step(self, frame):
        with lock:
            assert id(self) not in busy, "a view's tracker was stepped from two threads at once"
            busy.add(id(self))
            seen.setdefault(id(self), []).append(frame.index if frame is not None else "end")
        time.sleep(0.01)  # widen the window in which an overlap would show
        try:
            return real_step(self, frame)
        finally:
            with lock:
                busy.discard(id(self))

    monkeypatch.setattr(pipeline._ViewStepper, "step", checked_step)
    cfg = PipelineConfig(query="left hand")
    cfg.workers = 4
    cfg.tracking.keyframe_interval = k
    pipe = Pipeline(cfg)
    results = list(pipe.stream(synth_capture))
    assert [r.frame_index for r in results] == list(range(8))
    assert all(p.frame_index == r.frame_index for r in results for p in r.parses)
    assert len(seen) == 4 and all(order == [*range(8), "end"] for order in seen.values())
    assert pipe.parser_calls >= (4 * 8 if k == 1 else 4 * 3)


def test_stream_frees_the_views_parser_state_at_the_end(synth_capture, monkeypatch):
    """Each view's stateful parser holds ~200 MB of mediapipe graphs: a finished stream must free
    them, or a process that runs many clips grows by that much per clip and view."""
    from openhuman.parsing.mediapipe_backend import MediapipeParser

    closed: list[int] = []
    real_close = MediapipeParser.close

    def counting_close(self):
        closed.append(id(self))
        real_close(self)

    monkeypatch.setattr(MediapipeParser, "close", counting_close)
    cfg = PipelineConfig(query="left hand")
    cfg.video.max_frames = 2
    pipe = Pipeline(cfg)
    assert len(list(pipe.stream(synth_capture))) == 2
    assert len(set(closed)) == 4  # one parser per view
    assert len(list(pipe.stream(synth_capture))) == 2  # the pipeline still works afterwards


def test_stream_shortens_the_thread_switch_interval_only_while_it_runs(synth_capture):
    cfg = PipelineConfig(query="left hand")
    cfg.video.max_frames = 2
    before = sys.getswitchinterval()
    seen = [sys.getswitchinterval() for _ in Pipeline(cfg).stream(synth_capture)]
    assert seen == [0.0005, 0.0005] and sys.getswitchinterval() == before
    cfg.switch_interval_ms = 0  # leave Python's
    assert [sys.getswitchinterval() for _ in Pipeline(cfg).stream(synth_capture)] == [before] * 2
    cfg.switch_interval_ms = -1
    with pytest.raises(InputError, match="switch_interval_ms must be >= 0"):
        Pipeline(cfg)


def test_output_dir_of_another_run_is_refused(run_dir, synth_capture):
    with pytest.raises(InputError, match="another source or config"):
        Pipeline(PipelineConfig(query="head")).run(synth_capture, run_dir[0], progress=False)


def test_a_query_spelled_with_other_case_or_spaces_resumes_the_same_run(synth_capture):
    from openhuman.pipeline import config_fingerprint

    same = config_fingerprint(PipelineConfig(query="left hand"), synth_capture)
    assert config_fingerprint(PipelineConfig(query=" Left  Hand"), synth_capture) == same
    assert config_fingerprint(PipelineConfig(query="head"), synth_capture) != same


def test_run_that_fails_before_its_first_frame_does_not_block_a_corrected_one(synth_capture, tmp_path):
    import dataclasses

    import torch

    out = tmp_path / "out"
    bad = PipelineConfig(query="left hand")
    bad.parser.backend = "schnet"
    with pytest.raises(InputError, match="parser.schnet.checkpoint: not set"):  # refused before any output
        Pipeline(bad).run(synth_capture, out, progress=False)
    assert not out.exists()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")  # a torch file, not a SCHNet checkpoint:
    bad.parser.schnet = dataclasses.replace(bad.parser.schnet, checkpoint=str(tmp_path / "other.pt"))
    with pytest.raises(InputError, match="not a SCHNet checkpoint"):  # found out when the parsers are built
        Pipeline(bad).run(synth_capture, out, progress=False)
    assert json.loads((out / "state.json").read_text())["done"] == []
    (out / "labels").mkdir()
    (out / "labels" / "stray.png").write_bytes(b"left by the failed run")
    (out / "notes.txt").write_text("the user's own file")
    good = PipelineConfig(query="left hand")
    good.video.max_frames = 2
    summary = Pipeline(good).run(synth_capture, out, progress=False)
    assert (summary.frames, summary.frames_skipped) == (2, 0)
    assert not (out / "labels" / "stray.png").exists() and (out / "notes.txt").is_file()
    assert json.loads((out / "state.json").read_text())["done"] == [0, 1]
    # with finished frames, another config is refused as before
    with pytest.raises(InputError, match="another source or config"):
        Pipeline(bad).run(synth_capture, out, progress=False)


def test_source_replaced_at_the_same_path_is_not_resumed(synth_capture, tmp_path):
    """A video replaced by another at the same path must not resume the old run's frames."""
    import shutil

    video = tmp_path / "clip.mp4"
    shutil.copy(synth_capture / "videos" / "cam1.mp4", video)
    cfg = PipelineConfig(query="hands")
    cfg.video.max_frames = 2
    assert Pipeline(cfg).run(video, tmp_path / "v", progress=False).frames == 2
    assert Pipeline(cfg).run(video, tmp_path / "v", progress=False).frames_skipped == 2  # same file: resumed
    shutil.copy(synth_capture / "videos" / "cam2.mp4", video)  # another clip, same path
    with pytest.raises(InputError, match="source files changed"):
        Pipeline(cfg).run(video, tmp_path / "v", progress=False)


def test_bad_video_range_is_refused_before_any_output(synth_capture, tmp_path):
    cfg = PipelineConfig()
    cfg.video.stride = 0
    with pytest.raises(InputError, match="stride must be >= 1"):
        Pipeline(cfg).run(synth_capture, tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()
    # so are tracking and lifting settings out of range, with the key named (exit 2 from the CLI)
    for section, key, value in [("tracking", "keyframe_interval", 0), ("tracking", "ema_alpha", 2.0),
                                ("tracking", "flow_scale", 3.0), ("lifting", "voxel_size", -1.0),
                                ("parser.mediapipe", "max_people", 0)]:  # fmt: skip
        cfg = PipelineConfig()
        setattr(operator.attrgetter(section)(cfg), key, value)
        with pytest.raises(InputError, match=rf"^{re.escape(section)}\.{key} is {value}; it must be"):
            Pipeline(cfg).run(synth_capture, tmp_path / "never", progress=False)
        assert not (tmp_path / "never").exists()
    for bad, message in [
        (PipelineConfig(workers=-2), "workers must be >= 0"),
        (PipelineConfig(query=" "), "query is empty"),
    ]:
        with pytest.raises(InputError, match=message):
            Pipeline(bad)


def test_plain_video_runs_without_lifting(synth_capture, tmp_path):
    cfg = PipelineConfig(query="hands")
    summary = Pipeline(cfg).run(synth_capture / "videos" / "cam1.mp4", tmp_path / "v", progress=False)
    assert summary.frames == 8 and summary.views == 1
    assert not (tmp_path / "v" / "points").exists()
    assert len(list((tmp_path / "v" / "masks" / "video").glob("*.png"))) == 8
    assert summary.parts_found, "no hand found in any frame"


def test_max_side_runs_a_large_capture_at_the_working_size(synth_capture_factory, run_dir, tmp_path):
    """A 640x480 capture with `video.max_side: 320` scores like the 320x240 render of the same
    motion (run_dir): cameras, depth and ground truth follow the shrunk frames."""
    big = synth_capture_factory(clips=("walk",), views=4, frames=8, width=640, height=480)
    cfg = PipelineConfig(query="left hand")
    cfg.video.max_side = 320
    summary = Pipeline(cfg).run(big, tmp_path / "o", progress=False)
    labels = read_png(tmp_path / "o" / "labels" / "cam0" / "000000.png")
    assert labels.shape == (240, 320)
    m, native = summary.metrics, run_dir[1].metrics
    assert m["miou_2d"] > native["miou_2d"] - 0.03 and m["miou_3d"] > native["miou_3d"] - 0.03
    # measured: 2D / 3D 0.912 / 0.923, against 0.906 / 0.912 for the 320x240 render and 0.943 /
    # 0.932 for the 640x480 one at its own size


def _cli(*args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    exe = Path(sys.executable).with_name("openhuman")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_cli_run_export_and_bad_input(synth_capture, tmp_path):
    res = _cli("run", str(synth_capture), "--query", "the person's right forearm", "--out", "o", "--max-frames",
               "3", "--no-progress", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "miou_2d" in res.stdout and "track ids 0" in res.stdout  # the summary table
    assert "W0000" not in res.stderr and "TensorFlow Lite" not in res.stderr  # mediapipe's native chatter
    saved = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert saved["frames"] == 3 and saved["query_parts"] == ["right forearm"]

    res = _cli("export", "o", "--out", "lh", "--query", "left hand", "--format", "npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    npz = sorted((tmp_path / "lh").rglob("*.npz"))
    assert len(npz) == 3
    with np.load(npz[0]) as data:
        assert set(np.unique(data["labels"])) <= {LEFT_HAND}
    seq = json.loads((tmp_path / "lh" / "sequence.json").read_text())
    assert (seq["query"], seq["query_part_ids"]) == ("left hand", [LEFT_HAND])
    assert not (tmp_path / "lh" / "query").exists()  # its clouds hold only the query already

    res = _cli("run", str(synth_capture), "--query", "car engine", "--out", "bad", cwd=tmp_path)
    assert res.returncode == 2
    assert "error:" in res.stderr and len(res.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "bad").exists()

    res = _cli("run", str(tmp_path / "missing"), "--out", "bad2", cwd=tmp_path)
    assert res.returncode == 2 and "not found" in res.stderr


def test_demo_owns_its_folder(tmp_path):
    """Re-running the demo resumes its own run; another query starts the run afresh, other
    capture settings make the capture again (no 'another run' error for the demo's own folder)."""
    import json

    from openhuman.demo import run_demo

    kw = dict(clip="walk", views=2, frames=3, size="160x120", progress=False)
    first = run_demo(tmp_path, query="left hand", **kw)
    assert first.frames == 3
    again = run_demo(tmp_path, query="left hand", **kw)
    assert again.frames_skipped == 3 and again.frames == 0  # resumed: nothing left to do
    other = run_demo(tmp_path, query="feet", **kw)
    assert other.frames == 3 and other.frames_skipped == 0
    assert other.query_parts == ["left foot", "right foot"]
    longer = run_demo(tmp_path, query="feet", **{**kw, "frames": 4})
    assert longer.frames == 4
    assert json.loads((tmp_path / "capture" / "capture.json").read_text())["frame_count"] == 4


def test_cli_refuses_an_out_it_cannot_write_before_any_work(synth_capture, tmp_path):
    (tmp_path / "afile.txt").write_text("the user's file")
    (tmp_path / "somedir").mkdir()
    cases = [
        (["run", str(synth_capture), "--out", "afile.txt"], "exists and is not a folder"),
        (["run", str(synth_capture), "--out", "afile.txt/sub"], "afile.txt is a file, not a folder"),
        (["export", str(synth_capture), "--out", "afile.txt"], "exists and is not a folder"),
        (["eval", str(synth_capture), "--out", "somedir/"], "names a folder; give a file name"),
        (["config", "--out", "somedir"], "names a folder; give a file name"),
        (["config", "--out", "afile.txt/c.yaml"], "afile.txt is a file, not a folder"),
    ]
    if Path("/proc/self").is_dir():  # a folder nobody can create files in, root included
        cases.append((["run", str(synth_capture), "--out", "/proc/x"], "cannot write in /proc"))
    for args, message in cases:
        res = _cli(*args, cwd=tmp_path)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and message in lines[0], (args, res.stderr)
        assert lines[0].startswith(f"error: --out {args[-1]}")
    assert (tmp_path / "afile.txt").read_text() == "the user's file"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["afile.txt", "somedir"]  # nothing written


def test_export_refuses_the_run_itself_and_an_export_of_another_query(run_dir, tmp_path):
    from openhuman.outputs import export_sequence

    out, _ = run_dir
    before = {p: p.read_bytes() for p in (out / "points").rglob("*") if p.is_file()}
    for target in (out, out / "points", out / "points" / "sub", out.parent):
        with pytest.raises(InputError, match="overlaps the run"):
            export_sequence(out, target, query="feet", formats=["npz"], preview=False)
    assert {p: p.read_bytes() for p in (out / "points").rglob("*") if p.is_file()} == before
    assert export_sequence(out, tmp_path / "feet", query="feet", formats=["npz"], preview=False) == 8
    (tmp_path / "feet" / "frames" / ".000003.abcdefgh.tmp.npz").write_bytes(b"left by a hard kill")
    assert export_sequence(out, tmp_path / "feet", query="feet", formats=["npz"], preview=False) == 8  # again: same
    assert _no_temp_files(tmp_path / "feet") == []
    for query, formats in (("hands", ["npz"]), ("feet", ["ply"])):
        with pytest.raises(InputError, match="holds a sequence with"):
            export_sequence(out, tmp_path / "feet", query=query, formats=formats, preview=False)
    seq = json.loads((tmp_path / "feet" / "sequence.json").read_text())
    assert seq["query"] == "feet" and len(seq["frames"]) == 8
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's own file")
    with pytest.raises(InputError, match="not an exported sequence"):
        export_sequence(out, tmp_path / "mine", query="feet", formats=["npz"], preview=False)


def test_overlay_videos_play_at_the_source_rate_over_the_stride(synth_capture, tmp_path):
    from openhuman.video import probe_video

    cfg = PipelineConfig(query="left hand")
    cfg.video.stride, cfg.video.max_frames = 2, 2
    Pipeline(cfg).run(synth_capture, tmp_path / "out", progress=False)
    info = probe_video(tmp_path / "out" / "overlays" / "cam0.mp4")
    assert (info.frame_count, info.fps) == (2, pytest.approx(15.0))  # every 2nd frame of 30 fps
    Pipeline(cfg).run(synth_capture, tmp_path / "out", progress=False)  # re-run: overlays rebuilt
    assert probe_video(tmp_path / "out" / "overlays" / "cam0.mp4").fps == pytest.approx(15.0)


def test_cli_synth_and_eval_errors_read_as_cli_errors(tmp_path):
    (tmp_path / "cap").mkdir()
    res = _cli("synth", "cap", "--frames", "2", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.splitlines() == [
        "error: cap: already exists; choose a new folder or pass --overwrite"
    ]
    res = _cli("eval", "cap", cwd=tmp_path)  # not a capture: the error is the first line, no blank line before it
    assert res.returncode == 2 and res.stderr.splitlines()[0].startswith("error: "), res.stderr


def test_two_people_keep_one_id_each_in_every_view_and_in_the_cloud(synth_capture_factory, tmp_path):
    from scipy.spatial import cKDTree

    from openhuman.sources import open_source

    cap = synth_capture_factory(clips=("walk",), views=4, frames=3, width=320, height=240, people=2,
                                root_motion="in_place", gt_points=1000)  # fmt: skip
    cfg = PipelineConfig()
    cfg.parser.mediapipe.max_people = 2
    src = open_source(cap)
    results = list(Pipeline(cfg).stream(src))
    for r in results:
        assert all(set(np.unique(p.person_ids)) == {-1, 0, 1} for p in r.parses)  # both, in every view
        gt_xyz, _, ids = src.gt_3d_with_ids(r.frame_index)
        dist, nn = cKDTree(gt_xyz).query(r.cloud.xyz)
        person = (ids[nn] >= 1000)[dist < 0.03]  # gt/3d sample ids of the second person start at 1000
        track = r.cloud.track_ids[dist < 0.03]
        shared = [np.bincount(track[person == k]).argmax() for k in (False, True)]
        assert shared[0] != shared[1]
        assert min(np.mean(track[person == k] == shared[k]) for k in (0, 1)) > 0.95


def test_export_keeps_only_the_chosen_people(run_dir, tmp_path, caplog):
    from lifting.export import read_npz
    from openhuman.outputs import export_sequence

    out, _ = run_dir
    assert export_sequence(out, tmp_path / "all", query=None, formats=["npz"], preview=False) == 8
    assert export_sequence(out, tmp_path / "p0", query=None, formats=["npz"], preview=False, people=[0]) == 8
    for i in range(8):
        name = f"frames/{i:06d}.npz"
        every, p0 = (read_npz(tmp_path / d / name) for d in ("all", "p0"))
        assert len(p0) == len(every) > 0 and set(np.unique(p0.track_ids)) == {0}  # the one person is 0
    # a person the run does not hold is a mistake to point out, not an export of empty clouds
    # (the run's summary.json lists its people: refused before any frame is read or written)
    with pytest.raises(InputError, match=r"^--person 7: no point of this run carries that id; its people are \[0\]$"):
        export_sequence(out, tmp_path / "p7", query=None, formats=["npz"], preview=False, people=[0, 7])
    with caplog.at_level("WARNING"), pytest.raises(InputError, match=r"^--person 7: "):
        export_sequence(out, tmp_path / "p7", query=None, formats=["npz"], preview=False, people=[7])
    assert not (tmp_path / "p7").exists() and "empty cloud" not in caplog.text  # no frame was written
    # without a summary (a points/ folder alone) the clouds themselves tell, and nothing is left
    fake = _fake_run(tmp_path / "fake")
    with pytest.raises(InputError, match=r"^--person 3: no point of this run carries that id; its people are \[0\]$"):
        export_sequence(fake, tmp_path / "f3", query=None, formats=["npz"], preview=False, people=[3])
    assert not (tmp_path / "f3").exists()
    with pytest.raises(InputError, match="holds a sequence with source"):  # every person into p0
        export_sequence(out, tmp_path / "p0", query=None, formats=["npz"], preview=False)
    res = _cli("export", str(out), "--out", str(tmp_path / "bad"), "--person", "left", cwd=tmp_path)
    assert res.returncode == 2 and "--person takes person ids" in res.stderr


def _fake_run(root: Path, frames: int = 3) -> Path:
    """A run folder holding only points/ (what `export` reads), written without parsing anything."""
    from lifting.export import SequenceWriter
    from openhuman.types import LabeledPointCloud

    rng = np.random.default_rng(0)
    with SequenceWriter(root / "points", source="depth") as writer:
        for i in range(frames):
            n = 50
            writer.write(LabeledPointCloud(
                rng.random((n, 3), np.float32), np.full((n, 3), 200, np.uint8), rng.integers(1, 15, n).astype(np.int16),
                np.ones(n, np.float32), np.zeros(n, np.int32), i, i / 30.0,
            ))  # fmt: skip
    return root


def test_export_of_a_damaged_run_is_a_one_line_error_and_leaves_no_output(tmp_path):
    """A malformed sequence.json or a damaged frame file was a traceback (exit 1), and a failure
    part-way left a half-written export; now nothing is written and an earlier export stays."""
    from openhuman.outputs import export_sequence

    run = _fake_run(tmp_path / "run")
    assert export_sequence(run, tmp_path / "earlier", query="feet", formats=["npz"], preview=False) == 3
    earlier = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "earlier").rglob("*") if p.is_file()}
    manifest = (run / "points" / "sequence.json").read_text()
    npz = run / "points" / "frames" / "000001.npz"
    good = npz.read_bytes()
    damages = [
        (lambda: (run / "points" / "sequence.json").write_text('{"frames": ['), "sequence.json: unreadable"),
        (lambda: (run / "points" / "sequence.json").write_text('{"format": "x"}'), "no valid 'frames' list"),
        (lambda: npz.write_bytes(good[:200]), "000001.npz: not a readable point cloud (BadZipFile"),
        (lambda: npz.unlink(), "000001.npz: missing; the run is damaged"),
    ]
    for damage, words in damages:
        damage()
        for out in (tmp_path / "new" / "deeper", tmp_path / "earlier"):
            with pytest.raises(InputError) as err:
                export_sequence(run, out, query="feet", formats=["npz"], preview=False)
            assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert not (tmp_path / "new").exists()
        assert {
            p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "earlier").rglob("*") if p.is_file()
        } == earlier
        assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "run"]  # no temporary folder left
        (run / "points" / "sequence.json").write_text(manifest)
        npz.write_bytes(good)
    (tmp_path / "earlier" / "notes.txt").write_text("the user's own file")
    assert export_sequence(run, tmp_path / "earlier", query="feet", formats=["npz"], preview=False) == 3
    assert (tmp_path / "earlier" / "notes.txt").read_text() == "the user's own file"  # kept when replaced


def test_a_damaged_state_json_is_an_input_error(tmp_path):
    """A state.json that is not JSON was a JSONDecodeError traceback (exit 1) on re-running."""
    from openhuman.outputs import read_state

    (tmp_path / "state.json").write_text('{"fingerprint": ')
    with pytest.raises(InputError, match=r"state\.json: unreadable .*; delete .* and run again"):
        read_state(tmp_path)
    (tmp_path / "state.json").write_text('{"fingerprint": "x", "done": "all"}')
    with pytest.raises(InputError, match="not a run's state"):
        read_state(tmp_path)
    (tmp_path / "state.json").write_text('{"fingerprint": "x", "done": [0, 1]}')
    assert read_state(tmp_path) == {"fingerprint": "x", "done": [0, 1]}


def test_cli_refuses_empty_export_query_and_zero_frame_runs(tmp_path, monkeypatch):
    """`export -q ""` exported every part with exit 0 (run and parse refuse it); `run --max-frames
    0` wrote an empty run with exit 0; Ctrl-C in synth, export or eval promised a resume."""
    from typer.testing import CliRunner

    import openhuman.evaluate
    import openhuman.outputs
    import openhuman.synth
    from openhuman.cli import app

    run = _fake_run(tmp_path / "run")
    runner = CliRunner()
    cases = [
        (["export", str(run), "--query", " ", "--out", str(tmp_path / "e")], "error: --query is empty"),
        (["run", str(tmp_path / "nothing.mp4"), "--max-frames", "0", "--out", str(tmp_path / "r")],
         "error: --max-frames must be >= 1"),
        (["run", str(tmp_path / "nothing.mp4"), "--stride", "0", "--out", str(tmp_path / "r")],
         "error: --stride must be >= 1"),
    ]  # fmt: skip
    for args, words in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and res.output.strip().splitlines() == [res.output.strip()], res.output
        assert res.output.startswith(words), res.output

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    for module, name in ((openhuman.synth, "generate_capture"), (openhuman.outputs, "export_sequence"),
                         (openhuman.evaluate, "evaluate_capture")):  # fmt: skip
        monkeypatch.setattr(module, name, interrupted)
    for args in (["synth", str(tmp_path / "s")], ["export", str(run), "--out", str(tmp_path / "e")],
                 ["eval", str(tmp_path)]):  # fmt: skip
        res = runner.invoke(app, args)
        assert res.exit_code == 130 and "interrupted" in res.output and "resume" not in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_cli_max_side_shrinks_parse_outputs_and_refuses_zero(synth_capture, tmp_path):
    video = synth_capture / "videos" / "cam1.mp4"  # 320x240
    res = _cli(
        "parse", str(video), "--max-side", "160", "--max-frames", "2", "--out", "p", "--no-progress", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert read_png(tmp_path / "p" / "masks" / "000000.png").shape == (120, 160)
    res = _cli("run", str(video), "--max-side", "0", "--out", "r", cwd=tmp_path)
    assert res.returncode == 2 and "--max-side must be >= 1" in res.stderr
    assert not (tmp_path / "r").exists()

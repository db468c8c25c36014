"""openhuman.capture: write-then-read round trip, validation messages, atomic writing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from openhuman.capture import Capture, CaptureWriter, check_capture, depth_to_mm, read_cameras
from openhuman.errors import InputError
from openhuman.io import write_png_atomic
from openhuman.types import CameraView
from openhuman.video import VideoWriter

W, H, N, FPS = 64, 48, 4, 15.0
VIEWS = ("cam0", "cam1")


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _cameras() -> list[CameraView]:
    K = np.array([[55.5, 0.0, 31.5], [0.0, 54.25, 23.5], [0.0, 0.0, 1.0]])
    cams = []
    for i, v in enumerate(VIEWS):
        T = np.eye(4)
        T[:3, :3] = _rot_z(37.0 * i + 11.0) @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])  # looks horizontally
        T[:3, 3] = [0.1 + i, -2.5, 1.2]
        dist = np.array([0.01, -0.002, 0.0, 0.0, 0.0003]) if i == 1 else None
        cams.append(CameraView(v, K, T, W, H, dist))
    return cams


@dataclass
class Written:
    root: Path
    rgb: dict[tuple[str, int], np.ndarray]
    depth_mm: dict[tuple[str, int], np.ndarray]
    gt2d: dict[tuple[str, int], np.ndarray]
    gt3d: dict[int, tuple[np.ndarray, np.ndarray]]


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("cap") / "capture"
    out = Written(root, {}, {}, {}, {})
    yy, xx = np.mgrid[0:H, 0:W]
    with CaptureWriter(root, FPS, _cameras(), extra={"clip": "noise", "seed": 7}) as w:
        for i in range(N):
            for v in VIEWS:
                rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
                rgb[..., 0] = (xx * 4 + i * 9) % 256  # a gradient channel on top of noise
                mm = rng.integers(0, 9000, (H, W)).astype(np.uint16)
                mm[:3] = 0  # no reading
                depth = mm / 1000.0
                depth[mm == 0] = np.nan
                gt = ((xx // 5 + yy // 7 + i) % 15).astype(np.uint8)
                w.write_frame(v, i, rgb, depth_m=depth, gt_2d=gt)
                out.rgb[v, i], out.depth_mm[v, i], out.gt2d[v, i] = rgb, mm, gt
            xyz = rng.normal(size=(30 + i, 3)).astype(np.float32)
            labels = rng.integers(0, 15, 30 + i).astype(np.uint8)
            w.write_gt_3d(i, xyz, labels)
            out.gt3d[i] = (xyz, labels)
    return out


def test_round_trip_is_exact(written: Written) -> None:
    assert check_capture(written.root) == []
    cap = Capture.open(written.root)
    assert cap.view_ids == VIEWS and cap.frame_count == N and cap.fps == FPS
    assert cap.meta.units == "metres" and cap.meta.ontology == "body14"
    assert cap.meta.extra == {"clip": "noise", "seed": 7}
    assert cap.cameras is not None
    for ref in _cameras():
        got = cap.cameras[ref.view_id]
        np.testing.assert_array_equal(got.K, ref.K)
        np.testing.assert_array_equal(got.world_from_cam, ref.world_from_cam)
        assert (got.width, got.height) == (W, H)
        assert (got.dist is None) == (ref.dist is None)
        if ref.dist is not None:
            np.testing.assert_array_equal(got.dist, ref.dist)
    assert cap.has_depth and cap.has_gt_2d and cap.has_gt_3d
    groups = list(cap.synced())
    assert len(groups) == N
    for i, group in enumerate(groups):
        assert [f.view_id for f in group] == list(VIEWS) and {f.index for f in group} == {i}
        for f in group:
            key = (f.view_id, i)
            assert f.timestamp_s == pytest.approx(i / FPS)
            np.testing.assert_array_equal(f.rgb, written.rgb[key])  # lossless: bit-exact RGB
            d = cap.depth(f.view_id, i)
            assert d.dtype == np.float32 and d.shape == (H, W)
            mm = written.depth_mm[key]
            assert np.array_equal(np.isnan(d), mm == 0)
            np.testing.assert_array_equal(np.rint(d[mm > 0] * 1000).astype(np.uint16), mm[mm > 0])
            np.testing.assert_array_equal(cap.gt_2d(f.view_id, i), written.gt2d[key])
        xyz, labels = cap.gt_3d(i)
        np.testing.assert_array_equal(xyz, written.gt3d[i][0])
        np.testing.assert_array_equal(labels, written.gt3d[i][1])
        assert xyz.dtype == np.float32 and labels.dtype == np.uint8


def test_synced_and_frames_respect_start_stride_max(written: Written) -> None:
    cap = Capture.open(written.root)
    groups = list(cap.synced(start=1, stride=2))
    assert [[f.index for f in g] for g in groups] == [[1, 1], [3, 3]]
    np.testing.assert_array_equal(groups[1][1].rgb, written.rgb["cam1", 3])
    assert [f.index for f in cap.frames("cam0", start=0, stride=3, max_frames=1)] == [0]
    assert list(cap.synced(start=N)) == []
    with pytest.raises(InputError, match="no view 'cam9'"):
        cap.frames("cam9")


def test_depth_to_mm_marks_missing_readings() -> None:
    d = np.array([[np.nan, -1.0, 0.0, 0.0004], [0.0006, 1.2345, 65.535, 70.0]])
    np.testing.assert_array_equal(depth_to_mm(d), [[0, 0, 0, 0], [1, 1234, 65535, 0]])


def test_plain_video_opens_as_one_view_capture(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 12.0) as w:
        for i in range(3):
            w.write(np.full((H, W, 3), 40 * i, np.uint8))
    cap = Capture.open(path)
    assert cap.view_ids == ("video",) and cap.cameras is None
    assert cap.frame_count == 3 and cap.fps == pytest.approx(12.0)
    assert not (cap.has_depth or cap.has_gt_2d or cap.has_gt_3d)
    assert [[f.view_id for f in g] for g in cap.synced()] == [["video"]] * 3
    with pytest.raises(InputError, match="plain video has no depth"):
        cap.depth("video", 0)
    with pytest.raises(InputError, match="plain video has no 3D"):
        cap.gt_3d(0)


# --- validation -----------------------------------------------------------------------------


def _edit_json(path: Path, fn: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _cam(key: str, value: object) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        _edit_json(root / "cameras.json", lambda d: d["cam1"].__setitem__(key, value))

    return edit


def _meta(key: str, value: object) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        _edit_json(root / "capture.json", lambda d: d.__setitem__(key, value))

    return edit


def _replace_video(n: int, fps: float, w: int, h: int) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        with VideoWriter(root / "videos" / "cam1.mp4", fps, lossless=True) as vw:
            for _ in range(n):
                vw.write(np.zeros((h, w, 3), np.uint8))

    return edit


_SHEAR = np.eye(4)
_SHEAR[0, 1] = 0.3
_MIRROR = np.diag([1.0, 1.0, -1.0, 1.0])
_NAN_T = np.eye(4)
_NAN_T[0, 3] = np.nan

CASES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "no capture.json": (lambda r: (r / "capture.json").unlink(), ["capture.json", "missing"]),
    "no cameras.json": (lambda r: (r / "cameras.json").unlink(), ["cameras.json", "missing"]),
    "no videos": (lambda r: shutil.rmtree(r / "videos"), ["videos", "missing"]),
    "bad json": (lambda r: (r / "cameras.json").write_text("{nope"), ["cameras.json", "not valid JSON"]),
    "K shape": (_cam("K", [[1, 0], [0, 1]]), ["cam1", "K must be 3x3"]),
    "T shape": (_cam("world_from_cam", np.eye(3).tolist()), ["cam1", "world_from_cam must be 4x4"]),
    "not orthonormal": (_cam("world_from_cam", _SHEAR.tolist()), ["cam1", "orthonormal"]),
    "reflection": (_cam("world_from_cam", _MIRROR.tolist()), ["cam1", "det"]),
    "nan extrinsic": (_cam("world_from_cam", _NAN_T.tolist()), ["cam1", "NaN or inf"]),
    "inf K": (_cam("K", [[float("inf"), 0, 1], [0, 1, 1], [0, 0, 1]]), ["cam1", "K contains NaN or inf"]),
    # non-numeric distortion coefficients were a ValueError traceback (exit 1), not a problem
    "text dist": (_cam("dist", ["a", 0, 0, 0, 0]), ["cam1", "dist must be 4, 5, 8, 12 or 14 finite"]),
    "object dist": (_cam("dist", {"k1": 0.1}), ["cam1", "dist must be 4, 5, 8, 12 or 14 finite"]),
    "camera width": (_cam("width", W + 2), ["cam1.mp4", "video size 64x48", "66x48"]),
    "frame count": (_meta("frame_count", N + 1), ["frames", "frame_count is 5"]),
    "short view": (_replace_video(N - 1, FPS, W, H), ["cam1.mp4", "has 3 frames"]),
    "fps differs": (_replace_video(N, 24.0, W, H), ["cam1.mp4", "fps 24", "fps 15"]),
    "video size": (_replace_video(N, FPS, W - 2, H), ["cam1.mp4", "video size 62x48"]),
    "meta view ids": (
        _meta("view_ids", ["cam0", "cam1", "cam2"]),
        ["cameras.json", "no cameras for view ids ['cam2']", "videos", "no videos"],
    ),
    "video missing": (lambda r: (r / "videos" / "cam1.mp4").unlink(), ["videos", "no videos for view ids ['cam1']"]),
    "extra video": (
        lambda r: shutil.copy(r / "videos" / "cam0.mp4", r / "videos" / "cam7.mp4"),
        ["videos", "videos for view ids ['cam7'] that capture.json"],
    ),
    "extra camera": (
        lambda r: _edit_json(r / "cameras.json", lambda d: d.__setitem__("camX", d["cam0"])),
        ["cameras.json", "cameras for view ids ['camX'] that"],
    ),
    "broken video": (
        lambda r: (r / "videos" / "cam0.mp4").write_bytes(b"garbage" * 10),
        ["cam0.mp4", "not a readable"],
    ),
    "bad fps": (_meta("fps", -3), ["capture.json", "fps must be a positive number"]),
    "bad units": (_meta("units", "feet"), ["capture.json", "units", "metres"]),
    "path in view id": (_meta("view_ids", ["cam0", "../cam1"]), ["capture.json", "'../cam1'", "letters, digits"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validation_errors_name_the_problem(written: Written, tmp_path: Path, case: str) -> None:
    root = tmp_path / "cap"
    shutil.copytree(written.root, root)
    edit, words = CASES[case]
    edit(root)
    problems = check_capture(root)
    assert problems, f"{case}: no problem found"
    with pytest.raises(InputError) as err:
        Capture.open(root)
    assert str(err.value) == problems[0]
    joined = " | ".join(problems)
    for word in words:
        assert word in joined, f"{case}: {word!r} not in {joined!r}"


def test_read_cameras_raises_first_problem(written: Written, tmp_path: Path) -> None:
    root = tmp_path / "cap"
    shutil.copytree(written.root, root)
    assert set(read_cameras(root / "cameras.json")) == set(VIEWS)
    _cam("K", [[0, 0, 1], [0, 1, 1], [0, 0, 1]])(root)
    with pytest.raises(InputError, match="fx, fy > 0"):
        read_cameras(root / "cameras.json")


@pytest.mark.parametrize(
    ("rel", "image", "words"),
    [
        ("depth/cam0/000002.png", np.zeros((H, W + 1), np.uint16), ["000002.png", "depth image is 65x48", "64x48"]),
        ("depth/cam0/000002.png", np.zeros((H, W), np.uint8), ["000002.png", "uint16"]),
        ("gt/2d/cam0/000002.png", np.zeros((H - 1, W), np.uint8), ["gt/2d/cam0/000002.png", "gt_2d image is 64x47"]),
    ],
)
def test_depth_and_gt_sizes_are_checked_when_read(
    written: Written, tmp_path: Path, rel: str, image: np.ndarray, words: list[str]
) -> None:
    root = tmp_path / "cap"
    shutil.copytree(written.root, root)
    write_png_atomic(root / rel, image)
    cap = Capture.open(root)  # still valid as a whole: images are checked lazily
    read = cap.depth if rel.startswith("depth") else cap.gt_2d
    with pytest.raises(InputError) as err:
        read("cam0", 2)
    for word in words:
        assert word in str(err.value)
    with pytest.raises(InputError, match="000099.png"):
        read("cam0", 99)


def test_open_reports_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere"):
        Capture.open(tmp_path / "nowhere")


# --- writer -----------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cap"
    with pytest.raises(RuntimeError, match="boom"), CaptureWriter(root, FPS, _cameras()) as w:
        w.write_frame("cam0", 0, np.zeros((H, W, 3), np.uint8), depth_m=np.ones((H, W)))
        raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []


def test_writer_refuses_existing_root_unless_overwrite(written: Written, tmp_path: Path) -> None:
    root = tmp_path / "cap"
    root.mkdir()
    (root / "old.txt").write_text("old")
    with pytest.raises(InputError, match="already exists"):
        CaptureWriter(root, FPS, _cameras())
    with CaptureWriter(root, FPS, _cameras(), overwrite=True) as w:
        for v in VIEWS:
            w.write_frame(v, 0, written.rgb[v, 0])
    assert w.close() == root  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        w.write_frame("cam0", 1, written.rgb["cam0", 1])
    assert _leftovers(tmp_path) == ["cap"]
    assert not (root / "old.txt").exists()
    cap = Capture.open(root)
    assert cap.frame_count == 1 and not cap.has_depth and not cap.has_gt_2d
    np.testing.assert_array_equal(next(cap.frames("cam1")).rgb, written.rgb["cam1", 0])


def test_writer_rejects_bad_calls(tmp_path: Path) -> None:
    root = tmp_path / "cap"
    rgb = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(ValueError, match="same, non-zero number of frames"), CaptureWriter(root, FPS, _cameras()) as w:
        with pytest.raises(ValueError, match="expected frame 0"):
            w.write_frame("cam0", 1, rgb)
        with pytest.raises(ValueError, match="unknown view"):
            w.write_frame("camZ", 0, rgb)
        with pytest.raises(ValueError, match="rgb must be"):
            w.write_frame("cam0", 0, np.zeros((H, W + 2, 3), np.uint8))
        with pytest.raises(ValueError, match="gt_2d"):
            w.write_frame("cam0", 0, rgb, gt_2d=np.full((H, W), 300))
        w.write_frame("cam0", 0, rgb)  # cam1 gets no frame -> close refuses
    assert _leftovers(tmp_path) == []
    bad = _cameras()
    bad[1] = CameraView("cam1", bad[1].K, np.diag([1.0, 1.0, -1.0, 1.0]), W, H)
    with pytest.raises(InputError, match="det"):
        CaptureWriter(root, FPS, bad)
    with pytest.raises(InputError, match="unique"):
        CaptureWriter(root, FPS, [bad[0], bad[0]])
    with pytest.raises(InputError, match="letters, digits"):
        CaptureWriter(root, FPS, [CameraView("a/b", bad[0].K, np.eye(4), W, H)])
    assert _leftovers(tmp_path) == []


def test_cli_check_capture_exit_codes(written: Written, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from openhuman.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["check-capture", str(written.root)])
    assert ok.exit_code == 0, ok.output
    text = " ".join(ok.output.split())  # rich wraps long lines at spaces
    assert "2 view(s)" in text and "4 frames" in text
    root = tmp_path / "cap"
    shutil.copytree(written.root, root)
    _meta("frame_count", N + 1)(root)
    bad = runner.invoke(app, ["check-capture", str(root)])
    assert bad.exit_code == 2
    text = " ".join(bad.output.split())
    assert "frame_count is 5" in text and "2 problem(s)" in text


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header (at the front) still declares every frame


def test_decode_finds_a_video_cut_short(written: Written, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from openhuman.cli import app

    root = tmp_path / "cap"
    shutil.copytree(written.root, root)
    assert check_capture(root, decode=True) == []
    _cut_in_half(root / "videos" / "cam1.mp4")
    assert check_capture(root) == []  # the headers alone look fine
    problems = check_capture(root, decode=True)
    assert len(problems) == 1 and "cam1.mp4: only" in problems[0] and f"of its {N} frames decode" in problems[0]
    video = tmp_path / "cam.mp4"
    shutil.copy(written.root / "videos" / "cam0.mp4", video)
    _cut_in_half(video)
    res = CliRunner().invoke(app, ["check-capture", str(video)])
    assert res.exit_code == 2 and f"of its {N} frames decode" in " ".join(res.output.split()), res.output
    res = CliRunner().invoke(app, ["check-capture", str(written.root / "videos" / "cam0.mp4")])
    assert res.exit_code == 0 and f"{N} frames" in res.output, res.output


def test_videos_with_a_display_rotation_match_cameras_of_the_displayed_size(written: Written, tmp_path: Path) -> None:
    """A phone in portrait stores turned frames plus a display matrix; its camera is calibrated on
    what a player shows, so the capture validates and reads frames of the camera's size."""
    import av

    root = tmp_path / "cap"
    shutil.copytree(written.root, root)
    with av.open(str(root / "videos" / "cam1.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=int(FPS), options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = H, W, "yuv444p"  # stored turned: 48 wide, 64 high
        stream.set_display_rotation(90)
        for i in range(N):
            stored = np.ascontiguousarray(np.rot90(written.rgb["cam1", i], -1))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode())
    assert check_capture(root) == []
    frames = list(Capture.open(root).frames("cam1"))
    assert len(frames) == N
    for f in frames:
        assert f.rgb.shape == (H, W, 3)
        assert np.abs(f.rgb.astype(int) - written.rgb["cam1", f.index]).mean() < 3


def test_source_max_side_shrinks_frames_cameras_depth_and_gt_together(written: Written) -> None:
    from lifting.geometry import project_points
    from openhuman.sources import open_source, working_size

    assert working_size(3840, 2160, 1280) == (1280, 720)
    assert working_size(640, 480, 1280) == working_size(640, 480, 0) == (640, 480)
    src = open_source(written.root, max_side=W // 2)  # 64x48 -> 32x24
    w, h = W // 2, H // 2
    group = next(iter(src.synced()))
    assert [f.rgb.shape for f in group] == [(h, w, 3)] * len(VIEWS)
    assert np.abs(group[0].rgb.astype(int).mean() - written.rgb["cam0", 0].mean()) < 2  # area-averaged, same image
    assert src.depths(0)["cam1"].shape == src.gt_2d("cam1", 0).shape == (h, w)
    assert set(np.unique(src.gt_2d("cam1", 0))) <= set(np.unique(written.gt2d["cam1", 0]))  # nearest: no new labels
    full = Capture.open(written.root).cameras
    rng = np.random.default_rng(0)
    for v, cam in (src.cameras or {}).items():
        assert (cam.width, cam.height) == (w, h)
        xyz = full[v].center + np.array([0.1, 2.5, -0.2]) + rng.normal(scale=0.3, size=(20, 3))  # in front
        uv, z = project_points(xyz, full[v])
        uv_small, z_small = project_points(xyz, cam)
        assert (z > 0).all()
        np.testing.assert_allclose(uv_small, (uv + 0.5) * [w / W, h / H] - 0.5, atol=1e-6)  # pixel centres scale
        np.testing.assert_allclose(z_small, z)
    native = open_source(written.root).cameras or {}  # max_side 0: as captured
    assert all(np.array_equal(native[v].K, full[v].K) and native[v].width == W for v in VIEWS)
    with pytest.raises(InputError, match="max_side"):
        open_source(written.root, max_side=-1)

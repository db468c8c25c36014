"""openhuman.video: streamed reading, probing, atomic writing, broken-file errors."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np
import pytest

from openhuman.errors import InputError
from openhuman.io import write_png_atomic
from openhuman.video import VideoWriter, _read_with_pyav, open_frames, probe_video, read_images, read_video

N = 24
FPS = 30.0


def _gray_frames(n: int = N, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Frame i is a constant gray level 10*i, so a decoded frame tells its own index."""
    return [np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)]


def _noise_frames(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _write(path: Path, frames: list[np.ndarray], fps: float = FPS, lossless: bool = False) -> Path:
    with VideoWriter(path, fps, lossless=lossless) as w:
        for f in frames:
            w.write(f)
    return path


@pytest.fixture(scope="session")
def gray_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("video") / "gray.mp4", _gray_frames())


def test_probe_reports_container_metadata(gray_video: Path) -> None:
    info = probe_video(gray_video)
    assert (info.frame_count, info.width, info.height) == (N, 64, 48)
    assert info.fps == pytest.approx(FPS)
    assert info.path == gray_video


@pytest.mark.parametrize(
    ("start", "stride", "max_frames", "expected"),
    [
        (0, 1, None, list(range(N))),
        (2, 3, None, list(range(2, N, 3))),
        (5, 4, 3, [5, 9, 13]),
        (N - 1, 1, 5, [N - 1]),
        (N + 6, 1, None, []),
        (0, 1, 0, []),
    ],
)
def test_read_video_start_stride_max_frames(
    gray_video: Path, start: int, stride: int, max_frames: int | None, expected: list[int]
) -> None:
    frames = list(read_video(gray_video, view_id="cam", start=start, stride=stride, max_frames=max_frames))
    assert [f.index for f in frames] == expected
    for f in frames:
        assert f.view_id == "cam"
        assert f.rgb.dtype == np.uint8 and f.rgb.shape == (48, 64, 3)
        assert f.timestamp_s == pytest.approx(f.index / FPS)
        # lossy H.264 of a flat gray frame stays within a few levels of 10*index
        assert abs(float(f.rgb.mean()) - 10 * f.index) < 3


def test_read_video_rejects_bad_range(gray_video: Path) -> None:
    with pytest.raises(InputError, match="stride"):
        read_video(gray_video, stride=0)
    with pytest.raises(InputError, match="start"):
        read_video(gray_video, start=-1)


def test_lossless_round_trip_is_bit_exact_even_at_odd_size(tmp_path: Path) -> None:
    frames = _noise_frames(5, 47, 63)
    path = _write(tmp_path / "exact.mp4", frames, fps=25.0, lossless=True)
    out = list(read_video(path))
    assert len(out) == 5
    for f, ref in zip(out, frames, strict=True):
        np.testing.assert_array_equal(f.rgb, ref)


def test_lossy_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    frames = [np.full((47, 63, 3), 120, np.uint8)] * 3
    info = probe_video(_write(tmp_path / "odd.mp4", frames))
    assert (info.width, info.height) == (64, 48)
    out = next(read_video(info.path))
    assert abs(int(out.rgb[46, 62, 0]) - 120) < 4  # padding replicates the edge


def test_lossy_colours_survive_the_round_trip(tmp_path: Path) -> None:
    """Four flat colour quadrants (red, green, blue, gray) come back as themselves: catches
    swapped channels or chroma planes in the RGB -> YUV 4:2:0 conversion."""
    img = np.zeros((64, 96, 3), np.uint8)
    img[:32, :48], img[:32, 48:], img[32:, :48], img[32:, 48:] = (220, 30, 30), (30, 200, 40), (40, 50, 210), 128
    out = next(read_video(_write(tmp_path / "colours.mp4", [img] * 3)))
    inner = (slice(4, 28), slice(4, 44)), (slice(4, 28), slice(52, 92)), (slice(36, 60), slice(4, 44))
    for sl in (*inner, (slice(36, 60), slice(52, 92))):
        np.testing.assert_allclose(out.rgb[sl].mean((0, 1)), img[sl].mean((0, 1)), atol=4)


def test_writer_leaves_no_file_when_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(target, FPS) as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_frames_and_empty_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected"), VideoWriter(tmp_path / "a.mp4", FPS) as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
        w.write(np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"), VideoWriter(tmp_path / "b.mp4", FPS) as w:
        w.write(np.zeros((48, 64, 3), np.float32))
    with pytest.raises(ValueError, match="no frames"), VideoWriter(tmp_path / "c.mp4", FPS):
        pass
    with pytest.raises(InputError, match="fps"):
        VideoWriter(tmp_path / "d.mp4", 0)
    assert list(tmp_path.iterdir()) == []


def _silent_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 800)
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "random", "audio", "folder"])
def test_broken_files_give_one_line_input_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "audio":
        path = _silent_wav(tmp_path / "audio.wav")
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(InputError) as err:
        list(read_video(path))
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg


def test_truncated_header_is_an_error(gray_video: Path, tmp_path: Path) -> None:
    data = gray_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:40])
    with pytest.raises(InputError, match="cut.mp4"):
        list(read_video(cut))


def test_truncated_tail_reads_what_decodes_and_warns(
    gray_video: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = gray_video.read_bytes()
    cut = tmp_path / "tail.mp4"
    cut.write_bytes(data[: int(len(data) * 0.95)])  # faststart MP4: index intact, last frames gone
    with caplog.at_level(logging.WARNING, logger="openhuman.video"):
        frames = list(read_video(cut))
    assert 0 < len(frames) < N
    assert [f.index for f in frames] == list(range(len(frames)))
    for f in frames:
        assert abs(float(f.rgb.mean()) - 10 * f.index) < 3
    assert any("truncated" in r.getMessage() and "tail.mp4" in r.getMessage() for r in caplog.records)


def test_any_truncation_gives_frames_or_input_error(gray_video: Path, tmp_path: Path) -> None:
    data = gray_video.read_bytes()
    cut = tmp_path / "any.mp4"
    for frac in np.linspace(0.02, 0.98, 9):
        cut.write_bytes(data[: int(len(data) * frac)])
        try:
            frames = list(read_video(cut))
        except InputError as exc:
            assert "any.mp4" in str(exc)
        else:
            assert 0 < len(frames) < N


def test_read_images_folder_sorted_and_single_image(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    frames = _noise_frames(3, 20, 30, seed=3)
    for i, f in zip((2, 0, 1), frames, strict=True):
        write_png_atomic(folder / f"img_{i:03d}.png", f)
    write_png_atomic(folder / "img_003.png", np.full((20, 30), 77, np.uint8))  # gray -> RGB
    (folder / "notes.txt").write_text("ignored")
    out = list(read_images(folder, fps=10.0, start=1, stride=1))
    assert [f.index for f in out] == [1, 2, 3]
    assert [f.timestamp_s for f in out] == pytest.approx([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(out[0].rgb, frames[2])  # img_001 was the third written
    np.testing.assert_array_equal(out[1].rgb, frames[0])
    assert out[2].rgb.shape == (20, 30, 3) and (out[2].rgb == 77).all()
    single = list(open_frames(folder / "img_000.png"))
    assert len(single) == 1 and single[0].view_id == "images"
    np.testing.assert_array_equal(single[0].rgb, frames[1])


def test_open_frames_dispatches_video_and_reports_bad_inputs(gray_video: Path, tmp_path: Path) -> None:
    frames = list(open_frames(gray_video, max_frames=2))
    assert [f.view_id for f in frames] == ["video", "video"]
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="no .png/.jpg"):
        list(open_frames(tmp_path / "empty_dir"))
    with pytest.raises(InputError, match="nothere"):
        list(open_frames(tmp_path / "nothere.png"))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="bad.jpg"):
        list(open_frames(bad))


def test_png_reading_still_works_after_decoding_a_video(gray_video: Path, tmp_path: Path) -> None:
    """decord loaded before OpenCV breaks cv2's PNG decoding; read_video must load cv2 first.

    Runs in a fresh interpreter so no earlier import of cv2 hides the problem.
    """
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from openhuman.video import read_video\n"
        "n = len(list(read_video(sys.argv[1], max_frames=2)))\n"
        "from openhuman.io import read_png, write_png_atomic\n"
        "a = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)\n"
        "write_png_atomic(sys.argv[2], a)\n"
        "assert n == 2 and (read_png(sys.argv[2]) == a).all()\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(gray_video), str(tmp_path / "x.png")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-2000:]


def test_widths_decord_cannot_decode_are_still_read_exactly(tmp_path: Path) -> None:
    """decord 0.6.0 raises on some small widths (16 px here); the PyAV fallback must take over."""
    frames = _noise_frames(3, 16, 16, seed=5)
    out = list(read_video(_write(tmp_path / "w16.mp4", frames, lossless=True), start=1))
    assert [f.index for f in out] == [1, 2]
    for f in out:
        np.testing.assert_array_equal(f.rgb, frames[f.index])


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "libx264"), (".avi", "mpeg4")])
def test_other_containers_probe_and_read(tmp_path: Path, suffix: str, codec: str) -> None:
    """MKV declares no frame count in its header: probe counts packets instead."""
    import av

    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in _gray_frames(7):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    info = probe_video(path)
    assert (info.frame_count, info.fps, info.width, info.height) == (7, 25.0, 64, 48)
    out = list(read_video(path, stride=2))
    assert [f.index for f in out] == [0, 2, 4, 6]
    assert all(abs(float(f.rgb.mean()) - 10 * f.index) < 3 for f in out)


def test_reader_streams_in_small_batches(gray_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames are decoded a few at a time, on demand, never the whole clip at once."""
    import openhuman.video as video

    decord = video._import_decord()
    calls: list[list[int]] = []
    original = decord.VideoReader.get_batch

    def spy(self: object, indices: list[int]) -> object:
        calls.append(list(indices))
        return original(self, indices)

    monkeypatch.setattr(decord.VideoReader, "get_batch", spy)
    frames = read_video(gray_video)
    assert calls == []  # nothing decoded before the first frame is asked for
    first = next(frames)
    assert first.index == 0 and len(calls) == 1 and len(calls[0]) < N
    rest = list(frames)
    assert [f.index for f in rest] == list(range(1, N))
    assert max(len(c) for c in calls) <= video._BATCH
    assert [i for c in calls for i in c] == list(range(N))


def test_jpeg_images_and_capture_dir_hint(tmp_path: Path) -> None:
    import cv2

    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[:, :16] = (200, 30, 30)  # red left half, blue right half
    rgb[:, 16:] = (30, 30, 200)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    (tmp_path / "a.JPG").write_bytes(buf.tobytes())
    (frame,) = list(open_frames(tmp_path))
    assert np.abs(frame.rgb.astype(int) - rgb).mean() < 6  # JPEG is lossy but channels stay in RGB order
    assert frame.rgb[12, 4, 0] > 150 and frame.rgb[12, 28, 2] > 150
    (tmp_path / "capture.json").write_text("{}")
    with pytest.raises(InputError, match="Capture.open"):
        list(open_frames(tmp_path))


def test_read_images_same_size_names_the_first_image_of_another_size(tmp_path: Path) -> None:
    write_png_atomic(tmp_path / "0.png", np.zeros((8, 12, 3), np.uint8))
    write_png_atomic(tmp_path / "1.png", np.zeros((8, 12, 3), np.uint8))
    write_png_atomic(tmp_path / "2.png", np.zeros((10, 12, 3), np.uint8))
    assert [f.rgb.shape[0] for f in read_images(tmp_path)] == [8, 8, 10]  # photos: any size
    frames = read_images(tmp_path, same_size=True)
    assert [f.index for f in (next(frames), next(frames))] == [0, 1]
    with pytest.raises(InputError, match=r"2\.png: image is 12x10 but 0\.png is 12x8"):
        next(frames)


def test_truncated_video_gives_one_warning_and_no_ffmpeg_chatter(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """decord's FFmpeg printed ~8 lines ("[h264 @ 0x...] Invalid NAL unit size", ...) straight to
    descriptor 2 for a truncated file, and the reader logged up to three warnings about one cut."""
    full = _write(tmp_path / "noise.mp4", _noise_frames(12, 48, 64), lossless=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    for frac in (0.3, 0.5, 0.8):
        cut.write_bytes(data[: int(len(data) * frac)])
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="openhuman.video"):
            frames = list(read_video(cut))
        assert 0 < len(frames) < 12
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
        assert len(said) == 1 and f"only {len(frames)} of 12 requested frames" in said[0], said
    head = data.index(b"mdat") + 64  # the index and a few bytes of the first frame: nothing decodes
    cut.write_bytes(data[:head])
    with pytest.raises(InputError, match="no frame could be decoded"):
        list(read_video(cut))
    err = capfd.readouterr().err
    assert "@ 0x" not in err and "NAL" not in err, err


def _upright_pattern(h: int = 96, w: int = 128) -> np.ndarray:
    """A frame that tells its orientation: a bright block top left, a red bar along the bottom."""
    img = np.full((h, w, 3), 60, np.uint8)
    img[: h // 3, : w // 4] = 230
    img[-h // 6 :, :, 0] = 220
    return img


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_display_rotation_is_applied_on_both_decoding_paths(tmp_path: Path, degrees: int) -> None:
    """A phone's portrait clip: frames stored turned, plus a display matrix; read as displayed."""
    import av

    upright = _upright_pattern()
    stored = np.ascontiguousarray(np.rot90(upright, -degrees // 90))  # a player turns it back
    path = tmp_path / f"rot{degrees}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv444p"
        stream.set_display_rotation(degrees)
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(stream.encode())
    info = probe_video(path)
    assert (info.rotation, info.height, info.width) == (degrees, *upright.shape[:2])
    frames = [f.rgb for f in read_video(path)]  # decord turns them itself
    frames_pyav = [f.rgb for f in _read_with_pyav(info, "v", range(3))]  # its fallback for broken files
    for rgb in frames + frames_pyav:
        assert rgb.shape == upright.shape
        assert np.abs(rgb.astype(int) - upright).mean() < 4  # not turned: a turned frame differs by ~60


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an EXIF APP1 segment holding only the Orientation tag (0x0112)."""
    import struct

    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone photo: pixels stored turned 90 degrees counter-clockwise, EXIF orientation 6."""
    import cv2

    upright = _upright_pattern()
    stored = np.ascontiguousarray(np.rot90(upright, 1)[..., ::-1])  # BGR for OpenCV
    ok, buf = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    (tmp_path / "photo.jpg").write_bytes(_with_exif_orientation(buf.tobytes(), 6))
    (tmp_path / "plain.jpg").write_bytes(buf.tobytes())
    frames = {f.view_id: f.rgb for p in ("photo.jpg", "plain.jpg") for f in read_images(tmp_path / p, view_id=p)}
    assert frames["photo.jpg"].shape == upright.shape
    assert np.abs(frames["photo.jpg"].astype(int) - upright).mean() < 4
    assert frames["plain.jpg"].shape == stored.shape  # no tag: read as stored

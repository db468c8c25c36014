"""openhuman.parse2d.parse_to_dir: which --out folders it writes into, and what it leaves there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openhuman.errors import InputError
from openhuman.io import write_json_atomic, write_png_atomic
from openhuman.parse2d import parse_to_dir
from openhuman.types import Frame, PartParse
from openhuman.video import VideoWriter


def fake_parse(frame: Frame) -> PartParse:
    """A 'head' (body14 id 1) square in the top-left quarter of every frame, one person."""
    h, w = frame.rgb.shape[:2]
    labels = np.zeros((h, w), np.int16)
    labels[: h // 2, : w // 2] = 1
    return PartParse(frame.view_id, frame.index, labels, (labels > 0).astype(np.float32), np.where(labels > 0, 0, -1))


def _video(path: Path, n: int, h: int = 48, w: int = 64) -> Path:
    with VideoWriter(path, 30.0) as writer:
        for i in range(n):
            writer.write(np.full((h, w, 3), 10 * i, np.uint8))
    return path


def _images(folder: Path, n: int, h: int = 48, w: int = 64) -> Path:
    for i in range(n):
        write_png_atomic(folder / f"{i:03d}.png", np.full((h, w, 3), 20 * i, np.uint8))
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reparse_replaces_the_previous_output_and_leaves_nothing_stale(tmp_path):
    out = tmp_path / "out"
    parse_to_dir(_video(tmp_path / "clip.mp4", 16), out, query="head", parse_fn=fake_parse)
    assert len(list((out / "masks").glob("*.png"))) == 16
    parse_to_dir(_images(tmp_path / "frames", 5), out, query="legs", parse_fn=fake_parse)
    assert sorted(p.name for p in out.iterdir()) == ["masks", "masks.json", "overlay.mp4", "summary.json"]
    assert len(list((out / "masks").glob("*.png"))) == 5
    assert len(json.loads((out / "masks.json").read_text())["images"]) == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["frames"] == 5 and summary["query"]["text"] == "legs"


@pytest.mark.parametrize(
    "existing",
    [
        # an `openhuman run` output
        {"state.json": "{}", "summary.json": '{"source": "clip.mp4", "views": 1}', "masks.json": "{}"},
        # a capture directory
        {"capture.json": '{"fps": 30, "frame_count": 1, "view_ids": ["a"]}', "cameras.json": "{}"},
        # a parse output with a file of the user's beside it
        {"summary.json": '{"parts_per_frame": []}', "notes.txt": "mine"},
        # anything else
        {"photo.jpg": "x"},
    ],
)
def test_parse_refuses_a_folder_that_is_not_its_own_output(tmp_path, existing):
    out = tmp_path / "out"
    for name, text in existing.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = _files(out)
    with pytest.raises(InputError, match="not a previous `openhuman parse` output") as err:
        parse_to_dir(_video(tmp_path / "clip.mp4", 3), out, parse_fn=fake_parse)
    assert "\n" not in str(err.value)
    assert _files(out) == before


def test_parse_cli_refuses_a_run_folder_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    from openhuman.cli import app

    out = tmp_path / "run"
    (out / "masks").mkdir(parents=True)
    (out / "state.json").write_text("{}")
    res = CliRunner().invoke(app, ["parse", str(_video(tmp_path / "clip.mp4", 3)), "--out", str(out)])
    assert res.exit_code == 2 and "choose a new folder" in res.output, res.output
    assert res.output.strip().count("\n") == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["masks", "state.json"]


def test_a_failed_parse_removes_what_it_wrote(tmp_path):
    folder = _images(tmp_path / "frames", 6)
    (folder / "003.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="003.png"):
        parse_to_dir(folder, out, parse_fn=fake_parse)
    assert not out.exists()
    out.mkdir()  # a folder the user made is kept, empty
    with pytest.raises(InputError, match="003.png"):
        parse_to_dir(folder, out, parse_fn=fake_parse)
    assert out.is_dir() and not any(out.iterdir())


def test_an_unfinished_parse_is_cleaned_up_by_the_next(tmp_path):
    out = tmp_path / "out"  # as a killed parse leaves it: a few masks, summary.json not complete
    write_json_atomic(out / "summary.json", {"source": "x", "complete": False, "frames": 0, "parts_per_frame": []})
    for i in range(4):
        write_png_atomic(out / "masks" / f"{i:06d}.png", np.zeros((8, 8), np.uint8))
    (out / ".overlay.abc123.tmp.mp4").write_bytes(b"")
    parse_to_dir(_video(tmp_path / "clip.mp4", 2), out, parse_fn=fake_parse)
    assert sorted(p.name for p in out.iterdir()) == ["masks", "masks.json", "overlay.mp4", "summary.json"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["000000.png", "000001.png"]


def test_overlay_of_a_strided_parse_plays_at_fps_over_stride(tmp_path):
    from openhuman.video import probe_video

    out = tmp_path / "out"
    parse_to_dir(_video(tmp_path / "clip.mp4", 12), out, stride=2, parse_fn=fake_parse)
    info = probe_video(out / "overlay.mp4")
    assert info.frame_count == 6 and info.fps == pytest.approx(15.0)


def _mixed_sizes(folder: Path) -> Path:
    write_png_atomic(folder / "a.png", np.full((48, 64, 3), 50, np.uint8))
    write_png_atomic(folder / "b.png", np.full((100, 40, 3), 200, np.uint8))  # portrait, another size
    write_png_atomic(folder / "c.png", np.full((48, 64, 3), 90, np.uint8))
    return folder


def test_photos_of_mixed_sizes_parse_with_static_and_letterboxed_overlay(tmp_path):
    from openhuman.parsing.config import ParserConfig
    from openhuman.video import read_video

    cfg = ParserConfig()
    cfg.mediapipe.static_image_mode = True
    out = tmp_path / "out"
    parse_to_dir(_mixed_sizes(tmp_path / "photos"), out, parser_cfg=cfg, parse_fn=fake_parse)
    images = json.loads((out / "masks.json").read_text())["images"]
    assert [(i["width"], i["height"]) for i in images] == [(64, 48), (40, 100), (64, 48)]
    frames = list(read_video(out / "overlay.mp4"))
    assert [f.rgb.shape for f in frames] == [(48, 64, 3)] * 3
    second = frames[1].rgb  # b.png scaled to 19x48 in the middle, black bars left and right
    assert second[:, :20].max() < 20 and second[:, -20:].max() < 20 and second[:, 32].max() > 60


def test_photos_of_mixed_sizes_without_static_are_an_input_error_before_parsing(tmp_path):
    seen = []

    def parse(frame: Frame) -> PartParse:
        seen.append(frame.index)
        return fake_parse(frame)

    photos = _mixed_sizes(tmp_path / "photos")
    with pytest.raises(InputError, match=r"b\.png: image is 40x100 but a\.png is 64x48.*--static") as err:
        parse_to_dir(photos, tmp_path / "out", parse_fn=parse)
    assert "\n" not in str(err.value) and seen == [0]
    assert not (tmp_path / "out").exists()


def test_run_source_refuses_an_image_folder_of_mixed_sizes(tmp_path):
    from openhuman.sources import open_source

    src = open_source(_mixed_sizes(tmp_path / "photos"))
    with pytest.raises(InputError, match="b.png"):
        list(src.synced())
    assert len(list(src.synced(photos=True))) == 3


def test_parse_cli_refuses_an_out_under_a_file(tmp_path):
    from typer.testing import CliRunner

    from openhuman.cli import app

    (tmp_path / "afile.txt").write_text("x")
    res = CliRunner().invoke(
        app, ["parse", str(_video(tmp_path / "clip.mp4", 2)), "--out", str(tmp_path / "afile.txt" / "o")]
    )
    assert res.exit_code == 2 and "is a file, not a folder" in res.output, res.output


def test_ctrl_c_during_parse_says_its_output_was_removed(tmp_path, monkeypatch):
    """parse does not resume, so its interrupt message must not promise it (run's does)."""
    import cv2
    from typer.testing import CliRunner

    import openhuman.parse2d
    from openhuman.cli import app

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(openhuman.parse2d, "parse_to_dir", interrupted)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    res = CliRunner().invoke(app, ["parse", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 130
    assert "what this parse wrote was removed" in res.output and "resume" not in res.output

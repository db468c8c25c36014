"""PLY/NPZ export, sequence manifests and rendered previews of labelled clouds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lifting import SequenceWriter, empty_cloud, read_npz, read_ply, render_preview, write_npz, write_ply
from lifting.render import fit_camera, frame_strip, render_cloud, turntable
from openhuman.errors import InputError
from openhuman.io import read_png
from openhuman.ontology import PALETTE
from openhuman.types import LabeledPointCloud


def _cloud(n: int = 500, frame: int = 7, seed: int = 0) -> LabeledPointCloud:
    rng = np.random.default_rng(seed)
    return LabeledPointCloud(
        xyz=rng.normal(0, 0.3, (n, 3)).astype(np.float32) + np.float32([0, 0, 1]),
        rgb=rng.integers(0, 256, (n, 3)).astype(np.uint8),
        labels=rng.integers(0, 15, n).astype(np.int16),
        confidence=rng.random(n).astype(np.float32),
        track_ids=rng.integers(-1, 4, n).astype(np.int32),
        frame_index=frame,
        timestamp_s=frame / 30,
    )


def _assert_same(a: LabeledPointCloud, b: LabeledPointCloud) -> None:
    for name in ("xyz", "rgb", "labels", "confidence", "track_ids"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.frame_index == b.frame_index


def test_ply_round_trip_keeps_every_attribute_and_dtype(tmp_path):
    c = _cloud()
    path = write_ply(c, tmp_path / "000007.ply")
    back = read_ply(path, timestamp_s=c.timestamp_s)
    _assert_same(c, back)
    import open3d as o3d

    raw = o3d.t.io.read_point_cloud(str(path))
    assert str(raw.point.label.dtype) == "Int32" and str(raw.point.track_id.dtype) == "Int32"
    assert str(raw.point.confidence.dtype) == "Float32" and str(raw.point.colors.dtype) == "UInt8"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_npz_round_trip_and_empty_clouds(tmp_path):
    c = _cloud()
    back = read_npz(write_npz(c, tmp_path / "a.npz"))
    _assert_same(c, back)
    assert back.timestamp_s == pytest.approx(c.timestamp_s)
    e = empty_cloud(3, 0.1)
    assert len(read_ply(write_ply(e, tmp_path / "000003.ply"))) == 0
    assert len(read_npz(write_npz(e, tmp_path / "e.npz"))) == 0


def test_empty_clouds_are_warned_about_once_and_counted_at_the_end(tmp_path, caplog):
    """A query for a part that is out of sight for most of a long clip gave a warning per frame."""
    with caplog.at_level("WARNING", logger="lifting.export"), SequenceWriter(tmp_path / "seq", formats=("npz",)) as w:
        w.write(_cloud(frame=0))
        for i in range(1, 6):
            w.write(empty_cloud(i, i / 30))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and "frame 1: empty cloud written" in warnings[0]
    assert "5 empty clouds written (of 6 frames in the sequence)" in warnings[1]


def test_sequence_writer_manifest_query_export_and_previews(tmp_path):
    from lifting.geometry import orbit_camera

    cam = orbit_camera(np.array([0, 0, 1.0]), 3.0, 0.0, 0.0, 64, 96)
    with SequenceWriter(
        tmp_path / "seq", query="left hand", source="depth", query_part_ids=(7,), preview_camera=cam
    ) as w:
        w.write(_cloud(frame=0))
        w.write(empty_cloud(1, 1 / 30))
        w.write(_cloud(frame=2, seed=2))
    seq = json.loads((tmp_path / "seq" / "sequence.json").read_text())
    assert seq["complete"] is True and seq["frame_count"] == 3 and seq["empty_frames"] == [1]
    assert seq["query"] == "left hand" and seq["source"] == "depth" and seq["classes"][7] == "left hand"
    f0 = seq["frames"][0]
    assert f0["points"] == 500 and sum(f0["counts"].values()) == 500
    for f in seq["frames"]:
        for rel in f["files"].values():
            assert (tmp_path / "seq" / rel).is_file(), rel
    q = read_ply(tmp_path / "seq" / "query" / "000002.ply")
    assert len(q) == int(np.sum(_cloud(frame=2, seed=2).labels == 7)) and np.all(q.labels == 7)
    assert read_png(tmp_path / "seq" / "previews" / "000000.png").shape == (96, 64, 3)


def test_interrupted_sequence_keeps_a_valid_manifest_and_resumes(tmp_path):
    root = tmp_path / "seq"
    with pytest.raises(RuntimeError), SequenceWriter(root, formats=("npz",)) as w:
        w.write(_cloud(frame=0))
        w.write(_cloud(frame=1))
        raise RuntimeError("killed")
    seq = json.loads((root / "sequence.json").read_text())
    assert seq["complete"] is False and [f["index"] for f in seq["frames"]] == [0, 1]
    write_npz(_cloud(frame=2), root / "frames" / "000002.npz")  # written, manifest not updated
    with SequenceWriter(root, formats=("npz",)) as w:
        w.write(_cloud(frame=3))
    seq = json.loads((root / "sequence.json").read_text())
    assert seq["complete"] is True and [f["index"] for f in seq["frames"]] == [0, 1, 2, 3]


def test_paced_manifest_lists_every_frame_at_close_and_abort(tmp_path, never_due):
    # as if each rewrite were slow: only close/abort rewrite the manifest
    root = tmp_path / "seq"
    with pytest.raises(RuntimeError), SequenceWriter(root, formats=("npz",)) as w:
        w.write(_cloud(frame=0))
        w.write(_cloud(frame=1))
        assert not (root / "sequence.json").exists()
        raise RuntimeError("interrupted")
    seq = json.loads((root / "sequence.json").read_text())
    assert seq["complete"] is False and [f["index"] for f in seq["frames"]] == [0, 1]
    with SequenceWriter(root, formats=("npz",)) as w:
        w.write(_cloud(frame=2))
    seq = json.loads((root / "sequence.json").read_text())
    assert seq["complete"] is True and [f["index"] for f in seq["frames"]] == [0, 1, 2]


def test_render_draws_palette_colours_nearest_first(tmp_path):
    near = np.array([[0.0, 0.0, 1.0]], np.float32)
    far = np.array([[-0.5, 0.0, 1.0]], np.float32)  # same pixel, farther from a camera on +x
    c = LabeledPointCloud(
        np.vstack([far, near]), np.zeros((2, 3), np.uint8), np.array([2, 7], np.int16),
        np.ones(2, np.float32), np.zeros(2, np.int32), 0, 0.0,
    )  # fmt: skip
    from lifting.geometry import orbit_camera

    cam = orbit_camera(np.array([0, 0, 1.0]), 3.0, 0.0, 0.0, 41, 41)
    img = render_cloud(c, cam, point_px=2, shade=False)
    assert img[20, 20].tolist() == PALETTE[7].tolist()
    assert (img != 255).any(-1).sum() == 21  # one disc of radius 2
    strip = turntable(_cloud(), n_views=3, width=50, height=80)
    assert strip.shape == (80, 3 * 50 + 2 * 2, 3) and (strip != 255).any()
    assert frame_strip([_cloud(), _cloud(seed=1)], width=40, height=60).shape == (60, 82, 3)
    out = render_preview(_cloud(), fit_camera(_cloud().xyz, width=60, height=90), tmp_path / "p.png")
    np.testing.assert_array_equal(read_png(tmp_path / "p.png"), out)


def test_sequence_of_other_settings_is_refused_not_mixed(tmp_path):
    root = tmp_path / "seq"
    with SequenceWriter(root, query="feet", query_part_ids=(12, 13), formats=("npz",)) as w:
        w.write(_cloud(frame=0))
    for other in ({"query": "hands", "query_part_ids": (7, 8)}, {"formats": ("ply", "npz")}, {"source": "x"}):
        kw = {"query": "feet", "query_part_ids": (12, 13), "formats": ("npz",), **other}
        with pytest.raises(InputError, match="holds a sequence with"):
            SequenceWriter(root, **kw)
    seq = json.loads((root / "sequence.json").read_text())
    assert (seq["query"], seq["formats"], [f["index"] for f in seq["frames"]]) == ("feet", ["npz"], [0])
    # the same settings resume; resume=False starts the sequence over
    assert len(SequenceWriter(root, query="feet", query_part_ids=(12, 13), formats=("npz",))._frames) == 1
    with SequenceWriter(root, query="feet", query_part_ids=(12, 13), formats=("npz",), resume=False) as w:
        w.write(_cloud(frame=5))
    assert [f["index"] for f in json.loads((root / "sequence.json").read_text())["frames"]] == [5]

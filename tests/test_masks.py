"""2D outputs: query masks, COCO RLE, PNG/JSON export, overlays, and the `parse` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openhuman.masks import MaskExporter, decode_rle, draw_overlay, encode_rle, masks_for_query
from openhuman.ontology import PALETTE
from openhuman.types import PartParse


def _two_people_parse() -> PartParse:
    labels = np.zeros((40, 60), np.int16)
    person = np.full((40, 60), -1, np.int16)
    labels[5:15, 5:20] = 7  # person 0 left hand
    labels[20:30, 5:20] = 2  # person 0 torso
    labels[5:15, 35:50] = 7  # person 1 left hand
    labels[20:25, 35:50] = 8  # person 1 right hand
    person[:, :30][labels[:, :30] > 0] = 0
    person[:, 30:][labels[:, 30:] > 0] = 1
    scores = np.where(labels > 0, 0.8, 1.0).astype(np.float32)
    scores[5:15, 35:50] = 0.6
    return PartParse("cam0", 3, labels, scores, person)


def test_masks_for_query_one_mask_per_person_and_part():
    pm = masks_for_query(_two_people_parse(), [7, 8])
    assert pm.masks.shape == (3, 40, 60) and pm.masks.dtype == bool
    assert pm.labels.tolist() == [7, 7, 8]
    assert pm.track_ids.tolist() == [0, 1, 1]
    assert pm.masks.sum(axis=(1, 2)).tolist() == [150, 150, 75]
    np.testing.assert_allclose(pm.scores, [0.8, 0.6, 0.8], atol=1e-6)
    assert pm.view_id == "cam0" and pm.frame_index == 3


def test_masks_for_query_nothing_found_and_bad_ids():
    pm = masks_for_query(_two_people_parse(), [13])
    assert pm.masks.shape == (0, 40, 60) and pm.labels.size == 0
    with pytest.raises(ValueError, match="body14 ids"):
        masks_for_query(_two_people_parse(), [0])


def test_rle_round_trip_with_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    mask = rng.random((33, 47)) > 0.6
    rle = encode_rle(mask)
    assert rle["size"] == [33, 47] and isinstance(rle["counts"], str)
    json.dumps(rle)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    raw = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    np.testing.assert_array_equal(raw.astype(bool), mask)
    assert int(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()})) == int(mask.sum())


def test_exporter_writes_png_and_coco_json(tmp_path):
    from openhuman.io import read_png

    parse = _two_people_parse()
    with MaskExporter(tmp_path, [7, 8]) as ex:
        png = ex.add(masks_for_query(parse, [7, 8]), 40, 60)
    assert png == tmp_path / "masks" / "000003.png"
    label_map = read_png(png)
    assert label_map.dtype == np.uint8
    expected = np.where(np.isin(parse.labels, [7, 8]), parse.labels, 0)
    np.testing.assert_array_equal(label_map, expected)
    coco = json.loads((tmp_path / "masks.json").read_text())
    assert [c["id"] for c in coco["categories"]] == [7, 8]
    assert coco["images"][0]["file_name"] == "masks/000003.png"
    anns = coco["annotations"]
    assert [a["category_id"] for a in anns] == [7, 7, 8] and [a["track_id"] for a in anns] == [0, 1, 1]
    union = np.zeros((40, 60), np.uint8)
    for a in anns:
        m = decode_rle(a["segmentation"])
        assert a["area"] == m.sum()
        union[m] = a["category_id"]
    np.testing.assert_array_equal(union, expected)


def test_coco_annotations_decode_to_the_masks_at_the_image_border():
    from openhuman.masks import coco_annotations
    from openhuman.types import PartMasks

    rng = np.random.default_rng(1)
    masks = np.zeros((3, 30, 50), bool)
    masks[0, :4, :6] = True  # top-left corner
    masks[1, 20:, 44:] = rng.random((10, 6)) > 0.3  # bottom-right corner, ragged
    masks[2, 10:12, 20:30] = True
    pm = PartMasks("cam0", 0, masks, np.array([7, 8, 2]), np.ones(3, np.float32), np.array([0, 0, 1]))
    anns = coco_annotations(pm)
    assert [a["category_id"] for a in anns] == [7, 8, 2]
    for a, m in zip(anns, masks, strict=True):
        np.testing.assert_array_equal(decode_rle(a["segmentation"]), m)
        assert a["area"] == m.sum()
        x, y, w, h = a["bbox"]
        ys, xs = np.nonzero(m)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    empty = PartMasks(
        "cam0", 0, np.zeros((2, 30, 50), bool), np.array([7, 8]), np.ones(2, np.float32), np.zeros(2, int)
    )
    assert coco_annotations(empty) == []


def test_cached_legend_matches_drawing_it():
    import cv2

    from openhuman.masks import _legend
    from openhuman.ontology import BODY14

    rng = np.random.default_rng(2)
    for h, w, ids in [(480, 640, list(range(1, 15))), (60, 40, [7]), (120, 160, [3, 9])]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        want = img.copy()
        scale = max(0.35, min(h, w) / 900)
        step = int(22 * scale / 0.5)
        for row, i in enumerate(ids):  # the legend drawn straight onto the image
            y = 8 + row * step
            cv2.rectangle(want, (8, y), (8 + step - 6, y + step - 6), tuple(int(c) for c in PALETTE[i]), -1)
            for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
                cv2.putText(
                    want,
                    BODY14[i],
                    (8 + step, y + step - 8),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    scale,
                    colour,
                    thick,
                    cv2.LINE_AA,
                )
        got = img.copy()
        _legend(got, ids)
        diff = np.abs(got.astype(int) - want)
        assert (want != img).any() and diff.max() <= 8 and (diff > 2).mean() < 0.01


def test_exporter_writes_no_json_on_error(tmp_path):
    with pytest.raises(RuntimeError), MaskExporter(tmp_path, [7]) as ex:
        ex.add(masks_for_query(_two_people_parse(), [7]), 40, 60)
        raise RuntimeError("boom")
    assert not (tmp_path / "masks.json").exists()


def test_overlay_highlights_queried_parts():
    rgb = np.full((40, 60, 3), 100, np.uint8)
    labels = _two_people_parse().labels
    out = draw_overlay(rgb, labels, highlight_ids=[8], alpha=0.5)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inner = out[22, 42].astype(int)  # right hand, highlighted
    expected = (0.5 * 100 + 0.5 * PALETTE[8]).astype(int)
    np.testing.assert_allclose(inner, expected, atol=2)
    assert out[35, 55].max() < 100  # background dimmed
    with pytest.raises(ValueError):
        draw_overlay(rgb, labels[:10])


def test_overlay_dims_all_background_alike_and_outlines_parts_at_the_border():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    labels = np.zeros((120, 160), np.uint8)
    labels[110:, 150:] = 7  # highlighted, in the bottom-right corner: its box meets the border
    labels[60:70, 100:110] = 3  # not highlighted
    out = draw_overlay(rgb, labels, highlight_ids=[7])
    dimmed = np.round(rgb * (round(0.6 * 255) / 255)).astype(int)  # background gain 0.6
    far = labels == 0
    far[:30, :100] = False  # the legend
    far[109:, 149:] = False  # the highlighted part's outline, one pixel outside it
    np.testing.assert_allclose(out[far], dimmed[far], atol=1)
    assert np.all(out[109, 150:] == 255) and np.all(out[110:, 149] == 255)  # outline, outside
    assert np.all(out[110, 151:] == 255)  # and inside; the image border itself is no edge
    inner = out[115, 155].astype(int)
    np.testing.assert_allclose(inner, 0.5 * rgb[115, 155] + 0.5 * PALETTE[7], atol=2)
    weak = out[65, 105].astype(int)  # a part not asked for: faint colour, dimmed
    assert np.abs(weak - dimmed[65, 105]).max() < 60
    nothing = draw_overlay(rgb, np.zeros_like(labels), highlight_ids=[7])  # no part, no legend
    np.testing.assert_allclose(nothing, dimmed, atol=1)
    assert np.array_equal(draw_overlay(rgb, np.zeros_like(labels)), rgb)  # all parts wanted: not dimmed


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    import av
    import cv2
    from skimage import data

    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    img = cv2.resize(data.astronaut(), (256, 256))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        for i in range(4):
            for p in s.encode(av.VideoFrame.from_ndarray(np.roll(img, 3 * i, axis=1), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_parse_cli_writes_readable_outputs(tiny_video, tmp_path):
    from typer.testing import CliRunner

    from openhuman.cli import app
    from openhuman.io import read_png
    from openhuman.video import probe_video

    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["parse", str(tiny_video), "--query", "head", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "query 'head' -> head" in res.output  # what the words were taken to mean
    pngs = sorted((out / "masks").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(4)]
    first = read_png(pngs[0])
    assert set(np.unique(first).tolist()) == {0, 1} and (first == 1).sum() > 1000
    coco = json.loads((out / "masks.json").read_text())
    assert len(coco["images"]) == 4 and all(a["category_id"] == 1 for a in coco["annotations"])
    assert len(coco["annotations"]) == 4
    info = probe_video(out / "overlay.mp4")
    assert info.frame_count == 4 and (info.width, info.height) == (256, 256)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["query"]["part_ids"] == [1]
    assert all(f["parts"] == ["head"] for f in summary["parts_per_frame"])


def test_parse_cli_single_image_and_bad_input(tmp_path):
    from skimage import data
    from typer.testing import CliRunner

    from openhuman.cli import app
    from openhuman.io import read_png, write_png_atomic

    img = tmp_path / "astronaut.png"
    write_png_atomic(img, data.astronaut()[::2, ::2])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["parse", str(img), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert read_png(out / "overlay.png").shape == (256, 256, 3)
    assert (out / "masks" / "000000.png").is_file()
    res = CliRunner().invoke(app, ["parse", str(tmp_path / "missing.mp4"), "--out", str(out)])
    assert res.exit_code == 2


def test_parse_cli_sends_a_multi_view_capture_to_run(synth_capture, tmp_path):
    from typer.testing import CliRunner

    from openhuman.cli import app

    res = CliRunner().invoke(app, ["parse", str(synth_capture), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "openhuman run" in res.output
    assert not (tmp_path / "out").exists()


def test_cli_unknown_backend_is_a_one_line_input_error(synth_capture, tmp_path):
    from typer.testing import CliRunner

    from openhuman.cli import app

    for args in (["parse", str(synth_capture)], ["run", str(synth_capture)]):
        res = CliRunner().invoke(app, [*args, "--backend", "sam3", "--out", str(tmp_path / "out")])
        assert res.exit_code == 2 and "unknown --backend 'sam3'" in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_parse_cli_set_up_error_is_the_only_output(tmp_path):
    """A set-up error (here: SCHNet without a checkpoint) is printed alone: no progress bar
    (enabled from 10 frames) is drawn before it."""
    import numpy as np
    from typer.testing import CliRunner

    from openhuman.cli import app
    from openhuman.io import write_png_atomic

    folder = tmp_path / "frames"
    for i in range(12):
        write_png_atomic(folder / f"{i:03d}.png", np.full((32, 32, 3), 20 * i, np.uint8))
    res = CliRunner().invoke(app, ["parse", str(folder), "--backend", "schnet", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "parser.schnet.checkpoint" in res.output
    assert res.output.strip().count("\n") == 0, res.output

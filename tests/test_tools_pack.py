"""tools/pack_synth.py + tools/train_schnet_packed.py: a packed capture reads back as the capture."""

from __future__ import annotations

import numpy as np


def test_packed_capture_reads_back(synth_capture, tmp_path, load_tool):
    from openhuman.capture import Capture

    pack, packed = load_tool("pack_synth"), load_tool("train_schnet_packed")
    pack.pack_capture(synth_capture, tmp_path / "pack" / "walk", view_every=2)
    cap = Capture.open(synth_capture)
    files = sorted(p.name for p in (tmp_path / "pack" / "walk").iterdir())
    assert files == ["cam0.labels.npy.xz", "cam0.mp4", "cam2.labels.npy.xz", "cam2.mp4"]
    frames, labels = packed.load_view(tmp_path / "pack" / "walk" / "cam2.mp4")
    originals = list(cap.frames("cam2"))
    assert len(frames) == len(labels) == len(originals) == cap.frame_count
    for i, (rgb, lab, orig) in enumerate(zip(frames, labels, originals, strict=True)):
        assert np.array_equal(lab, cap.gt_2d("cam2", i))  # labels exact
        assert np.abs(rgb.astype(int) - orig.rgb).mean() < 2.0  # video near-lossless
    pairs = packed.open_packed("synth", str(tmp_path / "pack"), "walk:2")  # every 2nd packed view
    assert len(pairs) == cap.frame_count and pairs.classes[0] == "head"


def test_pack_quality_options(synth_capture, tmp_path, load_tool):
    """A higher --crf gives a smaller video with a larger error; the labels stay exact either way."""
    from openhuman.capture import Capture

    pack, packed = load_tool("pack_synth"), load_tool("train_schnet_packed")
    cap = Capture.open(synth_capture)
    errors, sizes = {}, {}
    for crf in (12, 35):
        out = tmp_path / f"crf{crf}"
        pack.pack_capture(synth_capture, out, view_every=4, crf=crf, preset="veryfast")
        frames, labels = packed.load_view(out / "cam0.mp4")
        originals = [f.rgb for f in cap.frames("cam0")]
        assert all(np.array_equal(lab, cap.gt_2d("cam0", i)) for i, lab in enumerate(labels))
        errors[crf] = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, originals, strict=True)])
        sizes[crf] = (out / "cam0.mp4").stat().st_size
    assert sizes[35] < sizes[12] and errors[35] > errors[12]

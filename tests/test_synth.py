"""Tests of the synthetic multi-view capture generator (openhuman.synth)."""

from __future__ import annotations

import numpy as np
import pytest

from openhuman.errors import InputError


def test_synth_capture_fixture_reads_back(synth_capture):
    from openhuman.capture import Capture

    cap = Capture.open(synth_capture)
    assert cap.view_ids == ("cam0", "cam1", "cam2", "cam3")
    assert cap.frame_count == 8
    assert cap.has_depth and cap.has_gt_2d and cap.has_gt_3d
    assert cap.gt_2d("cam0", 0).shape == (240, 320)
    seen = set().union(*(np.unique(cap.gt_2d(v, 0)).tolist() for v in cap.view_ids))
    assert seen == set(range(15))


def test_unknown_clip_raises_input_error(tmp_path):
    from openhuman.synth import SynthConfig, generate_capture

    with pytest.raises(InputError, match="available clips: .*walk"):
        generate_capture(tmp_path / "c", SynthConfig(clips=("moonwalk",)))

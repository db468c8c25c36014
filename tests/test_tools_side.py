"""tools/side_errors.py: mirrored limb pixels by how squarely the camera sees the person."""

from __future__ import annotations

import numpy as np
import pytest


def test_mirrored_counts_and_sides_given(load_tool):
    tool = load_tool("side_errors")
    gt = np.array([[9, 9, 10, 10, 3, 0]])
    pred = np.array([[9, 10, 10, 11, 4, 3]])  # one thigh right, one mirrored; a shin is another part
    assert tool.mirrored_counts(pred, gt, tool.LEGS) == (2, 1)
    assert tool.mirrored_counts(pred, gt, tool.ARMS) == (0, 1)
    conf = np.zeros((15, 15), dtype=np.int64)
    conf[9, 9], conf[9, 10], conf[10, 11] = 5, 3, 2
    given = tool.sides_given(conf)
    assert given[9, 9] == 8 and given[9, 10] == 0 and given[10, 11] == 2  # only the mirror moves


def test_facing_component_is_one_from_the_front_and_zero_in_profile(load_tool):
    tool = load_tool("side_errors")
    # a person standing along world z (up), left to +x, facing -y or +y
    xyz = np.array([[0, 0, 1.7], [0.2, 0, 1.3], [0.15, 0, 0.8], [-0.2, 0, 1.3], [-0.15, 0, 0.8]], float)
    labels = np.array([1, 3, 9, 4, 10])
    assert tool.facing_component(xyz, labels, np.array([0.0, -3.0, 1.5])) == pytest.approx(1.0, abs=1e-6)
    assert tool.facing_component(xyz, labels, np.array([0.0, 3.0, 1.0])) == pytest.approx(1.0, abs=1e-6)
    assert tool.facing_component(xyz, labels, np.array([3.0, 0.0, 1.2])) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(tool.facing_component(xyz[:3], labels[:3], np.zeros(3)))  # no right side


def test_scores_a_capture_end_to_end(load_tool, synth_capture):
    from openhuman.parsing.config import ParserConfig

    tool = load_tool("side_errors")
    rows, conf = tool.score_capture(str(synth_capture), ParserConfig(), stride=4)
    assert len(rows) == 4 * 2 and all(0 <= r["facing"] <= 1 for r in rows)
    result = tool.summarise(rows, conf)
    assert sum(b["images"] for b in result["by_facing"]) == 8
    assert 0.3 < result["miou"] <= result["miou_sides_given"] <= 1
    assert result["mirrored"]["legs"] is not None and 0 <= result["mirrored"]["legs"] < 0.5

"""tools/fit_bodysplit.py: the replay reproduces the parser, and fitting never scores worse."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest


def test_replay_reproduces_the_parser_and_fitting_never_scores_worse(load_tool, tmp_path):
    import openhuman.parsing._bodysplit as bodysplit

    fit = load_tool("fit_bodysplit")
    records, live = fit._cache("walk", SimpleNamespace(views=2, frames=3, size="320x240"), tmp_path)
    assert len(records) == 6 and all(r[0] is not None for r in records)  # mediapipe found the person
    radius, bias = bodysplit.RADIUS.copy(), bodysplit.BIAS.copy()
    assert fit.replay(records, radius, bias) == pytest.approx(live, abs=1e-12)  # exactly the parser's labels
    assert fit.replay(records, radius * 3, bias) < live - 0.02  # the widths matter
    np.testing.assert_array_equal(bodysplit.RADIUS, radius)  # replay restores the module's arrays
    r2, b2, score = fit.fit(records, radius.copy(), bias.copy(), rounds=1)
    assert score >= live and score == pytest.approx(fit.replay(records, r2, b2))
    np.testing.assert_array_equal(r2[3], r2[4])  # left and right stay tied
    np.testing.assert_array_equal(b2[9], b2[10])


def test_main_writes_the_fitted_arrays(load_tool, tmp_path, monkeypatch, capsys):
    fit = load_tool("fit_bodysplit")
    out = tmp_path / "fit.json"
    argv = ["fit_bodysplit", "--fit", "walk", "--check", "--views", "1", "--frames", "2", "--size", "320x240",
            "--rounds", "1", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    fit.main()
    res = json.loads(out.read_text())
    assert res["fit_after"] >= res["fit_before"] and res["check_before"] is None
    assert len(res["radius"]) == len(res["bias"]) == 15
    assert [row["clip"] for row in res["clips"]] == ["walk"]
    assert res["clips"][0]["live"] == pytest.approx(res["clips"][0]["replayed"], abs=1e-12)
    assert "RADIUS =" in capsys.readouterr().out

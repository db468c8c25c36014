"""2D evaluation: IoU bookkeeping in body14/PPP, and the mediapipe parser on a synthetic capture."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openhuman.evaluate import PPP, EvalResult, scores_from_confusion
from openhuman.metrics import confusion_matrix
from openhuman.ontology import LR_SWAP, NUM_CLASSES


def _gt() -> np.ndarray:
    gt = np.zeros((30, 30), np.int64)
    for k in range(1, NUM_CLASSES):
        gt[k, 5:25] = k
    return gt


def test_perfect_prediction_scores_one():
    gt = _gt()
    s = scores_from_confusion(confusion_matrix(gt, gt, NUM_CLASSES))
    assert s["body14"]["miou"] == 1.0 and s[PPP]["miou"] == 1.0 and s["person_iou"] == 1.0


def test_mirrored_prediction_is_wrong_in_body14_but_right_in_ppp():
    gt = _gt()
    s = scores_from_confusion(confusion_matrix(LR_SWAP[gt], gt, NUM_CLASSES))
    assert s["body14"]["iou"]["left hand"] == 0.0 and s["body14"]["iou"]["head"] == 1.0
    assert s["body14"]["miou"] == pytest.approx(2 / 14, abs=1e-3)
    assert s[PPP]["miou"] == 1.0  # PPP merges left and right


def test_eval_result_sums_views_and_serialises():
    gt = _gt()
    pred = gt.copy()
    pred[1, :] = 0  # head missed in view b
    r = EvalResult(views={"a": confusion_matrix(gt, gt, NUM_CLASSES), "b": confusion_matrix(pred, gt, NUM_CLASSES)})
    d = json.loads(json.dumps(r.to_dict()))
    assert d["views"]["a"]["body14"]["iou"]["head"] == 1.0
    assert d["views"]["b"]["body14"]["iou"]["head"] == 0.0
    assert d["overall"]["body14"]["iou"]["head"] == 0.5


@pytest.fixture(scope="module")
def synth_eval(synth_capture):
    from openhuman.evaluate import evaluate_capture

    return evaluate_capture(synth_capture)


def test_mediapipe_on_synthetic_capture(synth_eval, synth_capture):
    from openhuman.capture import Capture

    cap = Capture.open(synth_capture)
    d = synth_eval.to_dict()
    assert set(d["views"]) == set(cap.view_ids) and len(d["views"]) == 4
    assert synth_eval.frames == 4 * cap.frame_count
    # floors measured on this fixture (body14 0.632, PPP 0.798, person 0.978, head 0.933, PPP per
    # view 0.715-0.900), with a margin; part widths 3x too wide (`_bodysplit.RADIUS`) score
    # 0.489 / 0.681 / 0.977 / 0.878, per view 0.603-0.739
    assert d["overall"]["person_iou"] > 0.94
    assert d["overall"]["body14"]["miou"] > 0.58
    assert d["overall"][PPP]["miou"] > 0.75
    assert d["overall"]["body14"]["iou"]["head"] > 0.9
    for view in d["views"].values():
        assert view[PPP]["miou"] > 0.65


def test_eval_cli_writes_json(synth_capture, tmp_path):
    from typer.testing import CliRunner

    from openhuman.cli import app

    out = tmp_path / "results.json"
    res = CliRunner().invoke(app, ["eval", str(synth_capture), "--max-frames", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["frames"] == 8 and len(d["views"]) == 4
    assert 0.0 < d["overall"]["body14"]["miou"] <= 1.0
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "nope")])
    assert res.exit_code == 2

"""Lifting a synthetic multi-view capture (openhuman.synth) with its exact 2D labels."""

from __future__ import annotations

import json

import numpy as np

from lifting import Lifter, LiftingConfig, SequenceWriter, TemporalLabelSmoother, read_ply
from lifting.metrics import point_miou
from lifting.scene import parse_from_labels
from openhuman.capture import Capture


def test_gt_2d_labels_lift_to_near_perfect_3d_miou_and_export(synth_capture, tmp_path):
    cap = Capture.open(synth_capture)
    assert cap.cameras is not None and cap.has_depth and cap.has_gt_3d
    lifter = Lifter(cap.cameras, LiftingConfig(source="depth"))
    smoother = TemporalLabelSmoother(lifter.cfg)
    mious = []
    with SequenceWriter(tmp_path / "out", source="depth") as writer:
        for frames in cap.synced(max_frames=2):
            i = frames[0].index
            parses = [parse_from_labels(f.view_id, i, cap.gt_2d(f.view_id, i), with_probs=True) for f in frames]
            depths = {v: cap.depth(v, i) for v in cap.view_ids}
            cloud = smoother.step(lifter.lift(i, frames[0].timestamp_s, frames, parses, depths))
            gt_xyz, gt_labels = cap.gt_3d(i)
            mious.append(point_miou(cloud.xyz, cloud.labels, gt_xyz, gt_labels, max_dist=0.03)[0])
            writer.write(cloud, lifter.last_source)
    assert min(mious) > 0.9, mious
    seq = json.loads((tmp_path / "out" / "sequence.json").read_text())
    assert seq["frame_count"] == 2 and seq["complete"]
    back = read_ply(tmp_path / "out" / "frames" / "000001.ply")
    assert len(back) == seq["frames"][1]["points"] > 1000
    assert set(np.unique(back.labels)) >= {1, 2, 7, 8, 13, 14}

"""Person tracks: crossing people keep ids, re-identification within the patience window."""

from __future__ import annotations

import numpy as np
import pytest

from openhuman.types import Frame, PartParse
from tracking import PersonTracker, TrackingConfig, ViewTracker, detections_from_parse

H, W = 80, 160
COLOURS = {"red": (220, 40, 40), "blue": (40, 60, 220), "green": (40, 170, 40)}


def _scene(people: list[tuple[str, int, int, int]], order_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """people (name, cx, cy, r), drawn in list order (later on top); local ids in a shuffled order.

    Returns rgb uint8 [H, W, 3], labels int16 [H, W], local person ids int16 [H, W]."""
    rng = np.random.default_rng(order_seed)
    rgb = np.clip(150 + rng.normal(0, 12, (H, W, 3)), 0, 255)
    labels = np.zeros((H, W), np.int16)
    pids = np.full((H, W), -1, np.int16)
    yy, xx = np.mgrid[0:H, 0:W]
    local = rng.permutation(len(people))
    for k, (name, cx, cy, r) in enumerate(people):
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        rgb[inside] = np.asarray(COLOURS[name]) + rng.normal(0, 8, (int(inside.sum()), 3))
        labels[inside] = 2
        pids[inside] = local[k]
    return rgb.astype(np.uint8), labels, pids


def _ids_of(person_ids: np.ndarray, cx: int, cy: int) -> int:
    return int(person_ids[cy, cx])


def crossing(i: int) -> list[tuple[str, int, int, int]]:
    # blue (smaller) passes fully behind red around frame 12
    return [("blue", 130 - 5 * i, 40, 11), ("red", 20 + 5 * i, 40, 16)]


@pytest.mark.parametrize(("smoothing", "k"), [("none", 1), ("ema", 1), ("ema", 3)])
def test_people_crossing_keep_their_ids(smoothing, k):
    def parse(frame: Frame) -> PartParse:
        _, labels, pids = _scene(crossing(frame.index), frame.index)
        return PartParse("v", frame.index, labels, np.ones((H, W), np.float32), pids)

    tracker = ViewTracker(parse, TrackingConfig(smoothing=smoothing, keyframe_interval=k))
    red_ids, blue_ids = set(), set()
    frames = [Frame("v", i, i / 30, _scene(crossing(i), i)[0]) for i in range(24)]
    outs = [out for f in frames for out in tracker.push(f)] + tracker.flush()
    for i, out in enumerate(outs):
        assert out.frame_index == i
        (_, bx, by, br), (_, rx, ry, _) = crossing(i)
        red_ids.add(_ids_of(out.person_ids, rx, ry))
        if abs(bx - rx) > 16 + br + 1:  # blue fully visible
            blue_ids.add(_ids_of(out.person_ids, bx, by))
    assert len(red_ids) == 1 and len(blue_ids) == 1
    assert red_ids != blue_ids and -1 not in red_ids | blue_ids


def _run_gap(gap: int, cfg: TrackingConfig, intruder: bool = False) -> list[int]:
    """Red walks, vanishes for `gap` frames, returns; returns red's track id per visible frame."""
    tracker = PersonTracker(cfg)
    ids = []
    for i in range(8 + gap + 4):
        visible = i < 8 or i >= 8 + gap
        people = [("red", 20 + 3 * i, 40, 14)] if visible else []
        if intruder and not visible:
            people.append(("green", 20 + 3 * i, 40, 14))
        rgb, _, pids = _scene(people, i)
        mapping = tracker.update(detections_from_parse(rgb, pids), pids)
        if visible:
            ids.append(mapping[int(pids[40, 20 + 3 * i])])
    return ids


def test_reidentified_within_patience_new_id_beyond():
    cfg = TrackingConfig(max_lost=6, min_hits=2)
    within = _run_gap(4, cfg)
    assert len(set(within)) == 1
    beyond = _run_gap(9, cfg)
    assert beyond[0] != beyond[-1] and len(set(beyond[:8])) == 1 and len(set(beyond[8:])) == 1


def test_other_person_in_the_gap_does_not_steal_the_id():
    ids = _run_gap(4, TrackingConfig(max_lost=6), intruder=True)
    assert len(set(ids)) == 1


def test_track_life_cycle():
    tracker = PersonTracker(TrackingConfig(min_hits=3, max_lost=2))
    rgb, _, pids = _scene([("red", 50, 40, 12)], 0)
    dets = detections_from_parse(rgb, pids)
    tracker.update(dets, pids)
    assert [t.state for t in tracker.tracks] == ["tentative"]
    tracker.update([], pids)  # a tentative track dies on its first miss
    assert tracker.tracks == []
    for _ in range(3):
        tracker.update(dets, pids)
    assert [t.state for t in tracker.tracks] == ["confirmed"]
    for expected in (["lost"], ["lost"], []):
        tracker.update([], pids)
        assert [t.state for t in tracker.tracks] == expected

"""Optical-flow propagation and the sequence metrics."""

from __future__ import annotations

import numpy as np
import pytest

from tracking import FlowEstimator, ProbSmoother, boundary_f, evaluate_sequence, region_j
from tracking.propagate import to_gray, warp_nearest


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.mean()) / img.std() * 50 + 128
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("method", "scale"), [("dis", 0.5), ("dis", 1.0), ("farneback", 0.5)])
@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-5, 4)])
def test_known_translation_is_propagated_within_a_pixel(method, scale, dx, dy):
    H, W = 120, 160
    big = _textured(H + 20, W + 20)
    prev = big[10 : 10 + H, 10 : 10 + W]
    cur = big[10 - dy : 10 - dy + H, 10 - dx : 10 - dx + W]  # content moved by (+dx, +dy)
    est = FlowEstimator(method, scale=scale)
    roi = (10, 110, 20, 150) if scale == 1.0 else None
    motion = est.estimate(to_gray(prev), to_gray(cur), roi)
    ys, xs = np.mgrid[0:H, 0:W]
    inner = (slice(26, -26), slice(36, -36))
    full = motion.full_map()
    err = np.hypot(full[..., 0] - (xs - dx), full[..., 1] - (ys - dy))[inner]
    assert np.median(err) < 0.5 and np.percentile(err, 95) < 1.0
    y0, _, x0, _ = motion.roi
    assert motion.reliable[26 - y0 : -26, 36 - x0 : -36].mean() > 0.9
    labels = (xs // 8 + ys // 8).astype(np.int16) % 15  # a checkerboard-like label map on prev
    warped = warp_nearest(labels, full)
    expected = np.roll(labels, (dy, dx), axis=(0, 1))
    assert (warped[inner] == expected[inner]).mean() > 0.97
    # the forward map (previous -> current, used to pull a later parse back) is the inverse shift
    fwd = full.copy()  # identity outside the flow window
    fwd[y0 : motion.roi[1], x0 : motion.roi[3]] = motion.forward_window()
    err = np.hypot(fwd[..., 0] - (xs + dx), fwd[..., 1] - (ys + dy))[inner]
    assert np.median(err) < 0.5 and np.percentile(err, 95) < 1.0


def test_occluded_pixels_are_flagged_unreliable():
    H, W = 120, 160
    prev = _textured(H, W, 1)
    cur = prev.copy()
    cur[40:80, 60:100] = _textured(40, 40, 7)  # a patch appears from nowhere
    motion = FlowEstimator("dis", 0.5).estimate(to_gray(prev), to_gray(cur))
    assert motion.residual[48:72, 68:92].mean() > 25
    assert motion.residual[:20, :20].mean() < 10


@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-5, 4)])
def test_backward_flow_only_with_a_residual_check(dx, dy):
    """`residual_threshold`: the same backward map from one flow, no forward flow unless asked
    for, and a pixel whose content appears from nowhere is unreliable."""
    H, W = 120, 160
    big = _textured(H + 20, W + 20)
    prev = big[10 : 10 + H, 10 : 10 + W]
    cur = big[10 - dy : 10 - dy + H, 10 - dx : 10 - dx + W].copy()
    cur[50:80, 70:100] = _textured(30, 30, 7)
    both = FlowEstimator("dis", 0.5).estimate(to_gray(prev), to_gray(cur))
    est = FlowEstimator("dis", 0.5, residual_threshold=25)
    one = est.estimate(to_gray(prev), to_gray(cur), forward=False)
    assert np.array_equal(one.map_xy, both.map_xy) and np.array_equal(one.residual, both.residual)
    assert one.forward.size == 0 and one.forward_window() is None
    asked = est.estimate(to_gray(prev), to_gray(cur))  # the forward flow too, the same check
    assert np.array_equal(asked.forward, both.forward) and np.array_equal(asked.reliable, one.reliable)
    ys, xs = np.mgrid[0:H, 0:W]
    full = one.full_map()
    err = np.hypot(full[..., 0] - (xs - dx), full[..., 1] - (ys - dy))[26:46, 36:-36]
    assert np.median(err) < 0.5
    assert one.reliable[26:46, 36:-36].mean() > 0.9
    assert one.reliable[55:75, 75:95].mean() < 0.5
    assert np.array_equal(one.reliable, one.reliable & (one.residual <= 25))


def test_smoother_ema_resets_where_not_kept():
    sm = ProbSmoother("ema", alpha=0.25)
    a = np.zeros((3, 4, 4), np.float32)
    a[0] = 1
    b = np.zeros_like(a)
    b[1] = 1
    sm.step(a)
    keep = np.ones((4, 4), bool)
    keep[0, 0] = False
    out = sm.step(b, keep=keep)
    assert out[:, 1, 1].argmax() == 0 and np.isclose(out[1, 1, 1], 0.25)
    assert out[:, 0, 0].argmax() == 1 and np.isclose(out[1, 0, 0], 1.0)


def test_smoother_ema_history_fades_per_frame_of_time():
    """A step `frames` frames after the last one gives the history (1 - alpha) ** frames: four
    single steps and one 4-frame step weigh the old probabilities alike."""
    a = np.zeros((2, 3, 3), np.float32)
    a[0] = 1
    b = a[::-1].copy()
    one = ProbSmoother("ema", alpha=0.25)
    one.step(a)
    for _ in range(4):
        out1 = one.step(b)
    gap = ProbSmoother("ema", alpha=0.25)
    gap.step(a)
    out4 = gap.step(b, frames=4)
    np.testing.assert_allclose(out4[0], 0.75**4, rtol=1e-6)
    np.testing.assert_allclose(out4, out1, rtol=1e-6)


def test_region_and_boundary_scores():
    m = np.zeros((50, 50), bool)
    m[10:30, 10:30] = True
    assert region_j(m, m) == 1.0 and boundary_f(m, m) == 1.0
    shifted1 = np.roll(m, 1, axis=1)
    shifted6 = np.roll(m, 6, axis=1)
    assert boundary_f(shifted1, m, tolerance_px=2) == 1.0
    assert boundary_f(shifted6, m, tolerance_px=2) < 0.6
    assert region_j(shifted6, m) == pytest.approx(14 * 20 / (26 * 20))
    assert boundary_f(m, np.zeros_like(m)) == 0.0


def test_sequence_flip_rate_and_miou():
    gt = np.zeros((10, 10), np.int64)
    gt[:, 5:] = 2
    preds = [gt.copy() for _ in range(3)]
    preds[1][0, 0] = 2  # one flip into frame 1 and one back in frame 2
    scores = evaluate_sequence(preds, [gt] * 3)
    assert scores.flip_rate == pytest.approx(2 / 200)
    assert scores.frames == 3
    assert scores.miou == pytest.approx(150 / 151)
    assert scores.j[2] == pytest.approx((1 + 50 / 51 + 1) / 3)
    assert np.isnan(scores.j[1])


def test_still_flip_rate_separates_flicker_from_moving_boundaries():
    """A bar moving right by 3 px a frame, predicted 1 px behind: its flips lie on the moving
    boundary and are not still flips; a pixel blinking far from the bar is."""
    gts, trailing = [], []
    for t in range(5):
        g = np.zeros((20, 40), np.int64)
        g[5:15, 3 * t + 5 : 3 * t + 15] = 3
        gts.append(g)
        trailing.append(np.roll(g, -1, axis=1))
    s = evaluate_sequence(trailing, gts)
    assert s.flip_rate > 0 and s.still_flip_rate == 0.0
    blinking = [p.copy() for p in trailing]
    for t in (1, 3):
        blinking[t][18, 38] = 5
    s2 = evaluate_sequence(blinking, gts)
    assert s2.still_flip_rate > 0
    assert s2.flip_rate - s.flip_rate == pytest.approx(s2.still_flip_rate)


def test_smoother_windows_at_different_origins_are_aligned():
    sm = ProbSmoother("ema", alpha=0.5)
    a = np.zeros((2, 4, 4), np.float32)
    a[0] = 1
    sm.step(a, origin=(0, 0))
    b = np.zeros((2, 4, 4), np.float32)
    b[1] = 1
    out = sm.step(b, origin=(2, 2))  # frame pixels 2..5; only 2..3 had history
    assert np.allclose(out[:, :2, :2], 0.5)
    assert np.allclose(out[:, 3, 3], [0.0, 1.0]) and np.allclose(out[1, :2, 3], 1.0)
    assert sm.extent == (2, 6, 2, 6)


def test_snap_to_edges_pulls_a_shifted_silhouette_back_onto_the_image():
    """A person mask 3 px off its figure (as after imperfect flow) snaps back to the figure's
    colour edges; joining pixels copy the nearest part, leaving ones become background."""
    from tracking.propagate import snap_to_edges

    h, w = 96, 128
    figure = np.zeros((h, w), bool)
    figure[20:80, 40:90] = True
    rgb = np.full((h, w, 3), 30, np.uint8)
    rgb[figure] = (210, 150, 90)
    labels = np.zeros((h, w), np.int16)
    labels[20:50, 43:93] = 2  # torso, 3 px to the right of the figure
    labels[50:80, 43:93] = 9  # thighs
    ids = np.where(labels > 0, 0, -1).astype(np.int16)
    scores = np.where(labels > 0, 0.9, 0.8).astype(np.float32)
    probs = np.zeros((15, h, w), np.float32)
    probs[labels, *np.indices((h, w))] = 1.0
    before = labels.copy()
    out_l, out_i, out_s, out_p = snap_to_edges(labels, ids, scores, probs, rgb, radius=8, eps=1e-3)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / (a | b).sum())

    assert iou(out_l > 0, figure) > 0.98 > iou(labels > 0, figure) + 0.05
    assert (labels == before).all()  # inputs untouched
    assert (out_l[25, 40:43] == 2).all() and (out_l[70, 40:43] == 9).all()  # joined: nearest part
    assert (out_l[25, 90:93] == 0).all() and (out_i[25, 90:93] == -1).all() and (out_s[25, 90:93] == 0.5).all()
    assert ((out_i >= 0) == (out_l > 0)).all()
    assert (out_p.argmax(0) == out_l).all()  # probabilities follow the labels
    # nothing to do without a person, or with radius 0
    assert snap_to_edges(np.zeros_like(labels), np.full_like(ids, -1), scores, None, rgb, 8, 1e-3)[0].max() == 0
    assert snap_to_edges(labels, ids, scores, probs, rgb, 0, 1e-3)[0] is labels

"""The mediapipe backend on real photos that ship in packages, and its landmark geometry."""

from __future__ import annotations

import numpy as np
import pytest

from openhuman.ontology import FINE_PARTS, LR_SWAP
from openhuman.parsing.config import MediapipeConfig, ParserConfig
from openhuman.types import Frame

LEFT_ARM, RIGHT_ARM = (3, 5, 7), (4, 6, 8)
FINE_ID = {name: i for i, (name, _p) in enumerate(FINE_PARTS)}


def _grace() -> np.ndarray:
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def parser():
    from openhuman.parsing.base import Parser

    p = Parser.from_config(ParserConfig(mediapipe=MediapipeConfig(static_image_mode=True, fine_parts=True)))
    yield p
    p.close()


@pytest.fixture(scope="module")
def parses(parser):
    images = {"astronaut": _astronaut(), "grace_hopper": _grace()}
    return {name: (img, parser(Frame(name, 0, 0.0, img))) for name, img in images.items()}


def _centre_x(labels: np.ndarray, ids: tuple[int, ...]) -> float:
    ys, xs = np.nonzero(np.isin(labels, ids))
    assert xs.size > 50, f"parts {ids} not found"
    return float(xs.mean())


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_person_head_and_arms_found_on_correct_sides(parses, name):
    img, parse = parses[name]
    labels = parse.labels
    h, w = labels.shape
    assert (labels > 0).mean() > 0.2
    ys, xs = np.nonzero(labels == 1)
    assert xs.size > 0.03 * h * w
    torso_y = np.nonzero(labels == 2)[0].mean()
    assert ys.mean() < torso_y  # head above the torso
    torso_x = _centre_x(labels, (2,))
    # facing the camera: the person's left arm is on the image's right
    assert _centre_x(labels, LEFT_ARM) > torso_x > _centre_x(labels, RIGHT_ARM)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_parse_shapes_dtypes_and_probabilities(parses, name):
    img, parse = parses[name]
    h, w = img.shape[:2]
    assert parse.labels.shape == (h, w) and parse.labels.dtype == np.int16
    assert parse.scores.dtype == np.float32 and parse.scores.min() >= 0.0 and parse.scores.max() <= 1.0 + 1e-6
    assert parse.probs is not None and parse.probs.shape == (15, h, w) and parse.probs.dtype == np.float16
    np.testing.assert_allclose(parse.probs.astype(np.float32).sum(0), 1.0, atol=0.02)
    agree = (parse.probs.argmax(0) == parse.labels).mean()
    assert agree > 0.97
    assert np.all((parse.person_ids == -1) == (parse.labels == 0))
    assert parse.num_people == 1
    assert parse.keypoints is not None and parse.keypoints.shape == (1, 33, 3)
    nose = parse.keypoints[0, 0]
    assert parse.labels[int(nose[1]), int(nose[0])] == 1


def test_fine_face_parts_inside_head(parses):
    _img, parse = parses["grace_hopper"]
    fine = parse.fine_labels
    assert fine is not None and fine.shape == parse.labels.shape
    for part in ("left eye", "right eye", "nose", "mouth"):
        assert (fine == FINE_ID[part]).sum() > 20, part
    assert np.all(parse.labels[fine > 0] == 1)
    left_eye_x = np.nonzero(fine == FINE_ID["left eye"])[1].mean()
    right_eye_x = np.nonzero(fine == FINE_ID["right eye"])[1].mean()
    assert left_eye_x > right_eye_x  # the person's left eye is on the image's right


def test_mirrored_image_swaps_left_and_right(parser, parses):
    img, parse = parses["astronaut"]
    mirrored = parser(Frame("mirror", 0, 0.0, np.ascontiguousarray(img[:, ::-1])))
    labels_m = mirrored.labels
    # a mirrored frontal person still looks frontal: their left arm is again on the image's right,
    # so the arm that was labelled left is now labelled right
    assert _centre_x(labels_m, LEFT_ARM) > _centre_x(labels_m, (2,)) > _centre_x(labels_m, RIGHT_ARM)
    back = LR_SWAP[labels_m[:, ::-1]]
    person = (parse.labels > 0) & (back > 0)
    assert (back[person] == parse.labels[person]).mean() > 0.8


def test_image_without_person_is_all_background(parser):
    from skimage import data

    img = data.coffee()
    parse = parser(Frame("coffee", 0, 0.0, img))
    assert np.all(parse.labels == 0)
    assert np.all(parse.person_ids == -1)
    assert parse.num_people == 0
    assert np.all(parse.probs[0] == 1.0)
    assert parse.keypoints is not None and parse.keypoints.shape == (0, 33, 3)


def test_video_mode_keeps_each_view_apart():
    from openhuman.parsing.mediapipe_backend import MediapipeParser

    p = MediapipeParser(MediapipeConfig(use_hands=False, use_face=False))
    img = _astronaut()[::2, ::2].copy()
    try:
        a = [p(Frame("a", i, i / 30, np.roll(img, i, axis=1))) for i in range(3)]
        b = p(Frame("b", 0, 0.0, img[:, ::-1].copy()))
        assert all((x.labels == 1).sum() > 500 for x in a)
        assert _centre_x(b.labels, LEFT_ARM) > _centre_x(b.labels, RIGHT_ARM)
    finally:
        p.close()


def test_two_people_get_two_ids():
    import cv2

    from openhuman.parsing.mediapipe_backend import MediapipeParser

    a = _astronaut()
    g = cv2.resize(_grace(), (a.shape[0] * 512 // 600, a.shape[0]))
    both = np.ascontiguousarray(np.concatenate([a, g], axis=1))
    p = MediapipeParser(MediapipeConfig(static_image_mode=True, max_people=2, use_hands=False, use_face=False))
    try:
        parse = p(Frame("two", 0, 0.0, both))
    finally:
        p.close()
    assert parse.num_people == 2
    assert parse.keypoints.shape == (2, 33, 3)
    heads = [np.nonzero((parse.labels == 1) & (parse.person_ids == i))[1] for i in range(2)]
    assert all(h.size > 1000 for h in heads)
    sides = sorted(float(h.mean()) for h in heads)
    assert sides[0] < a.shape[1] < sides[1]


def test_bodysplit_t_pose_geometry():
    from openhuman.parsing._bodysplit import PoseLandmarks, split_parts

    xy = np.zeros((33, 2), np.float32)
    pts = {
        0: (100, 30), 2: (105, 25), 5: (95, 25), 7: (112, 30), 8: (88, 30), 9: (104, 40), 10: (96, 40),
        11: (120, 60), 12: (80, 60), 13: (150, 60), 14: (50, 60), 15: (180, 60), 16: (20, 60),
        17: (192, 62), 18: (8, 62), 19: (193, 58), 20: (7, 58), 21: (188, 55), 22: (12, 55),
        23: (112, 120), 24: (88, 120), 25: (114, 160), 26: (86, 160), 27: (115, 200), 28: (85, 200),
        29: (115, 205), 30: (85, 205), 31: (122, 207), 32: (78, 207),
    }  # fmt: skip
    for i, p in pts.items():
        xy[i] = p
    lm = PoseLandmarks(xy=xy, z=np.zeros(33, np.float32), vis=np.ones(33, np.float32))
    q = split_parts(lm, (110, 100), (220, 200))
    assert q.shape == (14, 110, 100) and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-5)
    label = q.argmax(0) + 1

    def at(x: float, y: float) -> int:
        return int(label[int(y / 2), int(x / 2)])

    assert at(100, 30) == 1 and at(100, 90) == 2
    assert at(135, 60) == 3 and at(65, 60) == 4 and at(165, 60) == 5 and at(35, 60) == 6
    assert at(190, 60) == 7 and at(10, 60) == 8
    assert at(113, 140) == 9 and at(87, 140) == 10 and at(115, 180) == 11 and at(85, 180) == 12
    assert at(118, 206) == 13 and at(82, 206) == 14


def _pose(xy: np.ndarray):
    from openhuman.parsing._bodysplit import PoseLandmarks
    from openhuman.parsing._mp_runtime import PoseResult

    lm = PoseLandmarks(xy=xy.astype(np.float32), z=np.zeros(33, np.float32), vis=np.ones(33, np.float32))
    return PoseResult(lm, np.zeros((4, 4), np.float32))


def _standing() -> np.ndarray:
    xy = np.zeros((33, 2), np.float32)
    xy[[11, 12, 23, 24]] = [(120, 60), (80, 60), (112, 120), (88, 120)]
    for left, right, y in ((25, 26, 160), (27, 28, 200), (29, 30, 205), (31, 32, 207)):
        xy[left], xy[right] = (125, y), (75, y)
    for left, right, x in ((13, 14, 60), (15, 16, 60), (17, 18, 62), (19, 20, 58), (21, 22, 55)):
        xy[left], xy[right] = (140, 100 + x - 60), (60, 100 + x - 60)
    return xy


def test_person_found_with_an_empty_mask_keeps_its_keypoints(parser):
    from openhuman.parsing.mediapipe_backend import _Person

    person = _Person(_pose(_standing()), None, (None, None))  # its person mask is all zero
    frame = Frame("v", 0, 0.0, np.zeros((4, 4, 3), np.uint8))
    out = parser._compose(frame, frame.rgb, [person])
    assert out.labels.max() == 0 and (out.person_ids == -1).all()
    assert out.keypoints.shape == (1, 33, 3) and np.allclose(out.keypoints[0, :, :2], _standing())


def test_sudden_limb_swap_is_repaired_but_crossing_is_kept():
    from openhuman.parsing.mediapipe_backend import _unflip_limbs

    prev = _pose(_standing())
    swapped = _standing()
    legs = [25, 27, 29, 31]
    swapped[legs], swapped[[i + 1 for i in legs]] = _standing()[[i + 1 for i in legs]], _standing()[legs]
    fixed = _unflip_limbs(_pose(swapped), prev).landmarks.xy
    np.testing.assert_allclose(fixed, _standing())
    crossing = _standing()
    crossing[legs, 0] = crossing[[i + 1 for i in legs], 0] = 100.0  # legs meet in the middle
    kept = _unflip_limbs(_pose(crossing), prev).landmarks.xy
    np.testing.assert_allclose(kept, crossing)


def test_pose_setting_its_own_slip_right_is_not_undone():
    """Pose slipped (legs exchanged) at the previous frame and is right again now: against the
    slipped frame alone that looks like a swap, but the frame before the slip agrees with now."""
    from openhuman.parsing.mediapipe_backend import _unflip_limbs

    legs = [25, 27, 29, 31]
    slipped = _standing()
    slipped[legs], slipped[[i + 1 for i in legs]] = _standing()[[i + 1 for i in legs]], _standing()[legs]
    now = _pose(_standing())
    assert not np.allclose(_unflip_limbs(now, _pose(slipped)).landmarks.xy, _standing())  # one frame back only
    np.testing.assert_allclose(_unflip_limbs(now, _pose(slipped), _pose(_standing())).landmarks.xy, _standing())
    # a real swap (the two frames before agree with each other) is still undone
    fixed = _unflip_limbs(_pose(slipped), now, now).landmarks.xy
    np.testing.assert_allclose(fixed, _standing())


@pytest.mark.parametrize("limit", [0, 6])
def test_a_swap_is_undone_for_at_most_fix_lr_max_frames(monkeypatch, limit):
    """Pose swaps the legs from frame 1 on: the repair undoes it for `limit` frames, then takes
    Pose's sides as given (0: undone for ever, as before the limit)."""
    from openhuman.parsing.mediapipe_backend import MediapipeParser

    legs = [25, 27, 29, 31]
    swapped = _standing()
    swapped[legs], swapped[[i + 1 for i in legs]] = _standing()[[i + 1 for i in legs]], _standing()[legs]
    script = iter([_standing()] + [swapped] * 10)
    p = MediapipeParser(MediapipeConfig(zoom_small_people=False, fix_lr_max_frames=limit))
    monkeypatch.setattr(MediapipeParser, "_pose_slot", lambda self, st, i: lambda image: _pose(next(script)))
    st = p._state("v")
    kept = []
    for _ in range(11):
        (res,) = p._find_people(st, np.zeros((4, 4, 3), np.uint8))
        kept.append(bool(np.allclose(res.landmarks.xy, _standing())))
    assert kept == ([True] * 11 if limit == 0 else [True] * 7 + [False] * 4)


def test_hands_are_matched_to_wrists_by_distance():
    from openhuman.parsing.mediapipe_backend import _match_hands

    pose = _pose(_standing())
    near_left = np.tile(np.float32([[141, 101]]), (21, 1))
    near_right = np.tile(np.float32([[59, 99]]), (21, 1))
    far = np.tile(np.float32([[400, 400]]), (21, 1))
    ((left, right),) = _match_hands([near_right, far, near_left], [pose])
    assert left is near_left and right is near_right
    ((left, right),) = _match_hands([far], [pose])
    assert left is None and right is None


def test_small_far_person_is_found_by_zoom():
    import cv2

    from openhuman.parsing.mediapipe_backend import MediapipeParser

    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[300:390, 420:510] = cv2.resize(_astronaut(), (90, 90), interpolation=cv2.INTER_AREA)
    found = {}
    for zoom in (False, True):
        cfg = MediapipeConfig(static_image_mode=True, use_hands=False, use_face=False, zoom_small_people=zoom)
        p = MediapipeParser(cfg)
        try:
            found[zoom] = p(Frame("far", 0, 0.0, canvas))
        finally:
            p.close()
    assert found[False].num_people == 0  # too small for Pose's full-frame detector
    parse = found[True]
    assert parse.num_people == 1
    ys, xs = np.nonzero(parse.labels > 0)
    assert 410 <= xs.mean() <= 520 and 290 <= ys.mean() <= 400
    nose = parse.keypoints[0, 0]
    assert 420 <= nose[0] <= 510 and 300 <= nose[1] <= 390


def test_guided_refinement_snaps_a_soft_shifted_mask_to_the_image_edge():
    """A low-resolution, shifted person mask comes back onto the figure's true outline where the
    image has an edge; where the figure has the background's colour the boundary stays put."""
    import cv2

    from openhuman.parsing._compose import refine_person

    h, w = 120, 160
    truth = np.zeros((h, w), bool)
    truth[20:100, 50:110] = True
    rgb = np.full((h, w, 3), 40, np.uint8)
    rgb[truth] = (200, 120, 90)
    # mediapipe-like: the mask 4 px to the right, computed at 1/8 resolution and upsampled
    shifted = np.roll(truth, 4, axis=1).astype(np.float32)
    soft = cv2.resize(cv2.resize(shifted, (w // 8, h // 8), interpolation=cv2.INTER_AREA), (w, h))

    def iou(m: np.ndarray, ref: np.ndarray) -> float:
        return float((m & ref).sum() / (m | ref).sum())

    refined = refine_person(soft, rgb, radius=8, eps=1e-3)
    assert refined.dtype == np.float32 and refined.min() >= 0 and refined.max() <= 1
    assert iou(refined > 0.5, truth) > iou(soft > 0.5, truth) + 0.03
    assert iou(refined > 0.5, truth) > 0.95
    # no edge to follow (the figure has the background's colour): the mask is only smoothed, and
    # the straight sides stay where they were (within a pixel, mid-height)
    flat = np.full((h, w, 3), 40, np.uint8)
    same = refine_person(soft, flat, radius=8, eps=1e-3)
    cols_same, cols_soft = np.nonzero(same[60] > 0.5)[0], np.nonzero(soft[60] > 0.5)[0]
    assert abs(cols_same[0] - cols_soft[0]) <= 1 and abs(cols_same[-1] - cols_soft[-1]) <= 1
    assert refine_person(np.zeros((h, w), np.float32), rgb, 8, 1e-3).max() == 0  # nobody: unchanged


def _person_iou(parser, cap, frames: int) -> float:
    """Person-mask IoU of the parser against the capture's 2D ground truth, over the first
    `frames` frames of every view."""
    inter = union = 0
    for view in cap.view_ids:
        for frame in list(cap.frames(view))[:frames]:
            pred, gt = parser(frame).labels > 0, cap.gt_2d(view, frame.index) > 0
            inter, union = inter + (pred & gt).sum(), union + (pred | gt).sum()
    return float(inter / union)


def test_guided_refinement_improves_the_person_mask_on_a_synthetic_capture(synth_capture):
    """Against the capture's exact ground truth, the refined person mask overlaps it better."""
    from openhuman.capture import Capture
    from openhuman.parsing.base import Parser

    cap = Capture.open(synth_capture)
    scores = {}
    for radius in (0, 8):
        cfg = ParserConfig(mediapipe=MediapipeConfig(static_image_mode=True, mask_refine_radius=radius))
        parser = Parser.from_config(cfg)
        scores[radius] = _person_iou(parser, cap, 2)
        parser.close()
    assert scores[8] > scores[0], scores


def _figure_with_gap():
    """A torso and an arm (different colours) on a grey background, a 14 px background gap
    between them, and a mediapipe-like mask that covers the gap; plus a core mask along the
    bones. Returns (rgb, p, core(window) callable, gap bool, figure bool)."""
    h, w = 160, 180
    rgb = np.full((h, w, 3), (150, 146, 140), np.uint8)
    figure = np.zeros((h, w), bool)
    torso, arm, gap = (slice(30, 130), slice(60, 130)), (slice(30, 110), slice(32, 46)), (slice(40, 110), slice(46, 60))
    rgb[torso], rgb[arm] = (30, 55, 100), (200, 155, 128)
    figure[torso] = figure[arm] = True
    p = np.zeros((h, w), np.float32)
    p[30:130, 32:130] = 1.0  # the blob: arm, gap and torso
    core = np.zeros((h, w), bool)
    core[35:125, 91:99] = True  # spine
    core[35:105, 37:41] = True  # arm bone
    gap_mask = np.zeros((h, w), bool)
    gap_mask[gap] = True

    def core_of(box):
        y0, y1, x0, x1 = box
        return core[y0:y1, x0:x1]

    return rgb, p, core_of, gap_mask, figure


def test_carving_opens_a_background_coloured_gap_between_arm_and_torso():
    from openhuman.parsing._compose import carve_background

    rgb, p, core, gap, figure = _figure_with_gap()
    out = carve_background(p, rgb, core, threshold=0.8, min_share=0.01)
    assert out is not p and p[gap].min() == 1.0  # the input is not modified
    assert (out[gap] == 0).mean() > 0.95
    assert np.all(out[figure] == 1.0)  # torso and arm are kept
    # a region below min_share of the mask stays (the background-coloured pixels inside the mask,
    # gap included, are a sixth of it)
    assert carve_background(p, rgb, core, threshold=0.8, min_share=0.2) is p
    # the skeleton is never carved, even where it crosses the background's colour
    rgb2 = rgb.copy()
    rgb2[60:80, 91:99] = (150, 146, 140)  # a stretch of the spine painted in the background's colour
    out2 = carve_background(p, rgb2, core, threshold=0.8, min_share=0.01)
    assert np.all(out2[60:80, 91:99] == 1.0) and (out2[gap] == 0).mean() > 0.95


def test_carving_leaves_a_person_without_background_coloured_regions_alone():
    from openhuman.parsing._compose import carve_background

    rgb, p, core, gap, figure = _figure_with_gap()
    rgb[(p > 0) & ~figure] = (30, 55, 100)  # the gap (and the mask's corners) are shirt: nothing to carve
    assert carve_background(p, rgb, core, threshold=0.8, min_share=0.01) is p
    assert carve_background(np.zeros_like(p), rgb, core, 0.8, 0.01).max() == 0  # nobody


def test_core_mask_covers_the_bones_and_not_the_space_beside_them():
    from openhuman.parsing._bodysplit import PoseLandmarks, core_mask

    lm = PoseLandmarks(xy=_standing(), z=np.zeros(33, np.float32), vis=np.ones(33, np.float32))
    core = core_mask([lm], (0, 220, 0, 200))
    assert core.shape == (220, 200)
    assert (
        core[100, 140] and core[60, 100] and core[140, 118] and core[90, 100]
    )  # left arm, shoulder line, thigh, torso
    assert core[3, 3]  # the disc at the nose (at the corner in this skeleton)
    assert not core[100, 120] and not core[210, 20]  # between the left arm and the torso; far away
    # the window only shifts the drawing
    np.testing.assert_array_equal(core_mask([lm], (50, 150, 20, 180)), core[50:150, 20:180])


def test_carving_removes_little_from_real_photos_and_improves_a_synthetic_capture(synth_capture):
    """On the two real photos carving changes at most 0.5 % of the person's pixels; on the
    synthetic capture (exact ground truth) the person mask overlaps the truth better with it."""
    from openhuman.capture import Capture
    from openhuman.parsing.base import Parser

    cap = Capture.open(synth_capture)
    masks: dict[float, list[np.ndarray]] = {}
    scores = {}
    for thr in (0.0, 0.8):
        parser = Parser.from_config(
            ParserConfig(mediapipe=MediapipeConfig(static_image_mode=True, mask_carve_threshold=thr))
        )
        masks[thr] = [parser(Frame(n, 0, 0.0, img)).labels > 0 for n, img in (("a", _astronaut()), ("g", _grace()))]
        scores[thr] = _person_iou(parser, cap, 4)
        parser.close()
    for off, on in zip(masks[0.0], masks[0.8], strict=True):
        assert (off != on).sum() <= 0.005 * off.sum()
    assert scores[0.8] > scores[0.0] + 0.005, scores


def test_settings_out_of_range_are_input_errors_naming_the_key():
    from openhuman.errors import InputError
    from openhuman.parsing.mediapipe_backend import MediapipeParser

    for key, value in [("mask_carve_threshold", 1.0), ("mask_carve_min_share", 0.0), ("min_detection_confidence", 2.0),
                       ("min_tracking_confidence", -0.1), ("max_people", 0), ("hands_retry_every", 0),
                       ("fix_lr_max_frames", -1), ("zoom_retry_every", 0), ("grid_size", 8),
                       ("mask_refine_radius", -3), ("mask_refine_eps", 0.0)]:  # fmt: skip
        with pytest.raises(InputError, match=rf"^parser\.mediapipe\.{key} is {value!r}; it must be"):
            MediapipeParser(MediapipeConfig(**{key: value}))

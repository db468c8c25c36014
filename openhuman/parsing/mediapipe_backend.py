"""The offline default parser: mediapipe pose + segmentation split into body14 parts.

Per frame and view:
1. mediapipe Pose (model_complexity=1, the bundled one) gives 33 landmarks and a person
   segmentation probability. In video mode (the default) landmarks and masks are smoothed over
   time; every view keeps its own mediapipe state, so one parser can serve several views.
   When the full frame finds nobody, `_zoom.ZoomSearch` looks for a small (far) person on
   overlapping tiles and follows them with a crop (Pose's detector misses people < ~80 px tall).
2. Hands (lite) refine the hands where it fires; detected hands are matched to the pose wrists by
   distance (mediapipe's handedness labels assume a mirrored selfie image and are ignored). Face
   detection on a crop around the head refines the head's centre and size.
3. Regions of the person mask coloured like the scene around it and away from the skeleton
   (the gaps between an arm and the torso that mediapipe's blobby mask fills) are removed
   (`mask_carve_threshold`). The person probability is then aligned with the image's colour
   edges by a guided filter (`mask_refine_radius`; mediapipe's mask comes from a 256x256 output
   and is soft at the silhouette). `openhuman.parsing._bodysplit` turns landmarks into part
   probabilities on a coarse grid (`grid_size` long side), upsampled and multiplied by the person
   probability: probs[0] = 1 - person, probs[k] = person * P(part k | person).
4. With `fine_parts`, fingers (hand landmarks) and eyes/nose/mouth (face mesh) go into
   `PartParse.fine_labels`.

Several people (`max_people > 1`): Pose is single-person, so people are found one after another:
each found person is blanked out (grey) and Pose runs again on the rest, with one mediapipe
instance per person slot. Limits: people who overlap heavily can merge or be missed, a person
behind another is often not found, extra runs cost ~25-30 ms each, and person ids are only local
to the frame (the tracker makes them stable).

"left" is the person's own left (mediapipe's convention); for a person facing the camera their
left arm appears on the image's right.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from openhuman.errors import InputError
from openhuman.parsing._bodysplit import L_WR, R_WR, PoseLandmarks, Refinements, body_scale, core_mask, split_parts
from openhuman.parsing._compose import (
    carve_background,
    full_resolution,
    grid_shape,
    merge_people,
    person_region,
    refine_person,
)
from openhuman.parsing._mp_runtime import FaceRunner, HandRunner, PoseResult, PoseRunner
from openhuman.parsing._zoom import ZoomSearch
from openhuman.parsing.base import Parser
from openhuman.parsing.config import MediapipeConfig, ParserConfig
from openhuman.types import Frame, PartParse

log = logging.getLogger(__name__)

NUM_CLASSES = 15


@dataclass
class _ViewState:
    """mediapipe instances of one view (their temporal state belongs to that view)."""

    poses: list[PoseRunner] = field(default_factory=list)
    hands: HandRunner | None = None
    face: FaceRunner | None = None
    frames: int = 0
    hands_missed: int = 0
    """Consecutive Hands runs that found nothing."""
    zoom: ZoomSearch | None = None
    """Small-person search for person slot 0."""
    previous: dict[int, list[PoseResult]] = field(default_factory=dict)
    """The last two frames' (repaired) poses per person slot, oldest first (left/right flip repair)."""
    undone: dict[int, int] = field(default_factory=dict)
    """Frames in a row in which a swap was undone, per person slot (`fix_lr_max_frames`)."""

    def close(self) -> None:
        for p in self.poses:
            p.close()
        if self.hands is not None:
            self.hands.close()
        if self.face is not None:
            self.face.close()
        if self.zoom is not None:
            self.zoom.close()


@dataclass(frozen=True)
class _Person:
    pose: PoseResult
    ref: Refinements
    hands: tuple[np.ndarray | None, np.ndarray | None]


def split_people(
    p: np.ndarray,
    people: list[tuple[PoseLandmarks, Refinements]],
    person_probs: list[np.ndarray],
    grid_size: int,
) -> tuple[tuple[int, int, int, int], np.ndarray | None, np.ndarray, np.ndarray] | None:
    """The landmark geometry over the people's box: (region (x0, y0, x1, y1), owner int [h, w]
    (the most likely person of each pixel; None for one person), part probabilities given person
    float32 [14, gh, gw] on the grid (`grid_size` long side), p's crop float32 [h, w]); None when
    no pixel of p is confidently a person. p: float32 [H, W] person probability
    (`MediapipeParser.person_probability`); people: each person's landmarks and refinements;
    person_probs: each person's own probability [H, W]."""
    region = person_region(p)
    if region is None:
        return None
    h, w = p.shape
    x0, y0, x1, y1 = region
    p_crop = np.ascontiguousarray(p[y0:y1, x0:x1])
    owner = np.stack([pp[y0:y1, x0:x1] for pp in person_probs]).argmax(0) if len(people) > 1 else None
    grid = grid_shape(y1 - y0, x1 - x0, grid_size)
    parts = [split_parts(lm, grid, (h, w), ref, region) for lm, ref in people]
    q = parts[0] if owner is None else merge_people(parts, owner, grid)
    return region, owner, q, p_crop


class MediapipeParser(Parser):
    """Landmark-geometry body14 parser on mediapipe's bundled models (CPU, offline)."""

    num_classes = NUM_CLASSES

    def __init__(self, cfg: MediapipeConfig) -> None:
        cfg.check()
        self.cfg = cfg
        self._views: dict[str, _ViewState] = {}
        self.timings: dict[str, float] = {"pose": 0.0, "hands": 0.0, "face": 0.0, "split": 0.0, "compose": 0.0}
        """Accumulated seconds per stage (for benchmarks)."""

    @classmethod
    def from_config(cls, cfg: ParserConfig) -> MediapipeParser:
        return cls(cfg.mediapipe)

    # ---- state -------------------------------------------------------------------------------
    def _state(self, view_id: str) -> _ViewState:
        st = self._views.get(view_id)
        if st is None:
            st = _ViewState()
            self._views[view_id] = st
        return st

    def _pose_slot(self, st: _ViewState, i: int) -> PoseRunner:
        while len(st.poses) <= i:
            c = self.cfg
            st.poses.append(PoseRunner(c.static_image_mode, c.min_detection_confidence, c.min_tracking_confidence))
        return st.poses[i]

    def _zoom(self, st: _ViewState) -> ZoomSearch | None:
        """The view's small-person search (None when disabled); photos never follow a crop."""
        if not self.cfg.zoom_small_people:
            return None
        if st.zoom is None:
            every = 1 if self.cfg.static_image_mode else self.cfg.zoom_retry_every
            st.zoom = ZoomSearch(self.cfg.min_detection_confidence, every)
        if self.cfg.static_image_mode:
            st.zoom.crop = None
        return st.zoom

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        for st in self._views.values():
            st.close()
        self._views.clear()

    # ---- per frame ---------------------------------------------------------------------------
    @property
    def stateful(self) -> bool:  # type: ignore[override]
        """Video mode smooths over time (state is kept per view, so one instance serves all views)."""
        return not self.cfg.static_image_mode

    def __call__(self, frame: Frame) -> PartParse:
        rgb = np.ascontiguousarray(frame.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(
                f"frame {frame.index} of view {frame.view_id!r} must be uint8 RGB [H, W, 3], got {rgb.dtype} {rgb.shape}"
            )
        st = self._state(frame.view_id)
        t0 = time.perf_counter()
        poses = self._find_people(st, rgb)
        t1 = time.perf_counter()
        self.timings["pose"] += t1 - t0
        people = self._refine(st, rgb, poses)
        st.frames += 1
        return self._compose(frame, rgb, people)

    def _find_people(self, st: _ViewState, rgb: np.ndarray) -> list[PoseResult]:
        found: list[PoseResult] = []
        image = rgb
        for i in range(self.cfg.max_people):
            zoom = self._zoom(st) if i == 0 else None
            res = None
            if zoom is None or not zoom.following:
                res = self._pose_slot(st, i)(image)
            if res is None and zoom is not None:
                res = zoom(image, st.frames)
            if res is None:
                for j in range(i, self.cfg.max_people):
                    st.previous.pop(j, None)
                break
            if self.cfg.fix_lr_flips and not self.cfg.static_image_mode and i in st.previous:
                fixed = _unflip_limbs(res, *st.previous[i][::-1])
                st.undone[i] = st.undone.get(i, 0) + 1 if fixed is not res else 0
                if self.cfg.fix_lr_max_frames <= 0 or st.undone[i] <= self.cfg.fix_lr_max_frames:
                    res = fixed
                else:
                    st.undone[i] = 0
            st.previous[i] = [*st.previous.get(i, [])[-1:], res]
            found.append(res)
            if i + 1 < self.cfg.max_people:
                image = _blank_out(image, res.person_prob)
        return found

    def _refine(self, st: _ViewState, rgb: np.ndarray, poses: list[PoseResult]) -> list[_Person]:
        hands = self._detect_hands(st, rgb, poses)
        people = []
        t0 = time.perf_counter()
        for i, pose in enumerate(poses):
            head = None
            if self.cfg.use_face:
                if st.face is None:
                    st.face = FaceRunner(with_mesh=self.cfg.fine_parts)
                centre, radius = _head_guess(pose)
                head = st.face.detect(rgb, centre, radius)
            people.append(_Person(pose, Refinements(hands=hands[i], head=head), hands[i]))
        self.timings["face"] += time.perf_counter() - t0
        return people

    def _detect_hands(self, st: _ViewState, rgb: np.ndarray, poses: list[PoseResult]) -> list[tuple]:
        none: list[tuple] = [(None, None) for _ in poses]
        if not self.cfg.use_hands or not poses:
            return none
        h, w = rgb.shape[:2]
        wrists = []
        for p in poses:
            for j in (L_WR, R_WR):
                x, y = p.landmarks.xy[j]
                if p.landmarks.vis[j] > 0.3 and 0 <= x < w and 0 <= y < h:
                    wrists.append(j)
        if not wrists:
            return none
        retry = self.cfg.hands_retry_every
        if not self.cfg.static_image_mode and st.hands_missed and (st.frames % retry):
            return none
        t0 = time.perf_counter()
        if st.hands is None:
            st.hands = HandRunner(self.cfg.static_image_mode, max_hands=min(2 * self.cfg.max_people, 4))
        matched = _match_hands(st.hands(rgb), poses)
        found = any(hand is not None for pair in matched for hand in pair)
        st.hands_missed = 0 if found else st.hands_missed + 1
        self.timings["hands"] += time.perf_counter() - t0
        return matched

    def person_probability(self, rgb: np.ndarray, people: list[_Person]) -> np.ndarray:
        """float32 [H, W] probability of any of `people` (at least one), with the scene carved out
        (`mask_carve_threshold`) and aligned with the image's edges (`mask_refine_radius`)."""
        person = [pers.pose.person_prob for pers in people]
        p = np.max(person, axis=0) if len(people) > 1 else person[0]
        if self.cfg.mask_carve_threshold > 0:
            lms = [pers.pose.landmarks for pers in people]
            core = lambda box: core_mask(lms, box)  # noqa: E731
            p = carve_background(p, rgb, core, self.cfg.mask_carve_threshold, self.cfg.mask_carve_min_share)
        if self.cfg.mask_refine_radius > 0:
            p = refine_person(p, rgb, self.cfg.mask_refine_radius, self.cfg.mask_refine_eps)
        return p

    def _compose(self, frame: Frame, rgb: np.ndarray, people: list[_Person]) -> PartParse:
        h, w = rgb.shape[:2]
        t0 = time.perf_counter()
        if not people:
            return _empty_parse(frame)
        p = self.person_probability(rgb, people)
        split = split_people(
            p, [(q.pose.landmarks, q.ref) for q in people], [q.pose.person_prob for q in people], self.cfg.grid_size
        )
        if split is None:  # people found, but no pixel is confidently theirs: keep their keypoints
            return _empty_parse(frame, people)
        (x0, y0, x1, y1), owner, q, p_crop = split
        t1 = time.perf_counter()
        self.timings["split"] += t1 - t0
        probs_c, labels_c, scores_c = full_resolution(q, p_crop)
        if (x1 - x0, y1 - y0) == (w, h):
            probs, labels, scores = probs_c, labels_c, scores_c
        else:
            probs = np.zeros((NUM_CLASSES, h, w), np.float16)
            probs[0] = 1.0
            probs[:, y0:y1, x0:x1] = probs_c
            labels = np.zeros((h, w), np.int16)
            labels[y0:y1, x0:x1] = labels_c
            scores = np.ones((h, w), np.float32)
            scores[y0:y1, x0:x1] = scores_c
        person_ids = np.full((h, w), -1, np.int16)
        person_ids[y0:y1, x0:x1] = np.where(labels_c > 0, 0 if owner is None else owner, -1)
        fine = self._fine_labels(frame.view_id, rgb, labels, people) if self.cfg.fine_parts else None
        self.timings["compose"] += time.perf_counter() - t1
        return PartParse(
            frame.view_id, frame.index, labels, scores, person_ids, probs=probs,
            keypoints=_keypoints(people), fine_labels=fine,
        )  # fmt: skip

    def _fine_labels(self, view_id: str, rgb: np.ndarray, labels: np.ndarray, people: list[_Person]) -> np.ndarray:
        from openhuman.parsing._fineparts import draw_face_parts, draw_fingers

        fine = np.zeros(labels.shape, np.int16)
        st = self._state(view_id)
        if st.face is None:
            st.face = FaceRunner(with_mesh=True)
        for pers in people:
            for side, hand in zip(("left", "right"), pers.hands, strict=True):
                if hand is not None:
                    draw_fingers(fine, labels, hand, side)
            centre, radius = _head_guess(pers.pose)
            if pers.ref.head is not None:
                centre, radius = np.array(pers.ref.head[:2]), 1.3 * pers.ref.head[2]
            mesh = st.face.mesh(rgb, centre, radius)
            if mesh is not None:
                draw_face_parts(fine, labels, mesh)
        return fine


def _keypoints(people: list[_Person]) -> np.ndarray:
    """float32 [P, 33, 3]: x, y pixels and visibility per person."""
    if not people:
        return np.zeros((0, 33, 3), np.float32)
    lms = [q.pose.landmarks for q in people]
    return np.stack([np.concatenate([lm.xy, lm.vis[:, None]], 1) for lm in lms]).astype(np.float32)


def _empty_parse(frame: Frame, people: list[_Person] | None = None) -> PartParse:
    """All background; the keypoints of `people` (found by Pose without a usable mask) kept."""
    h, w = frame.rgb.shape[:2]
    probs = np.zeros((NUM_CLASSES, h, w), np.float16)
    probs[0] = 1.0
    return PartParse(
        frame.view_id, frame.index, np.zeros((h, w), np.int16), np.ones((h, w), np.float32),
        np.full((h, w), -1, np.int16), probs=probs, keypoints=_keypoints(people or []),
    )  # fmt: skip


def _blank_out(rgb: np.ndarray, person_prob: np.ndarray) -> np.ndarray:
    """Copy of `rgb` with a found person (dilated mask) painted grey, so Pose finds the next one."""
    import cv2

    k = max(3, int(0.02 * max(rgb.shape[:2])) | 1)
    mask = cv2.dilate((person_prob > 0.2).astype(np.uint8), np.ones((k, k), np.uint8))
    out = rgb.copy()
    out[np.asarray(mask).astype(bool)] = 127
    return out


# (left, right) landmark pairs of each limb chain, elbow/knee outwards
_LIMB_PAIRS = (
    ((13, 14), (15, 16), (17, 18), (19, 20), (21, 22)),
    ((25, 26), (27, 28), (29, 30), (31, 32)),
)


def _unflip_limbs(res: PoseResult, prev: PoseResult, before: PoseResult | None = None) -> PoseResult:
    """Undo a sudden left/right swap of the arms or legs against the previous frame.

    mediapipe occasionally swaps a pair of limbs for a few frames (mostly in side views). If
    exchanging the left and right landmarks of a limb pair moves them much closer to where they
    were a frame earlier, the swap is undone. Crossing limbs (both near each other) stay as given.

    before: the (repaired) pose two frames back; then the exchanged limbs must also lie nearer to
    where they were then. When Pose sets its own one-frame slip right, the jump back looks like a
    swap against the slipped frame but not against the frame before it, and is kept.
    """
    lm, old = res.landmarks, prev.landmarks
    scale = body_scale(lm)
    xy, z, vis = lm.xy.copy(), lm.z.copy(), lm.vis.copy()
    changed = False
    for pairs in _LIMB_PAIRS:
        left = [a for a, _b in pairs]
        right = [b for _a, b in pairs]
        same, swap = _side_costs(xy, old.xy, left, right)
        undo = swap < 0.5 * same and same > 0.15 * scale * len(pairs)
        if undo and before is not None:
            same2, swap2 = _side_costs(xy, before.landmarks.xy, left, right)
            undo = swap2 < same2
        if undo:
            for arr in (xy, z, vis):
                arr[left + right] = arr[right + left]
            changed = True
    if not changed:
        return res
    return PoseResult(PoseLandmarks(xy=xy, z=z, vis=vis), res.person_prob)


def _side_costs(xy: np.ndarray, ref: np.ndarray, left: list[int], right: list[int]) -> tuple[float, float]:
    """Summed pixel distances of a limb pair's landmarks to `ref`'s: as labelled, and exchanged."""
    dist = lambda a, b: float(np.linalg.norm(xy[a] - ref[b], axis=1).sum())  # noqa: E731
    return dist(left, left) + dist(right, right), dist(left, right) + dist(right, left)


def _head_guess(pose: PoseResult) -> tuple[np.ndarray, float]:
    """Head centre (pixels) and radius from the face landmarks."""
    lm = pose.landmarks
    face = lm.xy[:11]
    wts = np.maximum(lm.vis[:11], 0.05)[:, None]
    centre = (face * wts).sum(0) / wts.sum()
    radius = max(0.7 * float(np.linalg.norm(lm.xy[7] - lm.xy[8])), 0.2 * body_scale(lm))
    return centre, radius


def _match_hands(detected: list[np.ndarray], poses: list[PoseResult]) -> list[tuple]:
    """Assign detected hands to pose wrists by distance (greedy, nearest first).

    Returns per person (left hand, right hand) landmarks or None. A hand farther than a third
    of the torso length from every free wrist is dropped.
    """
    out: list[list] = [[None, None] for _ in poses]
    pairs = []
    for hi, hand in enumerate(detected):
        for pi, pose in enumerate(poses):
            lm = pose.landmarks
            limit = 0.35 * body_scale(lm)
            for side, j in ((0, L_WR), (1, R_WR)):
                d = float(np.linalg.norm(hand[0] - lm.xy[j]))
                if d < limit:
                    pairs.append((d, hi, pi, side))
    used_h, used_w = set(), set()
    for _d, hi, pi, side in sorted(pairs):
        if hi in used_h or (pi, side) in used_w:
            continue
        used_h.add(hi)
        used_w.add((pi, side))
        out[pi][side] = detected[hi]
    return [tuple(o) for o in out]

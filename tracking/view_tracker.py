"""ViewTracker: one view's stream of frames -> temporally consistent PartParses.

Per frame it either calls the parser (keyframes, every `keyframe_interval` frames, and frames where
validation asks for a re-parse) or pulls the last parsed frame forward with dense optical flow.
On parsed frames, person ids become stable track ids (`PersonTracker`) and per-pixel part
probabilities are smoothed along the flow (`ProbSmoother`).

Bidirectional keyframe mode (`TrackingConfig.bidirectional`, the default): a frame between two
parsed frames waits until the next one is parsed, then gets the blend of both parses' probabilities,
each pulled to it along the (composed) flow and weighted by nearness in time. `push(frame)` therefore
returns the outputs that became ready (none, or several in frame order) and `flush()` the waiting ones
at the end of a stream; `step(frame)` is the one-in, one-out form for trackers that never wait.

Only the state the next frames need is kept (previous gray frame, the last parsed output, composed
flow maps, smoothed probabilities, tracks, at most `keyframe_interval - 1` waiting frames), so memory
does not grow with the clip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from openhuman.arrays import mask_box, nearest_source, to_float16, to_float32
from openhuman.ontology import NUM_CLASSES
from openhuman.types import Frame, PartParse
from tracking.config import TrackingConfig
from tracking.persons import PersonTracker, detections_from_parse
from tracking.propagate import (
    FlowEstimator,
    Motion,
    Roi,
    move_points,
    person_roi,
    remap_xy,
    snap_to_edges,
    static_motion,
    to_gray,
    warp_linear,
    warp_nearest,
)
from tracking.smoothing import ProbSmoother, argmax_max, one_hot
from tracking.validate import KeyState, check_propagation

log = logging.getLogger(__name__)
Windowed = tuple[np.ndarray, Roi]
"""A float32 [h, w, 2] map of frame positions over a window (identity outside it), and the window."""
Side = tuple[np.ndarray, tuple[int, int]]
"""A parsed frame's probabilities float32 [h, w, C] in the window around its people, and the
window's top-left (y0, x0)."""

CHECK_SCALE = 0.5
"""Resolution of the re-parse checks relative to the frame."""
REASONS = ("new_target", "lost_target", "drift", "area_change")
"""Re-parse trigger reasons counted in `TrackerStats.reparse`."""
SMOOTH_MARGIN = 4
"""Padding (pixels) of the window around the people that a parsed frame is smoothed in. Outside
the people's boxes the parse and the history are background, so the window needs no more: 20
synthetic sequences scored the same (mIoU and flip rate to 4 decimals) with 4 as with 32 (the
flow window's margin), and tracking took 8.9 instead of 10.8 ms a frame at k=1 (11.7 instead of
12.5 at k=4)."""


@dataclass
class TrackerStats:
    frames: int = 0
    """Frames stepped."""
    parsed: int = 0
    """Frames the parser ran on (keyframes + re-parses)."""
    propagated: int = 0
    """Frames produced by optical-flow propagation."""
    reparse: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    """Re-parse triggers by reason."""


@dataclass
class _Waiting:
    """A propagated frame waiting for the next parsed frame (bidirectional mode)."""

    frame: Frame
    forward: PartParse
    """Its output pulled forward from the last parsed frame."""
    to_key: Windowed | None
    """Where each pixel was in the last parsed frame (None = nowhere moved)."""
    to_next: Windowed | None = None
    """Where each pixel is in the following frame (None = nowhere moved; set when it arrives)."""


class ViewTracker:
    """Temporal association for one view: `.push(frame) -> [PartParse, ...]` with stable track ids.

    `parse_fn` must return new arrays on every call: the smoothed labels, scores and
    probabilities of a parsed frame are written into its parse's own (writable) arrays.
    """

    def __init__(self, parse_fn: Callable[[Frame], PartParse], cfg: TrackingConfig | None = None):
        self.cfg = cfg or TrackingConfig()
        self.cfg.check()
        self.parse_fn = parse_fn
        self.persons = PersonTracker(self.cfg)
        self.smoother = ProbSmoother(self.cfg.smoothing, self.cfg.ema_alpha, self.cfg.window)
        self.flow = FlowEstimator(
            self.cfg.flow,
            self.cfg.flow_scale,
            self.cfg.fb_threshold_px,
            self.cfg.flow_preset,
            self.cfg.flow_finest_scale,
            self.cfg.motion_threshold if self._residual_check else None,
        )
        self.stats = TrackerStats()
        self._needs_flow = self.cfg.keyframe_interval > 1 or self.cfg.smoothing != "none"
        self._waiting: list[_Waiting] = []
        self._clear()

    @property
    def _residual_check(self) -> bool:
        """Flow vectors are judged by their warped residual (`TrackingConfig.flow_check`)."""
        check = self.cfg.flow_check
        return check == "residual" or (check == "auto" and self.cfg.keyframe_interval == 1)

    @property
    def _margin(self) -> int:
        """Padding (pixels) of the windows around the people that smoothing and blending work in."""
        return self.cfg.flow_roi_margin or 32

    @property
    def delays(self) -> bool:
        """True when outputs of frames between parsed frames wait for the next parsed frame."""
        return self.cfg.bidirectional and self.cfg.keyframe_interval > 1

    def _clear(self) -> None:
        self._key: KeyState | None = None
        self._prev_gray: np.ndarray | None = None
        self._roi: Roi | None = None
        self._smooth_box: Roi | None = None
        self._acc_xy: np.ndarray | None = None
        """float32 [H, W, 2] where each pixel of the current frame was in the last parsed frame
        (None = nowhere moved since)."""
        self._acc_ok: np.ndarray | None = None
        """bool [H, W] that path was flow-consistent all along."""
        self._acc_box: Roi | None = None
        """Window where `_acc_xy` differs from the identity."""
        self._key_lp: np.ndarray | None = None
        """int16 [H, W, 2] the key's labels and track ids, stacked for one warp."""
        self._keypoints: np.ndarray | None = None
        self._since_key = 0
        self._side: Side | None = None
        """The last parsed frame's probabilities around its people (bidirectional mode)."""
        self._waiting = []

    def reset(self) -> None:
        """Forget all temporal state (new clip), waiting frames included (`flush` them first)."""
        self._clear()
        self.persons.reset()
        self.smoother.reset()
        self.stats = TrackerStats()

    def state_nbytes(self) -> int:
        """Bytes of array state held between frames (constant over a clip)."""
        arrays = [self._prev_gray, self._keypoints, self._acc_xy, self._acc_ok, self._key_lp]
        arrays += [self._side[0]] if self._side is not None else []
        for w in self._waiting:
            arrays += [w.frame.rgb, w.forward.labels, w.forward.scores, w.forward.person_ids]
            arrays += [m[0] for m in (w.to_key, w.to_next) if m is not None]
        total = sum(a.nbytes for a in arrays if a is not None)
        total += self._key.nbytes() if self._key is not None else 0
        return total + self.smoother.nbytes() + self.persons.nbytes()

    def step(self, frame: Frame) -> PartParse:
        """Parse or propagate one frame and return its PartParse at once (trackers that do not
        `delay`; a bidirectional keyframe tracker needs `push` and `flush`)."""
        if self.delays:
            raise RuntimeError("a bidirectional keyframe tracker returns frames late: use push() and flush()")
        (out,) = self.push(frame)
        return out

    def flush(self) -> list[PartParse]:
        """The outputs of the frames still waiting for a parsed frame (end of the stream): each gets
        the last parsed frame pulled forward."""
        waiting, self._waiting = self._waiting, []
        return [self._snap(w.forward, w.frame) for w in waiting]

    def push(self, frame: Frame) -> list[PartParse]:
        """Parse or propagate one frame. Returns the outputs (PartParse with stable person track ids)
        that are ready, in frame order: this frame's, or none while it waits for the next parsed
        frame, or the waiting frames' and this one's when it is parsed."""
        shape = (frame.height, frame.width)
        ready: list[PartParse] = []
        if self._key is not None and self._key.labels.shape != shape:
            log.info("frame size changed to %s: resetting temporal state", shape)
            ready = self.flush()
            self._clear()
            self.smoother.reset()
        gray = to_gray(frame.rgb) if self._needs_flow else None
        motion = None
        if gray is not None and self._prev_gray is not None:
            motion = self._motion(self._prev_gray, gray)
            self._accumulate(motion)
            if self._waiting:
                fwd_map = motion.forward_window()
                self._waiting[-1].to_next = None if fwd_map is None else (fwd_map, motion.roi)
        out, reason = None, None
        if self._key is not None and motion is not None and self._since_key + 1 < self.cfg.keyframe_interval:
            out = self._propagate(frame, motion)
            reason = check_propagation(self.cfg, self._key, out.person_ids, self._acc_ok, motion.residual)
            if reason is not None:
                log.debug("frame %d: re-parse (%s)", frame.index, reason)
                self.stats.reparse[reason] += 1
                out = None
            else:
                self.persons.coast(out.person_ids)
                self.stats.propagated += 1
                self._since_key += 1
        if out is None:
            before = self._side
            out = self._parse(frame)
            self.stats.parsed += 1
            # a person who appeared, vanished or changed size between the two parses must not be
            # blended into the frames before: those keep the last parse pulled forward
            ready += self._resolve(before) if reason in (None, "drift") else self.flush()
            ready.append(out)
        elif self.delays:
            acc = None
            if self._acc_xy is not None and self._acc_box is not None:
                y0, y1, x0, x1 = self._acc_box
                acc = (self._acc_xy[y0:y1, x0:x1].copy(), self._acc_box)
            self._waiting.append(_Waiting(frame, out, acc))
        else:
            ready.append(self._snap(out, frame))
        if gray is not None and self._key is not None:
            if self.cfg.keyframe_interval > 1:  # only propagated frames are validated against it
                self._key.prev_person_small = self._key.small(out.person_ids >= 0)
            margin = self.cfg.flow_roi_margin
            self._roi = person_roi(out.person_ids, margin) if margin is not None else None
        self._prev_gray = gray
        self.stats.frames += 1
        return ready

    def _motion(self, prev: np.ndarray, gray: np.ndarray) -> Motion:
        """Flow in the window around the people (static scene when there are none)."""
        if self.cfg.flow_roi_margin is not None and self._roi is None:
            return static_motion(prev, gray)
        # propagated frames move their keypoints along the forward flow (and bidirectional ones
        # pull the next parse back along it); at k=1 the backward flow is all smoothing needs
        return self.flow.estimate(prev, gray, self._roi, forward=self.cfg.keyframe_interval > 1)

    def _accumulate(self, motion: Motion) -> None:
        """Compose the step motion into the map current frame -> last parsed frame."""
        y0, y1, x0, x1 = motion.roi
        if y1 <= y0 or x1 <= x0:
            return
        if self._acc_xy is None or self._acc_ok is None:
            H, W = motion.residual.shape
            # from the flow estimator's cached grid: 0.2 ms at 640x480, against 2.6 ms for fresh grids
            self._acc_xy = np.dstack(self.flow.grid(H, W))
            self._acc_ok = np.ones((H, W), dtype=bool)
        xy = warp_linear(self._acc_xy, motion.map_xy)
        ok = warp_nearest(self._acc_ok, motion.map_xy, fill=False) & motion.reliable
        self._acc_xy[y0:y1, x0:x1] = xy
        self._acc_ok[y0:y1, x0:x1] = ok
        self._acc_box = _union(self._acc_box, motion.roi)

    def _warp_from_key(self, image: np.ndarray, nearest: bool, fill: float | tuple = 0) -> np.ndarray:
        """A key-frame image [H, W(, C)] pulled to the current frame (copied; only the moved window warped)."""
        out = image.copy()
        if self._acc_box is not None and self._acc_xy is not None:
            y0, y1, x0, x1 = self._acc_box
            m = self._acc_xy[y0:y1, x0:x1]
            out[y0:y1, x0:x1] = warp_nearest(image, m, fill) if nearest else warp_linear(image, m)
        return out

    def _propagate(self, frame: Frame, motion: Motion) -> PartParse:
        """Pull the last parsed frame forward to this frame with the composed flow map."""
        key = self._key
        assert key is not None and self._key_lp is not None
        lp = self._warp_from_key(self._key_lp, nearest=True, fill=(0, -1, 0, 0))
        labels, pids = np.ascontiguousarray(lp[..., 0]), np.ascontiguousarray(lp[..., 1])
        scores = self._warp_from_key(key.scores, nearest=False)
        probs = None
        if self.cfg.propagate_probs and key.probs is not None:
            probs = to_float16(self._warp_from_key(key.probs, nearest=False).transpose(2, 0, 1))
        if self._keypoints is not None:
            self._keypoints = self._keypoints.copy()
            self._keypoints[..., :2] = move_points(self._keypoints[..., :2], motion)
        return PartParse(frame.view_id, frame.index, labels, scores, pids, probs, self._keypoints, None)

    def _parse(self, frame: Frame) -> PartParse:
        """Run the parser, assign track ids, smooth probabilities; becomes the new key state."""
        parse = self.parse_fn(frame)
        shape = frame.rgb.shape[:2]
        if parse.labels.shape != shape or parse.person_ids.shape != shape:
            raise ValueError(f"parse_fn returned maps of shape {parse.labels.shape}, frame is {shape}")
        key = self._key
        aligned_prev = None if key is None else self._warp_from_key(key.person_ids, nearest=True, fill=-1)
        dets = detections_from_parse(frame.rgb, parse.person_ids)
        mapping = self.persons.update(dets, parse.person_ids, aligned_prev)
        track_map = _relabel(parse.person_ids, mapping)
        labels, scores, probs, key_probs = self._smooth(parse, track_map, aligned_prev)
        _adopt_orphans(labels, track_map)
        self._keypoints = _reindex_keypoints(parse.keypoints, mapping)
        self._key = KeyState(labels, track_map, scores, key_probs, CHECK_SCALE)
        self._key_lp = np.dstack([labels, track_map]).astype(np.int16) if self.cfg.keyframe_interval > 1 else None
        self._side = _side(labels, track_map, probs, self._margin) if self.delays else None
        self._acc_xy, self._acc_ok, self._acc_box = None, None, None
        self._since_key = 0
        return PartParse(
            parse.view_id, parse.frame_index, labels, scores, track_map, probs, self._keypoints, parse.fine_labels
        )

    def _resolve(self, before: Side | None) -> list[PartParse]:
        """Outputs of the waiting frames, now that the frame after them was parsed: the parses
        before (`before`) and after them, pulled to each along the flow, blended by nearness."""
        waiting, self._waiting = self._waiting, []
        if not waiting or self._key is None:
            return [self._snap(w.forward, w.frame) for w in waiting]
        n, after = len(waiting), self._side
        # the flow moves pixels only inside the windows around the people: compose there
        box = None
        for w in waiting:
            box = _union(box, w.to_next[1] if w.to_next is not None else None)
        to_after: Windowed | None = None  # where each pixel of the frame being resolved is in the parsed one
        outs = []
        for i in range(n - 1, -1, -1):
            w = waiting[i]
            if box is not None:
                step = self._in_window(w.to_next, box)
                if to_after is None:
                    to_after = (step, box)
                else:
                    origin = np.array([box[2], box[0]], dtype=np.float32)
                    to_after = (remap_xy(to_after[0], step - origin), box)
            outs.append(self._snap(self._blend(w, before, after, to_after, (n - i) / (n + 1)), w.frame))
        return outs[::-1]

    def _snap(self, out: PartParse, frame: Frame) -> PartParse:
        """A propagated output with its person mask aligned to the frame's own colour edges
        (`TrackingConfig.snap_radius`; see `snap_to_edges`)."""
        if self.cfg.snap_radius <= 0:
            return out
        labels, ids, scores, probs = snap_to_edges(
            out.labels, out.person_ids, out.scores, out.probs, frame.rgb, self.cfg.snap_radius, self.cfg.snap_eps
        )
        if labels is out.labels:
            return out
        return replace(out, labels=labels, person_ids=ids, scores=scores, probs=probs)

    def _in_window(self, m: Windowed | None, win: Roi) -> np.ndarray:
        """float32 [h, w, 2] map over `win` from a windowed map (identity where it does not reach)."""
        y0, y1, x0, x1 = win
        gx, gy = self.flow.grid(y1, x1)
        out = np.dstack([gx[y0:y1, x0:x1], gy[y0:y1, x0:x1]])
        if m is not None:
            arr, (a0, a1, b0, b1) = m
            oy0, oy1, ox0, ox1 = max(y0, a0), min(y1, a1), max(x0, b0), min(x1, b1)
            if oy1 > oy0 and ox1 > ox0:
                out[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0] = arr[oy0 - a0 : oy1 - a0, ox0 - b0 : ox1 - b0]
        return out

    def _blend(
        self, w: _Waiting, before: Side | None, after: Side | None, to_after: Windowed | None, weight: float
    ) -> PartParse:
        """`weight` x the parse before pulled forward + (1 - weight) x the parse after pulled back,
        in the window around the people (the forward output elsewhere). Where both pulled labels
        agree, that label and the forward score stand; only where they differ are the
        probabilities pulled and blended to decide (everywhere when the output carries them)."""
        fwd = w.forward
        win = _people_box(fwd.labels, fwd.person_ids, self._margin)
        for side in (before, after):
            if side is not None:
                (y0, x0), (h, wd) = side[1], side[0].shape[:2]
                win = _union(win, (y0, y0 + h, x0, x0 + wd))
        if win is None:
            return fwd
        y0, y1, x0, x1 = win
        sl = (slice(y0, y1), slice(x0, x1))
        to_b = self._in_window(w.to_key, win)
        to_a = self._in_window(to_after, win)
        labels, scores, ids = fwd.labels.copy(), fwd.scores.copy(), fwd.person_ids.copy()
        assert self._key_lp is not None
        lp_a = warp_nearest(self._key_lp, to_a, fill=(0, -1, 0, 0))  # the parse after: labels, track ids
        out_probs = None
        if fwd.probs is not None:  # probabilities wanted everywhere: blend the whole window
            probs = weight * _pull(before, to_b) + (1.0 - weight) * _pull(after, to_a)
            labels[sl], scores[sl] = argmax_max(np.ascontiguousarray(probs.transpose(2, 0, 1)))
            out_probs = fwd.probs.copy()
            to_float16(np.ascontiguousarray(probs.transpose(2, 0, 1)), out_probs[:, y0:y1, x0:x1])
        else:
            ys, xs = np.nonzero(labels[sl] != lp_a[..., 0])
            if len(ys):
                probs = weight * _pull(before, to_b[ys, xs][None]) + (1.0 - weight) * _pull(after, to_a[ys, xs][None])
                best, top = argmax_max(np.ascontiguousarray(probs.transpose(2, 0, 1)))
                labels[ys + y0, xs + x0], scores[ys + y0, xs + x0] = best[0], top[0]
        ids_a = lp_a[..., 1]
        near, far = (ids[sl], ids_a) if weight >= 0.5 else (ids_a, ids[sl])
        ids[sl] = np.where((near < 0) & (labels[sl] > 0), far, near)
        _adopt_orphans(labels, ids)
        return PartParse(fwd.view_id, fwd.frame_index, labels, scores, ids, out_probs, fwd.keypoints, None)

    def _smooth(
        self, parse: PartParse, track_map: np.ndarray, aligned_prev: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(labels int16, scores float32, probs float16 [C,H,W] | None, key probs float32 [H,W,C] | None).

        Smoothing runs in the window around this frame's people and parts and the last smoothed
        people and parts (each padded by `SMOOTH_MARGIN`); outside it the parse is returned unchanged.
        """
        want_key_probs = self.cfg.propagate_probs and self.cfg.keyframe_interval > 1
        labels, scores, probs = parse.labels, parse.scores, parse.probs
        win = _union(_people_box(labels, parse.person_ids, SMOOTH_MARGIN), self._smooth_box)
        if self.cfg.smoothing != "none" and win is not None:
            y0, y1, x0, x1 = win
            sl = (slice(y0, y1), slice(x0, x1))
            p = to_float32(probs[:, y0:y1, x0:x1]) if probs is not None else one_hot(labels[sl], 15)
            maps = self._acc_xy[sl] if self._acc_xy is not None else None
            keep = None
            if aligned_prev is not None:
                keep = aligned_prev[sl] == track_map[sl]
                if self._acc_ok is not None:
                    keep &= self._acc_ok[sl]
            # frames since the last parse: the history fades by (1 - ema_alpha) per frame of time
            s = self.smoother.step(p, (y0, x0), maps, keep, frames=self._since_key + 1)
            labels, scores = _writable(labels), _writable(scores)
            best, top = argmax_max(s)
            labels[sl] = best
            self._smooth_box = _people_box(labels, track_map, SMOOTH_MARGIN)
            scores[sl] = top
            if probs is not None:
                probs = _writable(probs)
                to_float16(s, probs[:, y0:y1, x0:x1])
        elif self.cfg.smoothing != "none":
            self.smoother.reset()
            self._smooth_box = None
        key_probs = None
        if want_key_probs and probs is not None:
            key_probs = np.ascontiguousarray(to_float32(probs).transpose(1, 2, 0))
        return labels, scores, probs, key_probs


def _writable(a: np.ndarray) -> np.ndarray:
    """The parser's array itself, to be written in place (a parser returns new arrays on every
    call, and the tracker's output replaces its parse), or a copy when it is read-only. The three
    full-frame copies this saves take 0.3 ms at 640x480 (no end-to-end change was measurable)."""
    return a if a.flags.writeable else a.copy()


def _union(a: Roi | None, b: Roi | None) -> Roi | None:
    """Smallest window holding both (either may be None)."""
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _relabel(local_map: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """int16 [H, W] track ids from a local person map via {local: track} (unmapped -> -1)."""
    ids = np.asarray(local_map)
    out = np.full(ids.shape, -1, dtype=np.int16)
    win = person_roi(ids, 0)
    if win is None:
        return out
    y0, y1, x0, x1 = win
    sub = ids[y0:y1, x0:x1].astype(np.intp)
    size = max(max(mapping, default=-1), int(sub.max())) + 2
    lut = np.full(size, -1, dtype=np.int16)
    for local, track in mapping.items():
        lut[local + 1] = track
    out[y0:y1, x0:x1] = lut[np.clip(sub + 1, 0, size - 1)]
    return out


def _reindex_keypoints(keypoints: np.ndarray | None, mapping: dict[int, int]) -> np.ndarray | None:
    """float32 [max track id + 1, 33, 3] keypoints indexed by track id (zeros for absent ids)."""
    if keypoints is None or not mapping:
        return None
    out = np.zeros((max(mapping.values()) + 1, *keypoints.shape[1:]), dtype=np.float32)
    for local, track in mapping.items():
        if local < len(keypoints):
            out[track] = keypoints[local]
    return out


def _people_box(labels: np.ndarray, ids: np.ndarray, margin: int) -> Roi | None:
    """Padded window around the part pixels and person pixels of a frame; None when there are none."""
    return mask_box((labels > 0) | (ids >= 0), margin)


def _side(labels: np.ndarray, track_map: np.ndarray, probs: np.ndarray | None, margin: int) -> Side | None:
    """A parsed frame's probabilities (float16 [C, H, W], or one-hot labels when None) in the
    padded window around its people and parts; None when it has none."""
    win = _people_box(labels, track_map, margin)
    if win is None:
        return None
    y0, y1, x0, x1 = win
    p = to_float32(probs[:, y0:y1, x0:x1]) if probs is not None else one_hot(labels[y0:y1, x0:x1], NUM_CLASSES)
    return np.ascontiguousarray(p.transpose(1, 2, 0)), (y0, x0)


def _pull(side: Side | None, map_xy: np.ndarray) -> np.ndarray:
    """float32 [h, w, C] probabilities of a parsed frame read at `map_xy` (frame pixels, [h, w, 2]);
    outside its window everything is background."""
    h, w = map_xy.shape[:2]
    if side is None:
        out = np.zeros((h, w, NUM_CLASSES), np.float32)
        out[..., 0] = 1.0
        return out
    probs, (y0, x0) = side
    m: np.ndarray = map_xy - np.array([x0, y0], dtype=np.float32)
    out = remap_xy(probs, m, fill=0.0).reshape(h, w, probs.shape[2])
    out[..., 0] += np.maximum(1.0 - out.sum(-1), 0.0)  # what came from outside the window is background
    return out


def _adopt_orphans(labels: np.ndarray, ids: np.ndarray) -> None:
    """Give part pixels without a person (smoothing or blending can move a label past the person
    map by a pixel or two) the id of the nearest person pixel, in place; none when there is nobody."""
    orphans = (labels > 0) & (ids < 0)
    if not orphans.any() or not (ids >= 0).any():
        return
    y0, y1, x0, x1 = mask_box(orphans | (ids >= 0))  # type: ignore[misc]
    win = ids[y0:y1, x0:x1]
    o = orphans[y0:y1, x0:x1]
    win[o] = win.reshape(-1)[nearest_source(win >= 0)[1][o]]

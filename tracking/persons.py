"""Person tracks across frames: detections from a person-id map, costs, gated optimal assignment.

Cost of pairing a track with a detection is the weighted mean of
- 1 - mask IoU between the track's motion-aligned previous mask and the detection
  (1 - box IoU of the constant-velocity predicted box for tracks not seen in the previous frame;
  dropped entirely for tracks lost for longer, whose IoU says nothing),
- the distance between the predicted and detected box centres relative to the box diagonal,
- the Hellinger distance between colour histograms (appearance; also the re-identification cue).
Life cycle: tentative -> confirmed after `min_hits` -> lost when unseen -> removed after `max_lost`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracking.config import TrackingConfig
from tracking.propagate import person_roi

log = logging.getLogger(__name__)

HIST_BITS = 2
"""Bits kept per RGB channel in the appearance histogram (4 x 4 x 4 = 64 bins)."""
_BINS = 1 << (3 * HIST_BITS)
_INF = 1e6


@dataclass
class Detection:
    """One person in one frame."""

    local_id: int
    """Id in the frame's own person map."""
    box: np.ndarray
    """float64 [4] x0, y0, x1, y1 (x1, y1 exclusive)."""
    area: int
    """Pixels of the person."""
    hist: np.ndarray
    """float64 [64] normalised RGB colour histogram of the person's pixels."""

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    """float64 [4] last observed box."""
    hist: np.ndarray
    """float64 [64] appearance (running average)."""
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    """float64 [2] box-centre motion in pixels per frame."""
    hits: int = 1
    since_seen: int = 0
    """Frames since the last observation (0 = seen in the current frame)."""
    confirmed: bool = False

    @property
    def state(self) -> str:
        """ "tentative", "confirmed" or "lost"."""
        if self.since_seen > 0:
            return "lost" if self.confirmed else "tentative"
        return "confirmed" if self.confirmed else "tentative"

    def predicted_box(self, frames_ahead: int) -> np.ndarray:
        """float64 [4] box moved by constant velocity (at most 10 frames ahead)."""
        shift = self.velocity * min(frames_ahead, 10)
        return self.box + np.concatenate([shift, shift])


def boxes_from_map(person_ids: np.ndarray) -> dict[int, tuple[np.ndarray, int]]:
    """{id: (box float64[4], area)} for every id >= 0 in an int [H, W] person map."""
    from scipy import ndimage

    ids = np.asarray(person_ids)
    roi = person_roi(ids, 0)
    if roi is None:
        return {}
    r0, r1, c0, c1 = roi
    win = ids[r0:r1, c0:c1].astype(np.int64) + 1  # work in the people's window
    areas = np.bincount(win.ravel())[1:]
    out: dict[int, tuple[np.ndarray, int]] = {}
    for i, sl in enumerate(ndimage.find_objects(win)):
        if sl is None or areas[i] == 0:
            continue
        box = np.array([sl[1].start + c0, sl[0].start + r0, sl[1].stop + c0, sl[0].stop + r0], dtype=np.float64)
        out[i] = (box, int(areas[i]))
    return out


def colour_histograms(
    rgb: np.ndarray, person_ids: np.ndarray, count: int, window: tuple[slice, slice] | None = None
) -> np.ndarray:
    """float64 [count, 64] normalised colour histogram per person id 0..count-1 (only pixels
    inside `window` of the frame are looked at, when given: the people's bounding window)."""
    sl = window or (slice(None), slice(None))
    ids = np.asarray(person_ids)[sl]
    keep = (ids >= 0) & (ids < count)
    q = np.asarray(rgb)[sl][keep] >> (8 - HIST_BITS)  # uint8 [N, 3]
    code = (q[:, 0].astype(np.int64) << (2 * HIST_BITS)) | (q[:, 1].astype(np.int64) << HIST_BITS) | q[:, 2]
    hist = np.bincount(ids[keep].astype(np.int64) * _BINS + code, minlength=count * _BINS).reshape(count, _BINS)
    return hist / np.maximum(hist.sum(1, keepdims=True), 1)


def detections_from_parse(rgb: np.ndarray, person_ids: np.ndarray) -> list[Detection]:
    """Detections for each person in `person_ids` (int [H, W], -1 = none) of uint8 RGB [H, W, 3]."""
    boxes = boxes_from_map(person_ids)
    if not boxes:
        return []
    all_boxes = np.stack([b for b, _ in boxes.values()]).astype(np.int64)
    lo, hi = all_boxes[:, :2].min(0), all_boxes[:, 2:].max(0)
    window = (slice(int(lo[1]), int(hi[1])), slice(int(lo[0]), int(hi[0])))
    hists = colour_histograms(rgb, person_ids, max(boxes) + 1, window)
    return [Detection(i, box, area, hists[i]) for i, (box, area) in boxes.items()]


def hellinger(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [A, B] Hellinger distance in [0, 1] between rows of a [A, K] and b [B, K]."""
    bc = np.sqrt(a) @ np.sqrt(b).T
    return np.sqrt(np.clip(1.0 - bc, 0.0, 1.0))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [A, B] IoU of boxes a [A, 4], b [B, 4] (x0, y0, x1, y1)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def mask_iou(prev_track_map: np.ndarray, track_ids: list[int], local_map: np.ndarray, count: int) -> np.ndarray:
    """float64 [T, count] IoU between tracks' (aligned) previous masks and current local ids.

    prev_track_map: int [H, W] track ids (-1 none); local_map: int [H, W] local ids (-1 none).
    Both are subsampled 2x for speed.
    """
    t_map = np.asarray(prev_track_map)[::2, ::2].astype(np.int64).ravel()
    l_map = np.asarray(local_map)[::2, ::2].astype(np.int64).ravel()
    lut = np.full(max(max(track_ids, default=0), int(t_map.max(initial=0))) + 2, len(track_ids), dtype=np.int64)
    lut[np.asarray(track_ids, dtype=np.int64) + 1] = np.arange(len(track_ids))
    t_idx = lut[t_map + 1]
    l_idx = np.where((l_map >= 0) & (l_map < count), l_map, count)
    T = len(track_ids)
    joint = np.bincount(t_idx * (count + 1) + l_idx, minlength=(T + 1) * (count + 1)).reshape(T + 1, count + 1)
    inter = joint[:T, :count].astype(np.float64)
    union = joint[:T, :].sum(1)[:, None] + joint[:, :count].sum(0)[None, :] - inter
    return inter / np.maximum(union, 1)


class PersonTracker:
    """Stable person ids over a stream of per-frame person maps."""

    def __init__(self, cfg: TrackingConfig | None = None):
        self.cfg = cfg or TrackingConfig()
        if self.cfg.min_hits < 1 or self.cfg.max_lost < 0:
            raise ValueError("TrackingConfig.min_hits must be >= 1 and max_lost >= 0")
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forget all tracks (ids restart at 0)."""
        self.tracks = []
        self._next_id = 0

    def _cost(self, dets: list[Detection], prev_map: np.ndarray | None, local_map: np.ndarray) -> np.ndarray:
        """float64 [T, D] gated association cost (>= _INF = forbidden)."""
        cfg = self.cfg
        T, D = len(self.tracks), len(dets)
        ids = [t.track_id for t in self.tracks]
        count = max(d.local_id for d in dets) + 1
        cols = [d.local_id for d in dets]
        m_iou = mask_iou(prev_map, ids, local_map, count)[:, cols] if prev_map is not None else np.zeros((T, D))
        gaps = np.array([t.since_seen + 1 for t in self.tracks])
        pred = np.stack([t.predicted_box(int(g)) for t, g in zip(self.tracks, gaps, strict=True)])
        det_boxes = np.stack([d.box for d in dets])
        b_iou = box_iou(pred, det_boxes)
        iou = np.where((gaps == 1)[:, None] & (prev_map is not None), m_iou, b_iou)
        pc = (pred[:, :2] + pred[:, 2:]) / 2
        dc = (det_boxes[:, :2] + det_boxes[:, 2:]) / 2
        diag = np.linalg.norm(pred[:, 2:] - pred[:, :2], axis=1)[:, None]
        dist = np.minimum(np.linalg.norm(pc[:, None] - dc[None], axis=-1) / np.maximum(diag, 1.0), 1.0)
        app = hellinger(np.stack([t.hist for t in self.tracks]), np.stack([d.hist for d in dets]))
        recent = (gaps <= 2)[:, None]
        w_iou = np.where(recent, cfg.weight_iou, 0.0)
        total = w_iou * (1 - iou) + cfg.weight_distance * dist + cfg.weight_appearance * app
        cost = total / np.maximum(w_iou + cfg.weight_distance + cfg.weight_appearance, 1e-9)
        gated = (cost > cfg.max_cost) | (app > cfg.max_appearance_distance)
        return np.where(gated, _INF, cost)

    def _observe(self, track: Track, box: np.ndarray, hist: np.ndarray | None) -> None:
        gap = track.since_seen + 1
        old_c = (track.box[:2] + track.box[2:]) / 2
        new_c = (box[:2] + box[2:]) / 2
        track.velocity = 0.5 * track.velocity + 0.5 * (new_c - old_c) / gap
        track.box = box
        if hist is not None:
            m = self.cfg.appearance_momentum
            track.hist = m * track.hist + (1 - m) * hist
            track.hits += 1
            track.confirmed = track.confirmed or track.hits >= self.cfg.min_hits
        track.since_seen = 0

    def _age(self, seen: set[int]) -> None:
        """Advance unseen tracks; drop unseen tentative ones and those lost beyond the patience."""
        keep = []
        for t in self.tracks:
            if t.track_id not in seen:
                t.since_seen += 1
                if not t.confirmed or t.since_seen > self.cfg.max_lost:
                    log.debug("removing track %d (%s)", t.track_id, t.state)
                    continue
            keep.append(t)
        self.tracks = keep

    def update(
        self, detections: list[Detection], local_map: np.ndarray, prev_track_map: np.ndarray | None = None
    ) -> dict[int, int]:
        """Associate this frame's detections; returns {local id: track id} for every detection.

        local_map: int [H, W] the frame's person ids; prev_track_map: int [H, W] the previous output
        track ids, ideally warped to the current frame by optical flow (None = no mask IoU term).
        """
        mapping: dict[int, int] = {}
        matched_tracks: set[int] = set()
        if self.tracks and detections:
            cost = self._cost(detections, prev_track_map, local_map)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] >= _INF:
                    continue
                track, det = self.tracks[r], detections[c]
                self._observe(track, det.box, det.hist)
                mapping[det.local_id] = track.track_id
                matched_tracks.add(track.track_id)
        self._age(matched_tracks)
        for det in detections:
            if det.local_id not in mapping:
                track = Track(self._next_id, det.box.copy(), det.hist.copy())
                track.confirmed = self.cfg.min_hits <= 1
                self._next_id += 1
                self.tracks.append(track)
                mapping[det.local_id] = track.track_id
        return mapping

    def coast(self, track_map: np.ndarray) -> None:
        """Propagated frame: refresh boxes of the tracks present in `track_map` (int [H, W] track ids,
        e.g. warped by optical flow) without touching appearance or hit counts; age the others."""
        boxes = boxes_from_map(track_map)
        by_id = {t.track_id: t for t in self.tracks}
        for tid, (box, _) in boxes.items():
            if tid in by_id:
                self._observe(by_id[tid], box, None)
        self._age(set(boxes) & set(by_id))

    def nbytes(self) -> int:
        """Bytes held by the track list (for memory checks)."""
        return sum(t.box.nbytes + t.hist.nbytes + t.velocity.nbytes for t in self.tracks)

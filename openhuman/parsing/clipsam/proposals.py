"""SAM mask proposals for body parts, prompted from pose landmarks.

For every body14 part whose landmarks are visible, SAM gets positive points along the part's
skeleton (e.g. the left forearm: points at 1/4, 1/2, 3/4 of the left elbow -> wrist segment), a
box around those landmarks padded by the part's width prior, and negative points at the centres
of the neighbouring parts. Regions of the person mask that no part proposal covers go to
`SamAutomaticMaskGenerator` (its point grid restricted to those regions,
reusing the image embedding already computed). All proposals are
clipped to the person mask.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from openhuman._compat import ensure_torchvision
from openhuman.parsing.clipsam.config import ClipSamConfig
from openhuman.parsing.clipsam.pose import PoseResult

log = logging.getLogger(__name__)

# Landmark ids per body14 part (1..14); limbs are (proximal, distal) segments.
PART_LANDMARKS: dict[int, tuple[int, ...]] = {
    1: (0, 2, 5, 7, 8, 9, 10),
    2: (11, 12, 24, 23),
    3: (11, 13), 4: (12, 14), 5: (13, 15), 6: (14, 16),
    7: (15, 17, 19, 21), 8: (16, 18, 20, 22),
    9: (23, 25), 10: (24, 26), 11: (25, 27), 12: (26, 28),
    13: (27, 29, 31), 14: (28, 30, 32),
}  # fmt: skip
SEGMENT_PARTS = (3, 4, 5, 6, 9, 10, 11, 12)
NEIGHBOURS: dict[int, tuple[int, ...]] = {
    1: (2,), 2: (1, 3, 4, 9, 10),
    3: (2, 5), 4: (2, 6), 5: (3, 7), 6: (4, 8), 7: (5,), 8: (6,),
    9: (2, 11, 10), 10: (2, 12, 9), 11: (9, 13), 12: (10, 14), 13: (11,), 14: (12,),
}  # fmt: skip
WIDTH = np.array([0.0, 0.35, 0.3, 0.15, 0.15, 0.13, 0.13, 0.12, 0.12, 0.2, 0.2, 0.15, 0.15, 0.1, 0.1])
"""Box padding per body14 id, as a fraction of the torso length."""


@dataclass(frozen=True)
class Proposal:
    mask: np.ndarray
    """bool [H, W], inside the person mask."""
    part_id: int
    """body14 id the prompt was built for; 0 = automatic proposal without a landmark prior."""
    score: float
    """SAM's predicted IoU of the mask."""


@dataclass(frozen=True)
class PartPrompt:
    part_id: int
    points: np.ndarray
    """float32 [P, 2] (x, y) pixels."""
    labels: np.ndarray
    """int32 [P]: 1 positive, 0 negative."""
    box: np.ndarray
    """float32 [4] x0, y0, x1, y1 pixels."""


def torso_length(lms: np.ndarray) -> float:
    """Mid-shoulder to mid-hip distance in pixels (at least 10). lms: float [33, 3]."""
    sh = lms[[11, 12], :2].mean(0)
    hip = lms[[23, 24], :2].mean(0)
    return max(float(np.linalg.norm(sh - hip)), 10.0)


def _positives(part: int, pts: np.ndarray) -> np.ndarray:
    """Positive points [P, 2] for a part from its landmark coordinates pts [K, 2]."""
    if part in SEGMENT_PARTS:
        a, b = pts[0], pts[1]
        return np.stack([a + t * (b - a) for t in (0.25, 0.5, 0.75)])
    if part == 2:  # torso: centre and the middle of the shoulder line / hip line, pulled inward
        c = pts.mean(0)
        return np.stack([c, c + 0.5 * (pts[:2].mean(0) - c), c + 0.5 * (pts[2:].mean(0) - c)])
    if part == 1:  # head: nose and eye midpoint
        return np.stack([pts[0], pts[1:3].mean(0)])
    return pts.mean(0, keepdims=True)  # hands, feet: centre of their landmarks


def part_centre(part: int, lms: np.ndarray, min_vis: float) -> np.ndarray | None:
    """float [2] centre of a part if all its landmarks are visible, else None."""
    ids = list(PART_LANDMARKS[part])
    if lms[ids, 2].min() < min_vis:
        return None
    return _positives(part, lms[ids, :2]).mean(0)


def build_prompts(lms: np.ndarray, image_hw: tuple[int, int], min_vis: float = 0.5) -> list[PartPrompt]:
    """SAM prompts for every part whose landmarks are all visible. lms: float [33, 3] (x, y, vis)."""
    H, W = image_hw
    scale = torso_length(lms)
    prompts = []
    for part, ids in PART_LANDMARKS.items():
        vis = lms[list(ids), 2]
        if vis.min() < min_vis:
            continue
        pts = lms[list(ids), :2]
        pos = _positives(part, pts)
        neg = [c for n in NEIGHBOURS[part] if (c := part_centre(n, lms, min_vis)) is not None]
        points = np.concatenate([pos, np.asarray(neg).reshape(-1, 2)]).astype(np.float32)
        labels = np.array([1] * len(pos) + [0] * len(neg), dtype=np.int32)
        pad = WIDTH[part] * scale
        lo = pts.min(0) - pad
        hi = pts.max(0) + pad
        if part == 1:  # the crown lies well above the eyes
            lo[1] -= 0.5 * scale
        box = np.array([max(lo[0], 0), max(lo[1], 0), min(hi[0], W - 1), min(hi[1], H - 1)], dtype=np.float32)
        points[:, 0] = points[:, 0].clip(0, W - 1)
        points[:, 1] = points[:, 1].clip(0, H - 1)
        prompts.append(PartPrompt(part, points, labels, box))
    return prompts


def prompt_proposals(predictor: object, prompts: list[PartPrompt], person: np.ndarray) -> list[Proposal]:
    """One SAM mask per prompt (the best of SAM's three by predicted IoU), clipped to person bool [H, W].

    `predictor` is a segment_anything SamPredictor with the image already set.
    """
    out = []
    for pr in prompts:
        masks, scores, _ = predictor.predict(  # type: ignore[attr-defined]
            point_coords=pr.points, point_labels=pr.labels, box=pr.box, multimask_output=True
        )
        best = int(np.argmax(scores))
        mask = masks[best].astype(bool) & person
        if mask.any():
            out.append(Proposal(mask, pr.part_id, float(scores[best])))
    return out


def uncovered_grid(uncovered: np.ndarray, points_per_side: int) -> np.ndarray:
    """Normalised (x, y) points float [P, 2] of a points_per_side^2 grid lying in uncovered bool [H, W]."""
    H, W = uncovered.shape
    offset = 1.0 / (2 * points_per_side)
    ticks = np.linspace(offset, 1 - offset, points_per_side)
    grid = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
    cols = np.minimum((grid[:, 0] * W).astype(int), W - 1)
    rows = np.minimum((grid[:, 1] * H).astype(int), H - 1)
    return grid[uncovered[rows, cols]]


def auto_proposals(
    predictor: object, rgb: np.ndarray, person: np.ndarray, covered: np.ndarray, cfg: ClipSamConfig
) -> list[Proposal]:
    """SamAutomaticMaskGenerator masks for the uncovered part of the person (no part prior).

    The generator's point grid is restricted to uncovered person pixels; masks whose area inside
    the person lies mostly (>= half) in the uncovered region are kept, clipped to that region.
    rgb uint8 [H, W, 3]; person, covered bool [H, W].
    """
    ensure_torchvision()
    from segment_anything import SamAutomaticMaskGenerator

    uncovered = person & ~covered
    points = uncovered_grid(uncovered, cfg.auto_points_per_side)
    if len(points) == 0:
        return []
    generator = SamAutomaticMaskGenerator(
        predictor.model,  # type: ignore[attr-defined]
        points_per_side=None,
        point_grids=[points],
        pred_iou_thresh=cfg.auto_pred_iou_thresh,
        stability_score_thresh=cfg.auto_stability_thresh,
    )
    generator.predictor = predictor  # reuse the embedding (CachedPredictor skips a repeated set_image)
    out = []
    for rec in generator.generate(rgb):
        seg = np.asarray(rec["segmentation"], dtype=bool) & person
        inside = seg & uncovered
        if seg.any() and inside.sum() * 2 >= seg.sum():
            out.append(Proposal(inside, 0, float(rec["predicted_iou"])))
    return out


def make_predictor(sam: object, autocast: Callable[[], Any] = nullcontext) -> object:
    """A SamPredictor whose set_image is a no-op when called again with the same image. The
    image encoder runs under `autocast()` (see `backbones.compute_autocast`); its embedding is
    kept in float32 for the mask decoder."""
    ensure_torchvision()
    from segment_anything import SamPredictor

    class CachedPredictor(SamPredictor):
        _last: np.ndarray | None = None

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            if self.is_image_set and self._last is not None and np.array_equal(self._last, image):
                return
            with autocast():
                super().set_image(image, image_format)
            self.features = self.features.float()  # type: ignore[has-type]
            self._last = np.array(image, copy=True)

    return CachedPredictor(sam)  # type: ignore[arg-type]


def propose(predictor: object, rgb: np.ndarray, pose: PoseResult, cfg: ClipSamConfig) -> list[Proposal]:
    """Part proposals from the landmarks, plus automatic ones for uncovered person regions."""
    person = pose.person_prob > cfg.person_threshold
    if not person.any():
        return []
    predictor.set_image(rgb)  # type: ignore[attr-defined]
    prompts = build_prompts(pose.landmarks, (rgb.shape[0], rgb.shape[1]), cfg.min_visibility)
    props = prompt_proposals(predictor, prompts, person)
    covered = np.zeros_like(person)
    for p in props:
        covered |= p.mask
    uncovered = float((person & ~covered).sum()) / float(person.sum())
    if cfg.auto_masks and uncovered > cfg.auto_min_uncovered:
        props += auto_proposals(predictor, rgb, person, covered, cfg)
    log.debug(
        "%d part proposals, %.0f%% of the person uncovered before the automatic masks", len(props), 100 * uncovered
    )
    return props

"""Temporal association configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrackingConfig:
    keyframe_interval: int = 1
    """Run the parser every k-th frame and propagate with optical flow in between (1 = every frame)."""
    bidirectional: bool = True
    """Keyframe mode: a frame between two parsed frames gets the blend of both parses, each pulled
    to it along the flow and weighted by its nearness in time (the nearer parse counts more).
    Outputs of in-between frames then wait for the next parsed frame (at most
    `keyframe_interval - 1` frames a view, held in memory). False: only the last parsed frame is
    pulled forward, and every frame's output is ready at once."""
    flow: Literal["dis", "farneback"] = "dis"
    """Dense optical flow used for propagation."""
    smoothing: Literal["none", "ema", "window"] = "ema"
    """Temporal smoothing of per-pixel part probabilities, aligned by motion."""
    ema_alpha: float = 0.25
    """Weight of the current frame in exponential smoothing (below 0.5 so that a single-frame
    one-hot flip cannot win against a stable history), per frame of time: a parsed frame k frames
    after the last one weighs 1 - (1 - ema_alpha) ** k (0.68 at k=4). 0.25 replaced 0.4 once k=1
    checked its flow by residual: 20 cached sequences mIoU 0.6041 -> 0.6087, flips -7 %; the
    pipeline on 5 clips 2D / 3D mIoU +0.005 / +0.005, 3D flips -7 %; k=4 in video mode 0.6038 ->
    0.6004 (flat 0.25 at k=4: 0.5966)."""
    window: int = 3
    """Frames averaged by `smoothing="window"` (each warped to the current frame)."""
    max_lost: int = 10
    """Patience: frames a person track may be unseen before it is removed."""
    min_hits: int = 2
    """Detections before a tentative track is confirmed."""

    # --- optical flow -------------------------------------------------------------------------
    flow_scale: float = 1.0
    """Optical flow is computed on gray frames resized by this factor (speed), then upsampled."""
    flow_preset: Literal["ultrafast", "fast", "medium"] = "ultrafast"
    """DIS optical flow preset (quality vs speed)."""
    flow_finest_scale: int | None = 1
    """DIS finest pyramid level (0 = full resolution, 1 = half, ...); None = the preset's own.
    On the synthetic captures ultrafast at level 1 matches medium's accuracy at half its cost."""
    flow_roi_margin: int | None = 32
    """Compute the flow only in the box around the people of the previous frame, padded by this
    many pixels, and take the rest of the scene as static (fast, for fixed cameras); None = the
    whole frame (moving cameras)."""
    snap_radius: int = 8
    """Propagated frames: align the person mask pulled from the parsed frames with this frame's own
    colour edges (guided filter of this radius in pixels; 0 = off). Pixels that join the person
    take the nearest part's label and track id."""
    snap_eps: float = 1e-3
    """Guided-filter regularisation for `snap_radius`, in (intensity / 255)^2 units."""
    propagate_probs: bool = False
    """Also warp the full probability maps onto propagated (non-key) frames. Off (cheaper):
    propagated frames carry warped labels, scores and person ids, and `probs=None`."""
    flow_check: Literal["auto", "residual", "forward_backward"] = "auto"
    """Which flow vectors are reliable: smoothing keeps its history and propagation counts no
    drift only along those. "residual": the previous frame warped along the flow matches this one
    within `motion_threshold` gray levels (at k=1 one flow a frame: nothing is propagated).
    "forward_backward": the forward flow brings the pixel back within `fb_threshold_px`; the
    round trip also fails on textureless surfaces where the flow is ambiguous but the warp fits,
    so it re-parses more often. "auto": residual at k=1 (against the round trip: mIoU +0.003,
    flips -3 %, one flow instead of two; 20 synthetic sequences, cached parses), the round trip at
    k > 1. Residual at k=4 (`tools/bench_tracking.py`, 8 sequences): 134 parses of 480 instead of
    159, mIoU 0.596 instead of 0.600 (k=1: 0.612); replaying 20 sequences' cached parses, 213
    parses of 800 instead of 315, 0.6261 instead of 0.6345 (k=1: 0.6446)."""
    fb_threshold_px: float = 1.5
    """`flow_check="forward_backward"`: a pixel's flow is unreliable when the round trip misses by
    more than this many full-resolution pixels (plus 5% of the flow magnitude)."""

    # --- keyframe validation (re-parse triggers) -----------------------------------------------
    drift_max_inconsistent: float = 0.2
    """Re-parse ("drift") when more than this share of the propagated person pixels came along an
    unreliable flow vector (`flow_check`) since the last parsed frame."""
    max_area_change: float = 0.35
    """Re-parse ("area_change") when a propagated person mask's area differs from its area at the
    last parsed frame by more than this fraction."""
    lost_area_fraction: float = 0.2
    """Re-parse ("lost_target") when a propagated person keeps less than this fraction of its
    area at the last parsed frame (it left the image or got occluded)."""
    max_unexplained: float = 0.3
    """Re-parse ("lost_target") when more than this share of the propagated person pixels changed
    in a way the flow does not explain (flow-warped residual above `motion_threshold`): the
    person vanished or got occluded."""
    motion_threshold: float = 25.0
    """Gray-level difference (0..255) between consecutive frames that counts as motion (and, with
    `flow_check="residual"`, the largest flow-warped residual of a reliable flow vector)."""
    new_target_fraction: float = 0.003
    """Re-parse ("new_target") when moving pixels outside the (dilated) propagated person masks
    exceed this share of the image."""

    # --- person association --------------------------------------------------------------------
    weight_iou: float = 1.0
    """Cost weight of (1 - mask IoU) between the motion-predicted track and a detection."""
    weight_distance: float = 1.0
    """Cost weight of the predicted box-centre distance (relative to the box diagonal)."""
    weight_appearance: float = 1.0
    """Cost weight of the colour-histogram (Hellinger) distance."""
    max_cost: float = 0.7
    """Gating: pairs whose weighted mean cost exceeds this are never matched."""
    max_appearance_distance: float = 0.6
    """Gating: pairs whose colour-histogram distance exceeds this are never matched."""
    appearance_momentum: float = 0.8
    """A track's colour histogram is updated as momentum * old + (1 - momentum) * new."""

    def check(self) -> None:
        """Raise InputError naming the first setting outside its range (`ViewTracker` and
        `Pipeline.run` call it before any work)."""
        from openhuman.errors import check_settings

        rules = [  # (key, ok, what it must be)
            ("keyframe_interval", self.keyframe_interval >= 1, ">= 1 (1 parses every frame)"),
            ("ema_alpha", 0 < self.ema_alpha <= 1, "in (0, 1]"),
            ("window", self.window >= 2, ">= 2 frames"),
            ("max_lost", self.max_lost >= 0, ">= 0"),
            ("min_hits", self.min_hits >= 1, ">= 1"),
            ("flow_scale", 0.05 <= self.flow_scale <= 1, "in [0.05, 1]"),
            ("flow_finest_scale", self.flow_finest_scale is None or self.flow_finest_scale >= 0, ">= 0 or null"),
            ("flow_roi_margin", self.flow_roi_margin is None or self.flow_roi_margin >= 0, ">= 0 or null"),
            ("snap_radius", self.snap_radius >= 0, ">= 0 (0 = off)"),
            ("snap_eps", self.snap_eps > 0, "> 0"),
            ("flow_check", self.flow_check in ("auto", "residual", "forward_backward"),
             "'auto', 'residual' or 'forward_backward'"),
            ("fb_threshold_px", self.fb_threshold_px > 0, "> 0"),
            ("drift_max_inconsistent", 0 <= self.drift_max_inconsistent <= 1, "in [0, 1] (1 = off)"),
            ("max_area_change", self.max_area_change >= 0, ">= 0"),
            ("lost_area_fraction", 0 <= self.lost_area_fraction <= 1, "in [0, 1]"),
            ("max_unexplained", 0 <= self.max_unexplained <= 1, "in [0, 1]"),
            ("motion_threshold", self.motion_threshold > 0, "> 0"),
            ("new_target_fraction", 0 <= self.new_target_fraction <= 1, "in [0, 1]"),
            ("weight_iou", self.weight_iou >= 0, ">= 0"),
            ("weight_distance", self.weight_distance >= 0, ">= 0"),
            ("weight_appearance", self.weight_appearance >= 0, ">= 0"),
            ("max_cost", self.max_cost > 0, "> 0"),
            ("max_appearance_distance", self.max_appearance_distance > 0, "> 0"),
            ("appearance_momentum", 0 <= self.appearance_momentum <= 1, "in [0, 1]"),
        ]  # fmt: skip
        check_settings("tracking", self, rules)

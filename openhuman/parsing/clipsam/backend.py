"""`ClipSamParser`: training-free part parsing from SAM proposals classified by dense CLIP.

Per frame: mediapipe Pose gives the person mask and 33 landmarks -> SAM proposals prompted per
part (+ automatic masks for uncovered person regions) -> dense CLIP features (recalibrated last
block, sliding windows) pooled in each proposal -> cosine with prompt-ensemble text embeddings ->
combined with the landmark prior -> per-pixel body14 probabilities. Models and text embeddings
are built once in `from_config`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from openhuman.ontology import NUM_CLASSES
from openhuman.parsing.backbones import compute_autocast, torch_device, use_cpu_bf16
from openhuman.parsing.base import Parser
from openhuman.parsing.clipsam import classify
from openhuman.parsing.clipsam.config import ClipSamConfig
from openhuman.parsing.clipsam.dense_clip import dense_features, prepare_image
from openhuman.parsing.clipsam.models import build_clip, build_sam
from openhuman.parsing.clipsam.pose import MediapipePose, PoseFn, PoseResult
from openhuman.parsing.clipsam.prompts import TextBank, build_text_bank, load_prompts
from openhuman.parsing.clipsam.proposals import Proposal, make_predictor, propose
from openhuman.parsing.config import ParserConfig
from openhuman.types import Frame, PartParse

log = logging.getLogger(__name__)


class ClipSamParser(Parser):
    """SAM proposals + dense CLIP classification; C = 15 body14 channels. With `cpu_bf16` on a
    CPU that has bfloat16, CLIP's image tower (`clip.visual`) is cast to bfloat16 in place."""

    num_classes = NUM_CLASSES

    def __init__(
        self, sam: Any, clip: Any, tokenizer: Any, cfg: ClipSamConfig, pose_fn: PoseFn, cpu_bf16: bool = False
    ) -> None:
        self.cfg = cfg
        self.sam = sam
        self.clip = clip
        self.cpu_bf16 = cpu_bf16
        self.predictor = make_predictor(sam, self._autocast)
        if use_cpu_bf16(next(clip.parameters()).device, cpu_bf16, "parser.cpu_bf16"):
            # CLIP's image tower runs on bfloat16 weights rather than under autocast, which would
            # turn off the fused attention path (dense features of a 320x240 frame: 0.75 s
            # instead of 2.8 s in float32 and 8.5 s under autocast; ViT-B-16, 2 cores)
            clip.visual.to(torch.bfloat16)
        self.pose_fn = pose_fn
        self.text: TextBank = build_text_bank(clip, tokenizer, load_prompts(cfg.prompts_file))
        self.stage_seconds: dict[str, float] = {"pose": 0.0, "sam": 0.0, "clip": 0.0}
        """Wall-clock seconds spent per stage over all calls (pose, SAM proposals, CLIP + classify)."""

    @classmethod
    def from_config(cls, cfg: ParserConfig, pose_fn: PoseFn | None = None) -> ClipSamParser:
        """Load SAM and CLIP from `cfg.clipsam`'s checkpoints and embed the prompts.

        `pose_fn` replaces mediapipe Pose (any `rgb -> PoseResult | None`).
        """
        c = cfg.clipsam
        c.validate()
        torch_device(cfg.device, "parser.device")
        sam = build_sam(c, cfg.device)
        clip, tokenizer = build_clip(c, cfg.device)
        if pose_fn is None:
            pose_fn = MediapipePose(static_image_mode=c.static_image_mode)
        return cls(sam, clip, tokenizer, c, pose_fn, cfg.cpu_bf16)

    def _autocast(self) -> Any:
        """bfloat16 autocast for SAM's image encoder on a CPU that has it (`parser.cpu_bf16`);
        float32 otherwise, on CUDA too."""
        device = next(self.clip.parameters()).device
        return compute_autocast(device, self.cpu_bf16, cuda_fp16=False, key="parser.cpu_bf16")

    def dense(self, rgb: np.ndarray) -> torch.Tensor:
        """Dense CLIP features [E, h, w] of rgb uint8 [H, W, 3] (see dense_clip)."""
        device = next(self.clip.parameters()).device
        dtype = next(self.clip.visual.parameters()).dtype  # bfloat16 with parser.cpu_bf16
        image = prepare_image(torch.from_numpy(rgb), self.clip.visual, self.cfg.clip_short_side).to(device, dtype)
        return dense_features(
            self.clip.visual, image, self.cfg.attention, self.cfg.window_overlap, self.cfg.trase_temperature
        )

    def classify(self, rgb: np.ndarray, pose: PoseResult, props: list[Proposal]) -> np.ndarray:
        """Per-pixel probabilities float32 [15, H, W] for the proposals of one person."""
        feats = self.dense(rgb).float().cpu()
        person_prob = np.where(pose.person_prob > self.cfg.person_threshold, pose.person_prob, 0.0)
        _, dense_parts = classify.split_background(
            classify.dense_distribution(feats, self.text, self.cfg.logit_scale).permute(1, 2, 0)
        )
        dense_parts = dense_parts.permute(2, 0, 1)  # [14, h, w]
        if not props:
            empty = np.zeros((0,) + person_prob.shape, bool)
            return classify.pixel_probs(person_prob, empty, dense_parts.new_zeros(0, 14), np.zeros(0), dense_parts)
        masks = np.stack([p.mask for p in props])
        pooled = classify.pool_masks(feats, torch.from_numpy(masks))
        clip_p = classify.clip_distribution(pooled, self.text, self.cfg.logit_scale)
        prior = classify.landmark_prior(np.array([p.part_id for p in props]), self.cfg.prior_confidence)
        not_body, parts = classify.split_background(classify.combine(clip_p, prior, self.cfg.prior_weight))
        weights = np.array([p.score for p in props], dtype=np.float32) * (1.0 - not_body.numpy())
        return classify.pixel_probs(person_prob, masks, parts, weights, dense_parts)

    def __call__(self, frame: Frame) -> PartParse:
        rgb = np.ascontiguousarray(frame.rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"frame {frame.index}: expected RGB uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
        H, W = rgb.shape[:2]
        t0 = time.perf_counter()
        pose = self.pose_fn(rgb)
        t1 = time.perf_counter()
        self.stage_seconds["pose"] += t1 - t0
        if pose is None or not (pose.person_prob > self.cfg.person_threshold).any():
            return _empty_parse(frame, H, W)
        with torch.inference_mode():
            props = propose(self.predictor, rgb, pose, self.cfg)
            t2 = time.perf_counter()
            probs = self.classify(rgb, pose, props)
        self.stage_seconds["sam"] += t2 - t1
        self.stage_seconds["clip"] += time.perf_counter() - t2
        person = pose.person_prob > self.cfg.person_threshold
        labels = probs.argmax(0).astype(np.int16)
        return PartParse(
            view_id=frame.view_id,
            frame_index=frame.index,
            labels=labels,
            scores=probs.max(0).astype(np.float32),
            person_ids=np.where(person, 0, -1).astype(np.int16),
            probs=probs.astype(np.float16),
            keypoints=pose.landmarks[None].astype(np.float32),
        )

    def reset(self) -> None:
        self.predictor.reset_image()  # type: ignore[attr-defined]

    def close(self) -> None:
        close = getattr(self.pose_fn, "close", None)
        if callable(close):
            close()


def _empty_parse(frame: Frame, H: int, W: int) -> PartParse:
    """All-background parse for a frame without a person."""
    probs = np.zeros((NUM_CLASSES, H, W), dtype=np.float16)
    probs[0] = 1.0
    return PartParse(
        view_id=frame.view_id,
        frame_index=frame.index,
        labels=np.zeros((H, W), np.int16),
        scores=np.zeros((H, W), np.float32),
        person_ids=np.full((H, W), -1, np.int16),
        probs=probs,
        keypoints=np.zeros((0, 33, 3), np.float32),
    )

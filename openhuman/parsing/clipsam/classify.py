"""Classify proposals with dense CLIP features and combine them into per-pixel probabilities.

1. Mask pooling: a proposal's CLIP vector is the mask-weighted average of the dense features;
   the mask is area-resampled to the feature grid, so patches the mask does not touch get
   weight 0 and cannot change the pooled vector.
2. CLIP class distribution: softmax(logit_scale * cos) over the 14 part embeddings and the B
   background phrases; channel 0 (background) gets the sum over the background phrases.
3. Landmark prior: a proposal prompted for part k has prior `prior_confidence` on k and the rest
   spread evenly over the other 14 channels; automatic proposals (k = 0) have a uniform prior.
   Combined: p ~ clip * prior^w with w = `prior_weight`, renormalised (a uniform prior changes
   nothing; w = 0 ignores the landmarks).
4. The person mask already says "body": a proposal's combined background probability b only
   lowers its weight (SAM score * (1 - b)) and its part distribution is renormalised over the 14
   parts. Per pixel, background = 1 - person probability (mediapipe's, 0 outside the person
   mask); the parts share the person probability by the weighted average of the part
   distributions of the proposals covering the pixel, plus the dense per-patch CLIP part
   distribution with weight `DENSE_WEIGHT` (it alone decides pixels no proposal covers).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from openhuman.ontology import NUM_CLASSES
from openhuman.parsing.clipsam.prompts import TextBank

DENSE_WEIGHT = 0.05
"""Weight of the per-patch CLIP distribution beside the proposals' (SAM scores are ~0.5-1)."""


def pool_masks(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mask-weighted average features [N, E] from features [E, h, w] and masks [N, H, W] (bool/float).

    A mask is resampled to (h, w) by area averaging (its weight per patch = covered fraction);
    an empty mask pools to zeros.
    """
    if masks.ndim != 3 or features.ndim != 3:
        raise ValueError(f"expected features [E, h, w] and masks [N, H, W], got {features.shape} and {masks.shape}")
    if masks.shape[0] == 0:
        return features.new_zeros(0, features.shape[0])
    h, w = int(features.shape[1]), int(features.shape[2])
    weights = F.adaptive_avg_pool2d(masks.float()[:, None], (h, w))[:, 0]  # [N, h, w]
    flat_w = weights.flatten(1).to(features.dtype)  # [N, h*w]
    total = flat_w.sum(1, keepdim=True).clamp_min(1e-12)
    return (flat_w @ features.flatten(1).T) / total


def clip_distribution(vectors: torch.Tensor, bank: TextBank, logit_scale: float) -> torch.Tensor:
    """Class probabilities [N, 15] (channel = body14 id) for CLIP vectors [N, E]."""
    v = F.normalize(vectors.float(), dim=-1)
    text = torch.cat([bank.background, bank.parts]).to(v)
    probs = torch.softmax(logit_scale * v @ text.T, dim=-1)  # [N, B + 14]
    nb = bank.background.shape[0]
    return torch.cat([probs[:, :nb].sum(1, keepdim=True), probs[:, nb:]], dim=1)


def landmark_prior(part_ids: np.ndarray, confidence: float) -> torch.Tensor:
    """Prior [N, 15] from the part each proposal was prompted for (0 = no prior: uniform)."""
    n = len(part_ids)
    prior = torch.full((n, NUM_CLASSES), 1.0 / NUM_CLASSES)
    for i, k in enumerate(part_ids):
        if k > 0:
            prior[i] = (1.0 - confidence) / (NUM_CLASSES - 1)
            prior[i, int(k)] = confidence
    return prior


def combine(clip_probs: torch.Tensor, prior: torch.Tensor, weight: float) -> torch.Tensor:
    """Product clip * prior^weight, renormalised over classes. [N, 15] each.

    weight 0 = CLIP only; 1 = plain Bayes product; larger = the prior dominates. A uniform prior
    leaves the CLIP distribution unchanged.
    """
    if weight < 0.0:
        raise ValueError(f"prior weight must be >= 0, got {weight}")
    log_p = clip_probs.clamp_min(1e-12).log() + weight * prior.clamp_min(1e-12).log()
    return torch.softmax(log_p, dim=-1)


def split_background(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(background probability [...], part distribution [..., 14] renormalised) of probs [..., 15]."""
    parts = probs[..., 1:]
    return probs[..., 0], parts / parts.sum(-1, keepdim=True).clamp_min(1e-12)


def pixel_probs(
    person_prob: np.ndarray,
    masks: np.ndarray,
    mask_parts: torch.Tensor,
    mask_weights: np.ndarray,
    dense_parts: torch.Tensor,
) -> np.ndarray:
    """Per-pixel probabilities float32 [15, H, W] summing to 1.

    person_prob float [H, W] (0 outside the person mask) gives background = 1 - person_prob; the
    parts share person_prob by the mixture of the covering proposals' part distributions
    mask_parts [N, 14] (masks bool [N, H, W], weights float [N]) and the per-patch distribution
    dense_parts [14, h, w] (upsampled bilinearly) with weight `DENSE_WEIGHT`.
    """
    H, W = person_prob.shape
    dense = F.interpolate(dense_parts[None].float(), size=(H, W), mode="bilinear", align_corners=False)[0]
    acc = DENSE_WEIGHT * dense
    if len(masks):
        m = torch.from_numpy(masks.reshape(len(masks), -1)).float()  # [N, H*W]
        w = torch.from_numpy(np.asarray(mask_weights, dtype=np.float32)).clamp_min(1e-3)
        acc = acc + ((mask_parts.float() * w[:, None]).T @ m).reshape(NUM_CLASSES - 1, H, W)
    parts = acc / acc.sum(0, keepdim=True).clamp_min(1e-12)
    person = torch.from_numpy(np.clip(person_prob, 0.0, 1.0).astype(np.float32))
    return torch.cat([(1.0 - person)[None], person[None] * parts]).numpy()


def dense_distribution(features: torch.Tensor, bank: TextBank, logit_scale: float) -> torch.Tensor:
    """Per-patch class probabilities [15, h, w] (background channel 0) from dense features [E, h, w]."""
    E, h, w = features.shape
    probs = clip_distribution(features.flatten(1).T, bank, logit_scale)  # [h*w, 15]
    return probs.T.reshape(NUM_CLASSES, h, w)

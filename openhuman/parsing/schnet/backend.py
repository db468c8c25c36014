"""`SchnetParser`: the trained SCHNet model as a `Parser` backend (`--backend schnet`).

- The checkpoint (`parser.schnet.checkpoint`, written by `openhuman train`) defines the
  architecture (size, input size); `parser.schnet.vocabulary` sets the classes at inference (text
  embeddings computed once here), and `sam_checkpoint` / `clip_checkpoint` name the backbone files
  for checkpoints trained with frozen pretrained backbones.
- Output channels: vocabulary names equal (case-insensitively) to a body14 part name go to that
  body14 id. Classes outside body14 (e.g. "hat") are folded into background (id 0) in
  `PartParse.probs/labels`; their own per-class probabilities are available from
  `SchnetParser.predict(rgb)` and their names from `.vocabulary`.
- One person per image is assumed: `person_ids` is 0 on every parsed (non-background) pixel.
- `parser.schnet.pose_sides`: each limb's side comes from a mediapipe parse of the frame
  (`sides_from_pose`), one mediapipe parser per view (it keeps video-mode state).
"""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import torch

from openhuman.ontology import LEFT_IDS, NUM_CLASSES, PART_ID, RIGHT_IDS
from openhuman.parsing.backbones import compute_autocast, torch_device
from openhuman.parsing.base import Parser
from openhuman.parsing.config import ParserConfig
from openhuman.parsing.schnet.checkpoint import load_schnet
from openhuman.parsing.schnet.inference import predict_probs
from openhuman.parsing.schnet.model import SchnetModel
from openhuman.types import Frame, PartParse

log = logging.getLogger(__name__)


def body14_channel_map(vocabulary: list[str]) -> np.ndarray:
    """int64 [K + 1]: model channel (0 = background, i = vocabulary[i - 1]) -> body14 id (0 if none)."""
    ids = [0] + [PART_ID.get(" ".join(name.lower().split()), 0) for name in vocabulary]
    return np.asarray(ids, dtype=np.int64)


def sides_from_pose(
    labels: np.ndarray, probs: np.ndarray | None, pose: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Give each limb pixel of `labels` the side of the nearer of `pose`'s two limbs of its type.

    labels, pose: body14 ids [H, W]; probs [C, H, W] or None. Per limb type (upper arm, forearm,
    hand, thigh, shin, foot), the pixels `labels` gives either side are relabelled by which of
    `pose`'s left and right pixels of that type is nearer (Euclidean distance transform); a type
    `pose` does not show keeps its labels. Where a pixel's side changes, its two probabilities
    swap. Inputs are not modified."""
    out, new_probs = labels.copy(), None if probs is None else probs.copy()
    far = np.float32(1e9)
    for left, right in zip(LEFT_IDS, RIGHT_IDS, strict=True):
        limb = (labels == left) | (labels == right)
        has_left, has_right = pose == left, pose == right
        if not limb.any() or not (has_left.any() or has_right.any()):
            continue
        d_left = cv2.distanceTransform((~has_left).view(np.uint8), cv2.DIST_L2, 3) if has_left.any() else far
        d_right = cv2.distanceTransform((~has_right).view(np.uint8), cv2.DIST_L2, 3) if has_right.any() else far
        out[limb] = np.where(d_left <= d_right, left, right)[limb]  # one of the two is a full map
        if probs is not None and new_probs is not None:
            flip = limb & (out != labels)
            new_probs[left, flip], new_probs[right, flip] = probs[right, flip], probs[left, flip]
    return out, new_probs


class SchnetParser(Parser):
    """Per-frame SCHNet parsing into body14 (see the module docstring for the class mapping)."""

    num_classes = NUM_CLASSES

    def __init__(
        self, model: SchnetModel, device: str = "cpu", cpu_bf16: bool = False, pose: ParserConfig | None = None
    ) -> None:
        """`pose`: with a parser config, limb sides come from its (mediapipe) parse (`sides_from_pose`)."""
        self.pose_cfg = pose
        self._pose: dict[str, Parser] = {}  # one mediapipe parser per view: it keeps video-mode state
        self._pose_lock = threading.Lock()
        self.device = torch.device(device)
        self.cpu_bf16 = cpu_bf16
        self.model = model.to(self.device).eval()
        self.vocabulary = list(model.vocabulary)
        self.channel_map = torch.from_numpy(body14_channel_map(self.vocabulary))
        unmapped = [n for n, i in zip(self.vocabulary, self.channel_map[1:].tolist(), strict=True) if i == 0]
        if unmapped:
            log.info("SCHNet classes outside body14 (folded into background): %s", ", ".join(unmapped))

    @classmethod
    def from_config(cls, cfg: ParserConfig) -> SchnetParser:
        """Load `cfg.schnet.checkpoint` onto `cfg.device` with `cfg.schnet.vocabulary`."""
        sc = cfg.schnet
        torch_device(cfg.device, "parser.device")
        model = load_schnet(sc.checkpoint, sc, key="parser.schnet.checkpoint")
        pose = ParserConfig(backend="mediapipe", mediapipe=cfg.mediapipe) if sc.pose_sides else None
        if pose is not None:
            pose.mediapipe.check()
        return cls(model, cfg.device, cfg.cpu_bf16, pose)

    def reset(self) -> None:
        with self._pose_lock:
            for parser in self._pose.values():
                parser.reset()

    def _pose_labels(self, frame: Frame) -> np.ndarray:
        with self._pose_lock:
            if frame.view_id not in self._pose:
                assert self.pose_cfg is not None
                self._pose[frame.view_id] = Parser.from_config(self.pose_cfg)
            parser = self._pose[frame.view_id]
        return np.asarray(parser(frame).labels)

    def predict(self, rgb: np.ndarray) -> torch.Tensor:
        """rgb uint8 [H, W, 3] -> float32 [K + 1, H, W] probabilities over [background] + vocabulary."""
        with compute_autocast(self.device, self.cpu_bf16, key="parser.cpu_bf16"):
            return predict_probs(self.model, rgb, self.device)

    def __call__(self, frame: Frame) -> PartParse:
        probs = self.predict(frame.rgb)  # [K + 1, H, W]
        body = torch.zeros((NUM_CLASSES, *probs.shape[1:]), dtype=torch.float32)
        body.index_add_(0, self.channel_map, probs)
        scores, labels = body.max(dim=0)
        labels_np: np.ndarray = labels.numpy().astype(np.int16)
        probs_np: np.ndarray | None = body.numpy().astype(np.float16)
        if self.pose_cfg is not None:
            labels_np, probs_np = sides_from_pose(labels_np, probs_np, self._pose_labels(frame))
        person = np.where(labels_np > 0, 0, -1).astype(np.int16)
        return PartParse(
            view_id=frame.view_id,
            frame_index=frame.index,
            labels=labels_np,
            scores=scores.numpy().astype(np.float32),
            person_ids=person,
            probs=probs_np,
        )


__all__ = ["SchnetParser", "body14_channel_map", "sides_from_pose"]
